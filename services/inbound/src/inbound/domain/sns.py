"""SNS HTTP(S) messages and the inbound SMS they carry: parsing and the trust rules.

Pure logic: parsing, the canonical string that SNS signs, the signing-certificate URL
check and the age check. The signature itself is checked by `inbound.adapters.signature`
(it needs the certificate, fetched over the network).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from reminder_contracts.types import InvalidPhoneNumber, to_e164

#: The only hosts SNS signing certificates and subscription URLs may come from (DESIGN.md).
SNS_HOST_PATTERN: Final = re.compile(r"^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$")

MessageType = Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]
MESSAGE_TYPES: Final[tuple[MessageType, ...]] = (
    "Notification",
    "SubscriptionConfirmation",
    "UnsubscribeConfirmation",
)

# The fields SNS signs, in the order it signs them (AWS "Verifying the signatures of
# Amazon SNS messages"). Subject is signed only when present.
_SIGNED_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


class MalformedMessage(ValueError):
    """Not an SNS message, or not an inbound SMS: HTTP 400 with this reason."""


class Untrusted(ValueError):
    """Forged, unverifiable or not for us: HTTP 403, nothing recorded."""


@dataclass(frozen=True, slots=True)
class SnsMessage:
    type: MessageType
    message_id: str
    topic_arn: str
    message: str
    timestamp: datetime
    timestamp_raw: str
    signature_version: str
    signature: bytes
    signing_cert_url: str
    fields: dict[str, str]

    @property
    def subscribe_url(self) -> str | None:
        return self.fields.get("SubscribeURL")

    def canonical_string(self) -> bytes:
        """What SNS signed: "Key\\nValue\\n" for each signed field present, in order."""
        parts: list[str] = []
        for name in _SIGNED_FIELDS[self.type]:
            value = self.fields.get(name)
            if value is None:
                if name == "Subject":
                    continue
                raise MalformedMessage(f"{name} is required in a {self.type}")
            parts.append(f"{name}\n{value}\n")
        return "".join(parts).encode()


def parse_sns_message(body: bytes | str, header_type: str | None) -> SnsMessage:
    """Read the JSON SNS POSTs (as text/plain) and check it is complete."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedMessage("body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage("body is not a JSON object")
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    kind = fields.get("Type")
    if kind not in MESSAGE_TYPES:
        raise MalformedMessage(
            "Type must be Notification, SubscriptionConfirmation or UnsubscribeConfirmation"
        )
    if header_type is not None and header_type != kind:
        raise MalformedMessage("x-amz-sns-message-type header does not match Type")
    required = (
        "MessageId",
        "TopicArn",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    )
    missing = [name for name in required if not fields.get(name)]
    if missing:
        raise MalformedMessage(f"missing {', '.join(missing)}")
    try:
        timestamp = datetime.fromisoformat(fields["Timestamp"].replace("Z", "+00:00"))
    except ValueError:
        raise MalformedMessage("Timestamp is not ISO 8601") from None
    if timestamp.tzinfo is None:
        raise MalformedMessage("Timestamp has no time zone")
    try:
        signature = base64.b64decode(fields["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage("Signature is not base64") from None
    message = SnsMessage(
        type=kind,
        message_id=fields["MessageId"],
        topic_arn=fields["TopicArn"],
        message=fields["Message"],
        timestamp=timestamp,
        timestamp_raw=fields["Timestamp"],
        signature_version=fields["SignatureVersion"],
        signature=signature,
        signing_cert_url=fields["SigningCertURL"],
        fields=fields,
    )
    message.canonical_string()  # every signed field is present
    return message


def is_sns_url(url: str, *, suffix: str | None = None) -> bool:
    """https, an SNS host (DESIGN.md pattern), default port, and the path `suffix` if given."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "https" or port not in (None, 443) or parts.username or parts.password:
        return False
    if not parts.hostname or not SNS_HOST_PATTERN.fullmatch(parts.hostname):
        return False
    return suffix is None or parts.path.endswith(suffix)


def check_signing_cert_url(url: str) -> None:
    if not is_sns_url(url, suffix=".pem"):
        raise Untrusted("SigningCertURL is not an https .pem URL on an SNS host")


def check_fresh(message: SnsMessage, now: datetime, max_age: timedelta) -> None:
    """Refuse replays of old messages, and messages from too far in the future."""
    age = now - message.timestamp
    if age > max_age:
        raise Untrusted("message is too old")
    if age < -timedelta(minutes=5):
        raise Untrusted("message Timestamp is in the future")


@dataclass(frozen=True, slots=True)
class InboundSms:
    """The SMS that AWS two-way messaging put in the SNS `Message`."""

    origination_number: str  # the patient (E.164)
    destination_number: str  # our long code (E.164)
    body: str
    inbound_message_id: str
    previous_published_message_id: str | None


def parse_inbound_sms(message: str) -> InboundSms:
    try:
        data: Any = json.loads(message)
    except ValueError:
        raise MalformedMessage("Message is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage("Message is not a JSON object")

    def optional(name: str) -> str | None:
        value = data.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise MalformedMessage(f"Message {name} is not a string")
        return value

    def required(name: str) -> str:
        value = optional(name)
        if value is None:
            raise MalformedMessage(f"Message has no {name}")
        return value

    origination = required("originationNumber")
    destination = required("destinationNumber")
    inbound_id = required("inboundMessageId")
    body = data.get("messageBody", "")
    if not isinstance(body, str):
        raise MalformedMessage("Message messageBody is not a string")
    if len(inbound_id) > 100:
        raise MalformedMessage("Message inboundMessageId is too long")
    try:
        origination = to_e164(origination)
        destination = to_e164(destination)
    except InvalidPhoneNumber as exc:
        raise MalformedMessage(f"Message phone number: {exc}") from None
    previous = optional("previousPublishedMessageId")
    return InboundSms(
        origination_number=origination,
        destination_number=destination,
        body=body,
        inbound_message_id=inbound_id,
        previous_published_message_id=previous,
    )
