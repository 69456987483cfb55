"""The FastAPI application of a running gateway. Every route declares its permission (web/security.py)."""

from __future__ import annotations

from fastapi import FastAPI

from radgate import __version__
from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.web import api, audit, dicomweb, docs, login, monitoring, pages, review, viewer, worklist
from radgate.web.errors import install_error_handlers


def create_app(settings: Settings, db: Database, store: InstanceStore) -> FastAPI:
    app = FastAPI(
        title="radgate",
        version=__version__,
        description="AI gateway for medical imaging. Infrastructure, not a medical device.",
        docs_url=None,  # served by web/docs.py: offline assets, sign-in required
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.store = store
    install_error_handlers(app)
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(dicomweb.router)
    app.include_router(monitoring.router)
    app.include_router(audit.router)
    app.include_router(worklist.router)
    app.include_router(review.router)
    app.include_router(viewer.router)
    app.include_router(docs.router)
    return app
