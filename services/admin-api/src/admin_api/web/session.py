"""Signed-in staff: the session cookie, CSRF tokens and the role checks of the web page.

The cookie holds only a role and a random session id, signed (itsdangerous) with a key
derived from ADMIN_API_TOKENS: no new secret to manage, and changing the tokens signs
everybody out. The CSRF token is bound to the session (an HMAC of its id), so a form
rendered for one session is refused in another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from .. import api
from ..settings import ROLES, Role, Settings

SESSION_COOKIE = "reminders_session"
#: Double-submit nonce of the sign-in form (there is no session yet to bind it to).
SIGN_IN_COOKIE = "reminders_sign_in"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"


class NotSignedIn(Exception):
    """No valid session: the page sends the browser to the sign-in form."""


class Refused(Exception):
    """Signed in, but not allowed (viewer writing, missing or wrong CSRF token): 403."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class WebSession:
    role: Role
    session_id: str
    csrf_token: str

    @property
    def can_write(self) -> bool:
        return self.role == "admin"


class SessionSigner:
    """Signs and reads session cookies and derives their CSRF tokens."""

    def __init__(self, settings: Settings) -> None:
        material = "\n".join(f"{role}:{token}" for token, role in sorted(settings.tokens.items()))
        self._key = hashlib.sha256(b"admin-api web session\0" + material.encode()).digest()
        self._serializer = URLSafeTimedSerializer(self._key, salt="admin-api.web.session")
        self.secure = not settings.is_dev

    def issue(self, role: Role) -> tuple[str, WebSession]:
        session_id = secrets.token_urlsafe(18)
        cookie = self._serializer.dumps({"role": role, "sid": session_id})
        return cookie, self._session(role, session_id)

    def read(self, cookie: str | None) -> WebSession | None:
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        role, session_id = data.get("role"), data.get("sid")
        if role not in ROLES or not isinstance(session_id, str):
            return None
        return self._session(role, session_id)

    def _session(self, role: Role, session_id: str) -> WebSession:
        csrf = hmac.new(self._key, b"csrf\0" + session_id.encode(), hashlib.sha256).hexdigest()
        return WebSession(role=role, session_id=session_id, csrf_token=csrf)

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="strict" if name == SIGN_IN_COOKIE else "lax",
        )

    def clear_cookie(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", httponly=True, secure=self.secure, samesite="lax")


def role_for_token(request: Request, token: str) -> Role | None:
    """The token's role by the JSON API's own check (constant time), or None."""
    return api.role_of_token(api.get_service(request).settings, token.strip())


def signer(request: Request) -> SessionSigner:
    found: SessionSigner = request.app.state.web_signer
    return found


def current_session(request: Request) -> WebSession:
    session = signer(request).read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise NotSignedIn
    return session


def writing_session(session: Annotated[WebSession, Depends(current_session)]) -> WebSession:
    if not session.can_write:
        raise Refused("You are signed in as a viewer: viewers can look but not change anything.")
    return session


SignedIn = Annotated[WebSession, Depends(current_session)]
Writer = Annotated[WebSession, Depends(writing_session)]


async def read_form(request: Request, session: WebSession) -> dict[str, str]:
    """The posted form's text fields, after checking its CSRF token (constant time)."""
    # Read the raw body first: Starlette caches it, so the JSON API's command wrapper
    # (which fingerprints the body) can read it again after the form is parsed.
    await request.body()
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    given = fields.pop(CSRF_FIELD, "")
    if not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
        raise Refused("This form has expired or did not come from this site. Please try again.")
    return fields
