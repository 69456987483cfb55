"""The engine: a durable job queue in the database, workers with leases, one result per series x model."""

from radgate.engine.export import EXPORT_COLUMNS, EngineSummary, export_csv, iter_prediction_rows, summarise
from radgate.engine.queue import (
    JOBS_QUEUED,
    ClaimedJob,
    EnqueueHook,
    claim_jobs,
    enqueue_for_series,
    extend_leases,
    finish_job,
    instance_features,
    reap_expired,
    release_job,
    series_instances,
)
from radgate.engine.sink import ResultSink
from radgate.engine.tables import Job, Prediction, RoutingDecisionRow
from radgate.engine.worker import Engine, EngineOptions, InputError

__all__ = [
    "instance_features",
    "EXPORT_COLUMNS",
    "JOBS_QUEUED",
    "ClaimedJob",
    "EnqueueHook",
    "Engine",
    "EngineOptions",
    "EngineSummary",
    "InputError",
    "Job",
    "Prediction",
    "ResultSink",
    "RoutingDecisionRow",
    "claim_jobs",
    "enqueue_for_series",
    "export_csv",
    "extend_leases",
    "finish_job",
    "iter_prediction_rows",
    "reap_expired",
    "release_job",
    "series_instances",
    "summarise",
]
