"""moto SNS receives SMS over the network and shows what it was asked to send."""

from __future__ import annotations

import os

import boto3
import pytest

from reminder_testkit import SnsServer

pytestmark = pytest.mark.integration


def test_published_sms_is_visible_with_its_attributes(sns_server: SnsServer) -> None:
    assert os.environ["AWS_ENDPOINT_URL_SNS"] == sns_server.endpoint_url
    client = boto3.client("sns")  # region, credentials and endpoint from the fixture's env
    response = client.publish(
        PhoneNumber="+12025550143",
        Message="Reminder: dentist tomorrow at 10:00. Reply YES or NO.",
        MessageAttributes={
            "AWS.MM.SMS.OriginationNumber": {"DataType": "String", "StringValue": "+12025550178"},
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
        },
    )
    client.publish(PhoneNumber="+34612345678", Message="sin atributos")

    sent = {sms.phone_number: sms for sms in sns_server.sent_sms()}
    mine = sent["+12025550143"]
    assert mine.message_id == response["MessageId"]
    assert mine.message == "Reminder: dentist tomorrow at 10:00. Reply YES or NO."
    assert mine.origination_number == "+12025550178"
    assert mine.sms_type == "Transactional"
    plain = sent["+34612345678"]
    assert plain.message == "sin atributos"
    assert plain.origination_number is None
    assert plain.sms_type is None


def test_reset_forgets_sent_sms(sns_server: SnsServer) -> None:
    boto3.client("sns").publish(PhoneNumber="+33612345678", Message="bonjour")
    assert any(s.phone_number == "+33612345678" for s in sns_server.sent_sms())
    sns_server.reset()
    assert sns_server.sent_sms() == []
