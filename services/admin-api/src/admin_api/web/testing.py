"""Test helpers for the web page: staff in an HTTP client that signs in through the form
and carries the session cookie and the CSRF token of the page it last read."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .session import SESSION_COOKIE, SIGN_IN_COOKIE

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def nonce_of(page: str) -> str:
    found = _NONCE.search(page)
    assert found, "the sign-in page has its nonce"
    return found.group(1)


@dataclass
class Staff:
    """One signed-in person. Cookies are sent by hand: the app marks them Secure (it runs
    outside ENVIRONMENT=dev here), which an HTTP client would not send over plain http."""

    http: httpx.AsyncClient
    cookie: str
    csrf: str = ""

    def _headers(self) -> dict[str, str]:
        return {"Cookie": f"{SESSION_COOKIE}={self.cookie}"}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        response = await self.http.get(path, params=params or None, headers=self._headers())
        if response.status_code == 200 and "csrf_token" in response.text:
            self.csrf = csrf_of(response.text)
        return response

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        form = {"csrf_token": self.csrf if csrf is None else csrf, **(data or {})}
        if csrf == "":
            form.pop("csrf_token")
        return await self.http.post(path, data=form, headers=self._headers())


async def sign_in_response(http: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await http.get("/sign-in")
    nonce = page.cookies[SIGN_IN_COOKIE]
    assert nonce_of(page.text) == nonce
    return await http.post(
        "/sign-in",
        data={"token": token, "nonce": nonce, "next": "/"},
        headers={"Cookie": f"{SIGN_IN_COOKIE}={nonce}"},
    )


SignIn = Callable[[str], Awaitable[Staff]]


def text_of(page: httpx.Response) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, spaces squeezed."""
    no_tags = re.sub(r"<script.*?</script>|<[^>]+>", " ", page.text, flags=re.S)
    return " ".join(html.unescape(no_tags).split())


def field_error(page: httpx.Response, name: str) -> str | None:
    """The error shown next to field `name` (tied to it by aria-describedby), if any."""
    field = re.search(rf'<input id="{name}"[^>]*>|<select id="{name}"[^>]*>', page.text)
    assert field, f"no field {name!r} on the page"
    if 'aria-describedby="' not in field.group(0) or f"{name}-error" not in field.group(0):
        return None
    error = re.search(rf'<p class="field-error" id="{name}-error">(.*?)</p>', page.text, re.S)
    assert error, f"field {name!r} points to an error that is not there"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", error.group(1))).replace("⚠", "").split())
