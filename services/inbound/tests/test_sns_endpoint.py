"""The endpoint's decisions without HTTP or Kafka (the database is real): dev mode without
signature checks, and what each answer records."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from inbound.adapters.signature import (
    CertificateCache,
    SignatureVerifier,
    https_certificate_fetcher,
)
from inbound.adapters.sns_endpoint import SnsEndpoint
from inbound.adapters.tables import messaging, replies
from inbound.settings import Settings
from inbound.testing import SnsSigner

pytestmark = pytest.mark.integration

PATIENT = "+12025550143"
LONG_CODE = "+12025550178"


def endpoint(
    settings: Settings, session_factory: sessionmaker[Session], signer: SnsSigner
) -> SnsEndpoint:
    fetched: list[str] = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        return await signer.fetch(url)

    return SnsEndpoint(
        settings=settings,
        session_factory=session_factory,
        verifier=SignatureVerifier(CertificateCache(fetch)),
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))),
    )


def recorded(session_factory: sessionmaker[Session]) -> tuple[int, int]:
    with session_factory() as session:
        count_replies = session.execute(select(func.count()).select_from(replies)).scalar_one()
        count_events = session.execute(
            select(func.count()).select_from(messaging.outbox.table)
        ).scalar_one()
    return int(count_replies), int(count_events)


async def test_dev_mode_without_verification_accepts_and_warns_per_message(
    session_factory: sessionmaker[Session], signer: SnsSigner, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        environment="dev",
        sns_verify_signatures=False,
        sns_allowed_topic_arns=signer.topic_arn,
        sms_origination_numbers=LONG_CODE,
    )
    sns = endpoint(settings, session_factory, signer)
    unsigned = signer.notification(phone=PATIENT, body="help", destination=LONG_CODE)
    unsigned["Signature"] = "AAAA"
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            response = await sns.receive(json.dumps(unsigned).encode(), "Notification")
            assert response.status_code == 200
    warnings = [r for r in caplog.records if "SIGNATURE NOT VERIFIED" in r.getMessage()]
    assert len(warnings) == 2
    assert recorded(session_factory) == (1, 1)
    # the allow-list still holds without signatures
    other = signer.notification(
        phone=PATIENT,
        body="help",
        destination=LONG_CODE,
        topic_arn="arn:aws:sns:us-east-1:999999999999:x",
    )
    assert (await sns.receive(json.dumps(other).encode(), None)).status_code == 403


async def test_a_subscribe_url_that_fails_is_a_502_so_sns_tries_again(
    session_factory: sessionmaker[Session], signer: SnsSigner
) -> None:
    settings = Settings(
        environment="test",
        sns_allowed_topic_arns=signer.topic_arn,
        sms_origination_numbers=LONG_CODE,
    )
    sns = endpoint(settings, session_factory, signer)
    response = await sns.receive(json.dumps(signer.subscription()).encode(), None)
    assert response.status_code == 502


async def test_an_oversized_body_is_refused_before_parsing(
    session_factory: sessionmaker[Session], signer: SnsSigner
) -> None:
    settings = Settings(
        environment="test",
        sns_allowed_topic_arns=signer.topic_arn,
        sms_origination_numbers=LONG_CODE,
    )
    sns = endpoint(settings, session_factory, signer)
    response = await sns.receive(b" " * (400 * 1024), "Notification")
    assert response.status_code == 400
    assert recorded(session_factory) == (0, 0)


async def test_an_unreachable_certificate_is_a_503_so_sns_delivers_again(
    session_factory: sessionmaker[Session], signer: SnsSigner
) -> None:
    settings = Settings(
        environment="test",
        sns_allowed_topic_arns=signer.topic_arn,
        sms_origination_numbers=LONG_CODE,
    )
    aws_down = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    sns = SnsEndpoint(
        settings=settings,
        session_factory=session_factory,
        verifier=SignatureVerifier(CertificateCache(https_certificate_fetcher(aws_down))),
        http_client=aws_down,
    )
    fields = signer.notification(phone=PATIENT, body="yes", destination=LONG_CODE)
    response = await sns.receive(json.dumps(fields).encode(), "Notification")
    assert response.status_code == 503
    assert recorded(session_factory) == (0, 0)
