"""Test support. `SnsSigner` stands in for SNS in tests and benchmarks: a test RSA key
and a self-signed certificate that sign messages exactly as SNS does (AWS is never
reached).

Used with a `CertificateCache` whose fetcher returns `certificate_pem` for `cert_url`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from inbound.domain.sns import _SIGNED_FIELDS

DEFAULT_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:clinic-inbound-sms"
DEFAULT_CERT_URL = (
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
)


def _self_signed(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class SnsSigner:
    topic_arn: str = DEFAULT_TOPIC_ARN
    cert_url: str = DEFAULT_CERT_URL
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    certificate_pem: bytes = b""

    def __post_init__(self) -> None:
        if not self.certificate_pem:
            self.certificate_pem = _self_signed(self.key)

    async def fetch(self, url: str) -> bytes:
        """A `CertificateFetcher` serving this signer's certificate at `cert_url` only."""
        if url != self.cert_url:
            raise AssertionError(f"unexpected certificate URL {url}")
        return self.certificate_pem

    def sign(self, fields: dict[str, str], version: str = "1") -> dict[str, str]:
        signed = {**fields, "SignatureVersion": version, "SigningCertURL": self.cert_url}
        canonical = "".join(
            f"{name}\n{signed[name]}\n" for name in _SIGNED_FIELDS[signed["Type"]] if name in signed
        ).encode()
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
        signature = self.key.sign(canonical, padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def notification(
        self,
        *,
        phone: str,
        body: str,
        destination: str,
        inbound_message_id: str | None = None,
        previous_published_message_id: str | None = None,
        timestamp: datetime | None = None,
        message_id: str | None = None,
        version: str = "1",
        topic_arn: str | None = None,
    ) -> dict[str, str]:
        """An SNS Notification carrying an inbound SMS, signed."""
        sms: dict[str, Any] = {
            "originationNumber": phone,
            "destinationNumber": destination,
            "messageKeyword": "KEYWORD_123456789012",
            "messageBody": body,
            "inboundMessageId": inbound_message_id or str(uuid4()),
            "previousPublishedMessageId": previous_published_message_id,
        }
        return self.sign(
            {
                "Type": "Notification",
                "MessageId": message_id or str(uuid4()),
                "TopicArn": topic_arn or self.topic_arn,
                "Message": json.dumps(sms),
                "Timestamp": _iso(timestamp or datetime.now(UTC)),
                "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            },
            version,
        )

    def subscription(
        self,
        kind: str = "SubscriptionConfirmation",
        *,
        subscribe_url: str | None = None,
        topic_arn: str | None = None,
        version: str = "1",
    ) -> dict[str, str]:
        token = uuid4().hex
        topic = topic_arn or self.topic_arn
        return self.sign(
            {
                "Type": kind,
                "MessageId": str(uuid4()),
                "Token": token,
                "TopicArn": topic,
                "Message": f"You have chosen to subscribe to the topic {topic}.",
                "SubscribeURL": subscribe_url
                or (
                    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
                    f"&TopicArn={topic}&Token={token}"
                ),
                "Timestamp": _iso(datetime.now(UTC)),
            },
            version,
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )
