"""Retrospective scoring (``radgate score``): one model version over many stored images, on Ray Data."""

from radgate.scoring.retro import (
    PARQUET_COLUMNS,
    RETROSPECTIVE,
    ScoreReport,
    ScoreRequest,
    SeriesScore,
    score,
)

__all__ = ["PARQUET_COLUMNS", "RETROSPECTIVE", "ScoreReport", "ScoreRequest", "SeriesScore", "score"]
