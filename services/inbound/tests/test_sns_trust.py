"""Trusting SNS messages: parsing, real RSA signatures (v1 and v2), certificate URLs, age."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from inbound.adapters.signature import CertificateCache, SignatureVerifier
from inbound.domain.sns import (
    MalformedMessage,
    Untrusted,
    check_fresh,
    check_signing_cert_url,
    is_sns_url,
    parse_inbound_sms,
    parse_sns_message,
)
from inbound.testing import SnsSigner

pytestmark = pytest.mark.unit

PATIENT = "+12025550143"
LONG_CODE = "+12025550178"


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    return SnsSigner()


@pytest.fixture
def verifier(signer: SnsSigner) -> SignatureVerifier:
    return SignatureVerifier(CertificateCache(signer.fetch))


def raw(fields: dict[str, str]) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize("version", ["1", "2"])
async def test_a_genuine_notification_verifies(
    signer: SnsSigner, verifier: SignatureVerifier, version: str
) -> None:
    fields = signer.notification(phone=PATIENT, body="yes", destination=LONG_CODE, version=version)
    await verifier.verify(parse_sns_message(raw(fields), "Notification"))


@pytest.mark.parametrize("version", ["1", "2"])
async def test_genuine_subscription_messages_verify(
    signer: SnsSigner, verifier: SignatureVerifier, version: str
) -> None:
    for kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        fields = signer.subscription(kind, version=version)
        await verifier.verify(parse_sns_message(raw(fields), kind))


async def test_a_notification_with_subject_verifies(
    signer: SnsSigner, verifier: SignatureVerifier
) -> None:
    fields = signer.notification(phone=PATIENT, body="yes", destination=LONG_CODE)
    del fields["Signature"]
    fields = signer.sign({**fields, "Subject": "inbound"}, "2")
    await verifier.verify(parse_sns_message(raw(fields), None))


@pytest.mark.parametrize("field", ["Message", "MessageId", "Timestamp", "TopicArn"])
async def test_a_tampered_field_fails(
    signer: SnsSigner, verifier: SignatureVerifier, field: str
) -> None:
    fields = signer.notification(phone=PATIENT, body="no", destination=LONG_CODE, version="2")
    if field == "Message":
        fields[field] = fields[field].replace('"no"', '"yes"')
    elif field == "Timestamp":
        # a replay dressed up as new
        fields[field] = (datetime.now(UTC) + timedelta(seconds=1)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
    else:
        fields[field] += "x"
    with pytest.raises(Untrusted, match="signature does not match"):
        await verifier.verify(parse_sns_message(raw(fields), None))


async def test_a_signature_from_another_key_fails(signer: SnsSigner) -> None:
    forger = SnsSigner()  # another key, claiming the genuine certificate URL
    verifier = SignatureVerifier(CertificateCache(signer.fetch))
    fields = forger.notification(phone=PATIENT, body="yes", destination=LONG_CODE)
    with pytest.raises(Untrusted, match="signature does not match"):
        await verifier.verify(parse_sns_message(raw(fields), None))


async def test_a_certificate_on_a_wrong_host_is_never_fetched() -> None:
    fetched: list[str] = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        return b""

    evil = SnsSigner(cert_url="https://sns.us-east-1.amazonaws.com.evil.example/cert.pem")
    verifier = SignatureVerifier(CertificateCache(fetch))
    fields = evil.notification(phone=PATIENT, body="yes", destination=LONG_CODE)
    with pytest.raises(Untrusted, match="SigningCertURL"):
        await verifier.verify(parse_sns_message(raw(fields), None))
    assert fetched == []


async def test_an_unknown_signature_version_fails(
    signer: SnsSigner, verifier: SignatureVerifier
) -> None:
    fields = signer.notification(phone=PATIENT, body="yes", destination=LONG_CODE)
    fields["SignatureVersion"] = "3"
    with pytest.raises(Untrusted, match="SignatureVersion"):
        await verifier.verify(parse_sns_message(raw(fields), None))


async def test_the_certificate_is_fetched_once_and_cached(signer: SnsSigner) -> None:
    cache = CertificateCache(signer.fetch)
    verifier = SignatureVerifier(cache)
    for _ in range(5):
        fields = signer.notification(phone=PATIENT, body="yes", destination=LONG_CODE)
        await verifier.verify(parse_sns_message(raw(fields), None))
    assert cache.fetches == 1


async def test_a_cached_certificate_expires_after_its_ttl(signer: SnsSigner) -> None:
    now = [0.0]
    cache = CertificateCache(signer.fetch, ttl_seconds=60, clock=lambda: now[0])
    await cache.public_key(signer.cert_url)
    now[0] = 59
    await cache.public_key(signer.cert_url)
    assert cache.fetches == 1
    now[0] = 61
    await cache.public_key(signer.cert_url)
    assert cache.fetches == 2


async def test_a_garbage_certificate_is_untrusted() -> None:
    async def fetch(url: str) -> bytes:
        return b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"

    with pytest.raises(Untrusted, match="PEM"):
        await CertificateCache(fetch).public_key(
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem"
        )


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
        ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem", True),
        ("http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", False),
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.crt", False),
        ("https://sns.us-east-1.amazonaws.com.evil.com/x.pem", False),
        ("https://evil.com/sns.us-east-1.amazonaws.com/x.pem", False),
        ("https://sns.amazonaws.com/x.pem", False),
        ("https://sns.us-east-1.amazonaws.com:8443/x.pem", False),
        ("https://user@sns.us-east-1.amazonaws.com/x.pem", False),
        ("https://s3.us-east-1.amazonaws.com/x.pem", False),
        ("not a url", False),
    ],
)
def test_signing_certificate_urls_must_be_https_pem_on_an_sns_host(url: str, ok: bool) -> None:
    if ok:
        check_signing_cert_url(url)
    else:
        with pytest.raises(Untrusted):
            check_signing_cert_url(url)


def test_subscribe_urls_must_be_on_an_sns_host() -> None:
    assert is_sns_url("https://sns.eu-west-3.amazonaws.com/?Action=ConfirmSubscription&T=1")
    assert not is_sns_url("https://attacker.example/?Action=ConfirmSubscription")


def test_old_and_future_messages_are_stale(signer: SnsSigner) -> None:
    now = datetime.now(UTC)
    for age, ok in (
        (timedelta(minutes=59), True),
        (timedelta(minutes=61), False),
        (-timedelta(minutes=10), False),
    ):
        fields = signer.notification(
            phone=PATIENT, body="y", destination=LONG_CODE, timestamp=now - age
        )
        message = parse_sns_message(raw(fields), None)
        if ok:
            check_fresh(message, now, timedelta(hours=1))
        else:
            with pytest.raises(Untrusted):
                check_fresh(message, now, timedelta(hours=1))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"Type": "Other"}', "Type must be"),
        (b'{"Type": "Notification"}', "missing MessageId"),
    ],
)
def test_malformed_sns_bodies_have_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        parse_sns_message(body, None)


def test_the_message_type_header_must_match(signer: SnsSigner) -> None:
    fields = signer.notification(phone=PATIENT, body="y", destination=LONG_CODE)
    with pytest.raises(MalformedMessage, match="header"):
        parse_sns_message(raw(fields), "SubscriptionConfirmation")


def test_bad_signature_encoding_and_timestamp_are_malformed(signer: SnsSigner) -> None:
    fields = signer.notification(phone=PATIENT, body="y", destination=LONG_CODE)
    with pytest.raises(MalformedMessage, match="base64"):
        parse_sns_message(raw({**fields, "Signature": "***"}), None)
    with pytest.raises(MalformedMessage, match="Timestamp"):
        parse_sns_message(raw({**fields, "Timestamp": "yesterday"}), None)


def test_the_inbound_sms_is_read_from_the_message() -> None:
    sms = parse_inbound_sms(
        json.dumps(
            {
                "originationNumber": PATIENT,
                "destinationNumber": LONG_CODE,
                "messageBody": "Sí",
                "inboundMessageId": "abc",
                "previousPublishedMessageId": "m-1",
                "messageKeyword": "KEYWORD_1",
            }
        )
    )
    assert (
        sms.origination_number,
        sms.destination_number,
        sms.body,
        sms.inbound_message_id,
        sms.previous_published_message_id,
    ) == (PATIENT, LONG_CODE, "Sí", "abc", "m-1")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", "not JSON"),
        ('"text"', "not a JSON object"),
        (
            json.dumps({"destinationNumber": LONG_CODE, "inboundMessageId": "a"}),
            "no originationNumber",
        ),
        (
            json.dumps({"originationNumber": PATIENT, "destinationNumber": LONG_CODE}),
            "no inboundMessageId",
        ),
        (
            json.dumps(
                {
                    "originationNumber": "+1555",
                    "destinationNumber": LONG_CODE,
                    "inboundMessageId": "a",
                }
            ),
            "phone number",
        ),
        (
            json.dumps(
                {
                    "originationNumber": PATIENT,
                    "destinationNumber": LONG_CODE,
                    "inboundMessageId": "a",
                    "messageBody": 3,
                }
            ),
            "messageBody",
        ),
    ],
)
def test_malformed_inbound_sms_has_a_reason(message: str, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        parse_inbound_sms(message)
