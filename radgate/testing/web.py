"""The HTTP app served on 127.0.0.1 in a thread, for browser tests and benchmarks that drive Chromium."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["served_app"]


@contextmanager
def served_app(app: Any, start_timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` (an ASGI app) with uvicorn on a free port of 127.0.0.1; yields the base URL
    (``http://127.0.0.1:PORT``) and stops the server on exit."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="served-app", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test HTTP server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
