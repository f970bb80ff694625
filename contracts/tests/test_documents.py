"""The generated JSON Schema and AsyncAPI documents cover every event and match the models."""

from __future__ import annotations

import json

import pytest

from reminder_contracts import EVENT_TYPES, topics
from reminder_contracts.generate import ASYNCAPI_PATH, SCHEMA_PATH, main

pytestmark = pytest.mark.unit


def test_documents_in_the_repository_match_the_models() -> None:
    assert main(["--check"]) == 0, "run `uv run python -m reminder_contracts.generate`"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_is_in_the_json_schema(event_type: str) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert event_type in schema["discriminator"]["mapping"]
    assert event_type in schema["$defs"]


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_is_in_the_asyncapi_document(event_type: str) -> None:
    document = json.loads(ASYNCAPI_PATH.read_text())
    topic = EVENT_TYPES[event_type].TOPIC
    assert topic in topics.ALL_TOPICS
    assert event_type in document["components"]["schemas"]
    channel = document["channels"][f"{topic}:{event_type}"]
    assert channel["address"] == topic
    refs = [message["$ref"] for message in channel["messages"].values()]
    assert refs == [f"#/components/messages/{topic}:{event_type}:Message"]
    assert f"{topic}:{event_type}:Message" in document["components"]["messages"]
