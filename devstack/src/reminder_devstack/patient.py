"""Playing the patient: read the SMS the emulator received, answer one as AWS would deliver it.

The reply is a well-formed SNS Notification of an inbound SMS (AWS two-way messaging),
POSTed to inbound's `/sns`. It is unsigned: only an inbound in dev mode accepts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

import httpx


@dataclass(frozen=True)
class ReceivedSms:
    message_id: str
    phone_number: str
    message: str


def received_sms(sns_endpoint_url: str, phone: str | None = None) -> list[ReceivedSms]:
    """The SMS the moto SNS emulator accepted for sending, oldest first."""
    data = httpx.get(f"{sns_endpoint_url}/moto-api/data.json", timeout=10).json()
    messages = [
        ReceivedSms(e["message_id"], e["phone_number"], e["message"])
        for e in data.get("sns", {}).get("SMS", [])
    ]
    return [m for m in messages if phone is None or m.phone_number == phone]


def notification(
    *,
    patient_phone: str,
    long_code: str,
    text: str,
    topic_arn: str,
    previous_message_id: str | None = None,
    inbound_message_id: str | None = None,
) -> dict[str, str]:
    sms = {
        "originationNumber": patient_phone,
        "destinationNumber": long_code,
        "messageKeyword": "KEYWORD_DEV",
        "messageBody": text,
        "inboundMessageId": inbound_message_id or str(uuid4()),
        "previousPublishedMessageId": previous_message_id,
    }
    now = datetime.now(UTC)
    return {
        "Type": "Notification",
        "MessageId": str(uuid4()),
        "TopicArn": topic_arn,
        "Message": json.dumps(sms),
        "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "SignatureVersion": "1",
        # A placeholder: only an inbound with SNS_VERIFY_SIGNATURES=false (dev) accepts it.
        "Signature": "VU5TSUdORUQgKGRldmVsb3BtZW50KQ==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-dev.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def reply(
    inbound_url: str,
    *,
    patient_phone: str,
    long_code: str,
    text: str,
    topic_arn: str,
    previous_message_id: str | None = None,
) -> httpx.Response:
    """POST the patient's SMS to inbound as an SNS Notification; returns inbound's answer."""
    body = notification(
        patient_phone=patient_phone,
        long_code=long_code,
        text=text,
        topic_arn=topic_arn,
        previous_message_id=previous_message_id,
    )
    return httpx.post(
        f"{inbound_url}/sns",
        content=json.dumps(body),
        headers={"x-amz-sns-message-type": "Notification", "content-type": "text/plain"},
        timeout=10,
    )
