"""moto's SNS over the network, with the SMS it was asked to send readable by tests.

moto keeps SMS as (phone number, text) only: the MessageAttributes a sender sets (origination
number, SMS type) are dropped. A small WSGI wrapper records them from each Publish request,
so a test can check what a real SNS would have been told.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from .helpers import free_port

ORIGINATION_NUMBER = "AWS.MM.SMS.OriginationNumber"
SMS_TYPE = "AWS.SNS.SMS.SMSType"

_MESSAGE_ID = re.compile(rb"<MessageId>([^<]+)</MessageId>")
_ATTRIBUTE = re.compile(r"MessageAttributes\.entry\.(\d+)\.(Name|Value\.StringValue)")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class SentSms:
    """One SMS moto accepted, as a test sees it."""

    message_id: str
    phone_number: str
    message: str
    origination_number: str | None
    sms_type: str | None
    raw: dict[str, Any] = field(compare=False, hash=False)


def _string_attributes(form: dict[str, list[str]]) -> dict[str, str]:
    """`MessageAttributes.entry.N.Name` / `.Value.StringValue` pairs of a query-protocol form."""
    names: dict[str, str] = {}
    values: dict[str, str] = {}
    for key, value in form.items():
        match = _ATTRIBUTE.fullmatch(key)
        if match:
            (names if match.group(2) == "Name" else values)[match.group(1)] = value[0]
    return {name: values[n] for n, name in names.items() if n in values}


class _PublishRecorder:
    """WSGI middleware: remembers the string MessageAttributes of each SMS Publish."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.attributes: dict[str, dict[str, str]] = {}

    def clear(self) -> None:
        with self._lock:
            self.attributes.clear()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = parse_qs(body.decode("utf-8", "replace"))
        if form.get("Action") != ["Publish"] or "PhoneNumber" not in form:
            return self._app(environ, start_response)
        response = b"".join(self._app(environ, start_response))
        match = _MESSAGE_ID.search(response)
        if match:
            with self._lock:
                self.attributes[match.group(1).decode()] = _string_attributes(form)
        return [response]


class _RecordingMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose app is wrapped in `_PublishRecorder`."""

    def __init__(self, ip_address: str, port: int) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.recorder = _PublishRecorder(DomainDispatcherApplication(create_backend_app))

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, self.recorder, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class SnsServer:
    """An in-process moto server listening on 127.0.0.1 for SNS (and any other AWS API)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server = _RecordingMotoServer("127.0.0.1", self.port)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SnsServer:
        # one access-log line per AWS call drowns the output of a failing test
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def sent_sms(self) -> list[SentSms]:
        """Every SMS published since start (or the last reset), oldest first, all accounts."""
        data = httpx.get(f"{self.endpoint_url}/moto-api/data.json", timeout=10).json()
        attributes = self._server.recorder.attributes
        sent = []
        for entry in data.get("sns", {}).get("SMS", []):
            attrs = attributes.get(entry["message_id"], {})
            sent.append(
                SentSms(
                    message_id=entry["message_id"],
                    phone_number=entry["phone_number"],
                    message=entry["message"],
                    origination_number=attrs.get(ORIGINATION_NUMBER),
                    sms_type=attrs.get(SMS_TYPE),
                    raw={**entry, "message_attributes": attrs},
                )
            )
        return sent

    def reset(self) -> None:
        """Forget every resource and SMS: moto's state is global to the server."""
        httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        self._server.recorder.clear()
