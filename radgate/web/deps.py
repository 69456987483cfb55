"""Typed dependencies: the services a route may call, taken from the running gateway.

The ones that only read ``app.state`` are ``async``: FastAPI runs a plain ``def`` dependency in its thread
pool, a round trip through the event loop per dependency and request (two of them on every page) for an
attribute read. ``get_session`` stays a plain generator: closing a session may touch the database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_store(request: Request) -> InstanceStore:
    return request.app.state.store


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.sessionmaker() as s:
        yield s


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
StoreDep = Annotated[InstanceStore, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]
