"""``GET /monitoring``: the monitoring dashboard (server-rendered, plots inline, nothing from the network).

For directors: the lead attaches the director permission (``require(...)``) when auth is merged; this
router declares no authentication of its own.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from radgate.monitoring.dashboard import dashboard_view
from radgate.web.deps import DatabaseDep, SettingsDep

router = APIRouter()

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring_page(db: DatabaseDep, settings: SettingsDep) -> HTMLResponse:
    view = dashboard_view(db, settings.monitoring)
    return HTMLResponse(_templates.get_template("monitoring.html").render(view=view))
