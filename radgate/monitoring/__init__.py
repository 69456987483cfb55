"""Monitoring deployed models: periods against the go-live baseline, drift, new scanners, alerts.

Entry points: :func:`radgate.monitoring.service.run_monitoring` (analyse, open alerts, send webhooks; returns
typed :class:`~radgate.monitoring.alerts.Alert` objects), :func:`~radgate.monitoring.service.analyse`
(read-only), :class:`~radgate.monitoring.service.MonitoringService` (``radgate serve``), the rule interface
:class:`~radgate.monitoring.rules.MonitoringRule`. Every read of other packages' tables is in
:mod:`radgate.monitoring.data`. The package's modules are imported explicitly (``radgate.db.tables`` imports
:mod:`radgate.monitoring.tables` while the database layer initialises, so nothing is re-exported here).
"""

__all__: list[str] = []
