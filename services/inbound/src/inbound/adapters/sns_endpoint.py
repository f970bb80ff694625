"""The HTTPS endpoint SNS delivers to: trust checks, then the service layer.

Order of checks: well-formed (400), topic on the allow-list (403, before any certificate
is fetched for it), signature (403), age (403); then per type. Nothing is recorded for a
message that fails any of them. A Notification's reply and its events are committed
(outbox) before the 200, so a 2xx means durable whatever the broker is doing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from inbound.adapters.signature import CertificateUnavailable, SignatureVerifier
from inbound.domain.sns import (
    MalformedMessage,
    SnsMessage,
    Untrusted,
    check_fresh,
    is_sns_url,
    parse_inbound_sms,
    parse_sns_message,
)
from inbound.handlers import ReceivedReply, record_reply
from inbound.settings import Settings

log = logging.getLogger(__name__)

SNS_MESSAGES = Counter(
    "inbound_sns_messages_total", "SNS messages received, by type and outcome", ["type", "outcome"]
)
REPLY_EVENTS = Counter("inbound_reply_events_total", "Events emitted for replies", ["event_type"])

#: SNS messages are at most 256 KiB; anything much bigger is not from SNS.
MAX_BODY_BYTES = 300 * 1024

MessageTypeHeader = Annotated[str | None, Header(alias="x-amz-sns-message-type")]


@dataclass
class SnsEndpoint:
    settings: Settings
    session_factory: sessionmaker[Session]
    verifier: SignatureVerifier
    http_client: httpx.AsyncClient
    #: Called after a reply is committed (the outbox relay's `wake`): publish now.
    on_recorded: Callable[[], None] = lambda: None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        self._allowed_topics = self.settings.allowed_topic_arns
        self._our_numbers = self.settings.origination_numbers
        # Replies wait mostly on the database's commit: more of them in flight than the
        # default pool's CPU+4 threads lets the database group their commits.
        self._threads = ThreadPoolExecutor(
            self.settings.reply_worker_threads, thread_name_prefix="reply"
        )

    def close(self) -> None:
        self._threads.shutdown(wait=True)

    async def receive(self, body: bytes, header_type: str | None) -> JSONResponse:
        kind = header_type or "unknown"
        try:
            if len(body) > MAX_BODY_BYTES:
                raise MalformedMessage("body is too large for an SNS message")
            message = parse_sns_message(body, header_type)
            kind = message.type
            await self._trust(message)
            if message.type == "Notification":
                return await self._notification(message)
            if message.type == "SubscriptionConfirmation":
                return await self._confirm_subscription(message)
            return self._unsubscribed(message)
        except MalformedMessage as exc:
            return _answer(kind, "malformed", 400, {"error": str(exc)})
        except Untrusted as exc:
            log.warning("SNS message refused", extra={"type": kind, "reason": str(exc)})
            return _answer(kind, "forbidden", 403, {"error": str(exc)})
        except CertificateUnavailable as exc:
            # Not verifiable *now*: 503, so SNS tries again (it drops a message on a 4xx).
            log.error("SNS message not verifiable yet", extra={"type": kind, "reason": str(exc)})
            return _answer(kind, "error", 503, {"error": str(exc)})

    async def _trust(self, message: SnsMessage) -> None:
        if message.topic_arn not in self._allowed_topics:
            raise Untrusted("TopicArn is not allowed")
        if self.settings.sns_verify_signatures:
            await self.verifier.verify(message)
        else:
            log.warning(
                "SNS SIGNATURE NOT VERIFIED: SNS_VERIFY_SIGNATURES=false (dev only)",
                extra={"type": message.type, "sns_message_id": message.message_id},
            )
        check_fresh(message, self.clock(), self.settings.max_message_age)

    async def _notification(self, message: SnsMessage) -> JSONResponse:
        sms = parse_inbound_sms(message.message)
        if sms.destination_number not in self._our_numbers:
            raise Untrusted("destinationNumber is not one of our long codes")
        reply = ReceivedReply(sms, message.message_id, message.timestamp)
        try:
            recorded = await asyncio.get_running_loop().run_in_executor(
                self._threads,
                record_reply,
                self.session_factory,
                reply,
                self.settings.default_language,
            )
        except SQLAlchemyError as exc:
            # Not recorded: a 5xx makes SNS deliver it again later.
            log.error("reply not recorded", extra={"error": type(exc).__name__})
            return _answer(message.type, "error", 503, {"error": "storage unavailable"})
        outcome = "duplicate" if recorded.duplicate else "accepted"
        log.info(
            "reply %s",
            outcome,
            extra={"reply_id": str(recorded.reply_id), "events": list(recorded.event_types)},
        )
        if not recorded.duplicate:
            for event_type in recorded.event_types:
                REPLY_EVENTS.labels(event_type).inc()
            self.on_recorded()
        return _answer(
            message.type,
            outcome,
            200,
            {
                "reply_id": str(recorded.reply_id),
                "duplicate": recorded.duplicate,
                "events": list(recorded.event_types),
            },
        )

    async def _confirm_subscription(self, message: SnsMessage) -> JSONResponse:
        url = message.subscribe_url or ""
        if not is_sns_url(url):
            raise Untrusted("SubscribeURL is not an https URL on an SNS host")
        try:
            response = await self.http_client.get(url, follow_redirects=False)
        except httpx.HTTPError as exc:
            log.error("subscription not confirmed", extra={"error": type(exc).__name__})
            return _answer(message.type, "error", 502, {"error": "SubscribeURL unreachable"})
        if response.status_code != 200:
            log.error("subscription not confirmed", extra={"status": response.status_code})
            return _answer(
                message.type,
                "error",
                502,
                {"error": f"SubscribeURL answered {response.status_code}"},
            )
        log.info("SNS subscription confirmed", extra={"topic_arn": message.topic_arn})
        return _answer(message.type, "confirmed", 200, {"confirmed": True})

    def _unsubscribed(self, message: SnsMessage) -> JSONResponse:
        # Replies will stop arriving: operators must know (alert on this metric).
        log.error(
            "SNS subscription removed: patients' replies will no longer arrive",
            extra={"topic_arn": message.topic_arn},
        )
        return _answer(message.type, "unsubscribed", 200, {"unsubscribed": True})


def _answer(kind: str, outcome: str, status: int, content: dict[str, Any]) -> JSONResponse:
    label = (
        kind
        if kind in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
        else "unknown"
    )
    SNS_MESSAGES.labels(label, outcome).inc()
    return JSONResponse(content, status_code=status)


def sns_router(endpoint: SnsEndpoint) -> APIRouter:
    router = APIRouter(tags=["sns"])

    @router.post(
        "/sns",
        summary="SNS HTTPS delivery of inbound SMS (and subscription messages)",
        responses={400: {"description": "malformed"}, 403: {"description": "untrusted"}},
    )
    async def receive_sns(request: Request, message_type: MessageTypeHeader = None) -> JSONResponse:
        # SNS posts JSON as text/plain: read the raw body, whatever the content type.
        return await endpoint.receive(await request.body(), message_type)

    return router
