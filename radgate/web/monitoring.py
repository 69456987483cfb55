"""``GET /monitoring``: the monitoring dashboard (server-rendered, plots inline, nothing from the network).

For directors (``monitoring.read``): signed-in users whose role carries the permission; every view is
audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from radgate import audit
from radgate.auth import Permission, Principal
from radgate.monitoring.dashboard import dashboard_view
from radgate.web.deps import DatabaseDep, SettingsDep
from radgate.web.security import require

MonitoringReader = Annotated[Principal, require(Permission.MONITORING_READ)]
router = APIRouter()

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring_page(
    request: Request, db: DatabaseDep, settings: SettingsDep, principal: MonitoringReader
) -> HTMLResponse:
    view = dashboard_view(db, settings.monitoring)
    audit.record_in(db, principal.actor, "monitoring.view", None, {"path": request.url.path})
    return HTMLResponse(_templates.get_template("monitoring.html").render(view=view))
