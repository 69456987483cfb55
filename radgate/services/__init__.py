"""The service layer: one function per use case, called by the CLI and the web alike.

A service takes the :class:`radgate.db.Database` (and settings), opens its own transaction, returns typed
results and raises :class:`radgate.errors.RadgateError` kinds; CLI commands and routes only parse, call and
render.
"""
