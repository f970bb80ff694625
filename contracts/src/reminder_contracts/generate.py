"""Generates the JSON Schema and AsyncAPI documents kept in `contracts/`.

    uv run python -m reminder_contracts.generate          # rewrite the files
    uv run python -m reminder_contracts.generate --check  # exit 1 if they drifted

The tests run the check, so a model change without regenerated documents fails CI.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from . import topics
from .events import EVENT_TYPES, AnyEvent, Event

CONTRACTS_DIR = Path(__file__).resolve().parents[2]
SCHEMA_PATH = CONTRACTS_DIR / "schema" / "events.schema.json"
ASYNCAPI_PATH = CONTRACTS_DIR / "asyncapi.json"

_TOPIC_DESCRIPTIONS = {
    topics.PATIENTS: "Patients registered and updated by clinic staff (admin-api). "
    "Key: patient_id.",
    topics.APPOINTMENTS: "Appointments scheduled, rescheduled, cancelled and attended (admin-api). "
    "Key: appointment_id.",
    topics.REMINDERS: "Reminders whose time has come (scheduler). Key: appointment_id.",
    topics.DELIVERIES: "What the sender did with each reminder or owed reply (sender). "
    "Key: appointment_id, else patient_id.",
    topics.REPLIES: "Patients' SMS replies understood (inbound). Key: appointment_id, "
    "else patient_id, else reply_id.",
}


def json_schema() -> dict[str, Any]:
    schema = TypeAdapter(AnyEvent).json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Patient reminder events"
    return schema


def _events_by_topic() -> dict[str, list[type[Event]]]:
    grouped: dict[str, list[type[Event]]] = {t: [] for t in topics.ALL_TOPICS}
    for cls in EVENT_TYPES.values():
        grouped[cls.TOPIC].append(cls)
    return grouped


def asyncapi() -> dict[str, Any]:
    # FastStream renders the AsyncAPI document from publishers declared on a broker;
    # nothing connects here.
    from faststream.kafka import KafkaBroker
    from faststream.specification import AsyncAPI

    broker = KafkaBroker("kafka:9092")
    for topic, classes in _events_by_topic().items():
        for cls in classes:
            broker.publisher(
                topic,
                title=f"{topic}:{cls.__name__}",
                description=(cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else None,
                schema=cls,
            )
    spec = AsyncAPI(
        broker,
        title="Patient reminders",
        version="1.0.0",
        description="Events exchanged by scheduler, sender, inbound and admin-api. "
        + " ".join(f"`{t}`: {d}" for t, d in _TOPIC_DESCRIPTIONS.items()),
        schema_version="3.0.0",
    )
    document: dict[str, Any] = json.loads(spec.to_specification().to_json())
    return document


def _render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def documents() -> dict[Path, str]:
    return {SCHEMA_PATH: _render(json_schema()), ASYNCAPI_PATH: _render(asyncapi())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the files drifted")
    args = parser.parse_args(argv)
    drifted = []
    for path, text in documents().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            drifted.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            sys.stdout.write(f"wrote {path}\n")
    if drifted:
        names = " ".join(str(p) for p in drifted)
        sys.stdout.write(
            f"out of date, run `uv run python -m reminder_contracts.generate`: {names}\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
