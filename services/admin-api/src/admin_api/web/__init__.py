"""The clinic's web page, served by admin-api next to its JSON API (same service layer)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from .pages import render, router
from .session import NotSignedIn, Refused, SessionSigner, current_session

STATIC = Path(__file__).parent / "static"

__all__ = ["install", "router"]


def install(app: FastAPI) -> None:
    """Add the pages, their static files and their error pages to the admin API's app.

    Needs `app.state.admin` (the API's `AdminService`) when requests arrive.
    """
    app.state.web_signer = SessionSigner(app.state.admin.settings)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def not_signed_in(request: Request, _: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        return RedirectResponse(f"/sign-in?next={quote(target, safe='/')}", status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        try:
            session = current_session(request)
        except NotSignedIn:
            session = None
        return render(request, "refused.html", session, 403, message=exc.detail)

    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(Refused, refused)
