"""The frame every HTML page shares: the not-a-medical-device banner, who is signed in, sign-out (CSRF)."""

from __future__ import annotations

import html

from radgate.auth import Principal

__all__ = ["NOT_A_DEVICE", "page"]

NOT_A_DEVICE = "radgate is infrastructure for validating and monitoring AI. It is not a medical device."

STYLE = """body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px;text-align:left}
.banner{background:#fff3cd;padding:8px;margin-bottom:1em}
.who{float:right;font-size:14px}.who form{display:inline}.error{color:#a00}
label{display:block;margin:.5em 0}"""


def page(title: str, body: str, principal: Principal | None = None) -> str:
    who = ""
    if principal is not None and principal.via == "session":
        who = (
            f'<div class="who" data-user="{html.escape(principal.username)}">'
            f"{html.escape(principal.username)} ({html.escape(principal.role.value)}) "
            f'<form method="post" action="/logout"><input type="hidden" name="csrf_token" '
            f'value="{html.escape(principal.csrf_token or "")}">'
            '<button type="submit">Sign out</button></form></div>'
        )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>radgate - {html.escape(title)}</title>
<style>{STYLE}</style></head><body>{who}
<div class="banner">{NOT_A_DEVICE}</div>
{body}</body></html>"""
