"""`python3 dev.py up [--demo]` runs the system; `sms` and `reply` play the patient."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from . import demo, patient
from .stack import DEV_LONG_CODE, DEV_TOPIC_ARN, Stack, StackConfig

STATE_FILE = "stack.json"


def _up(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    stack = Stack(StackConfig.from_environment(data_dir))
    stopping = threading.Event()
    # Ctrl-C (which reaches us twice: from the terminal and forwarded by uv) or a process
    # manager's SIGTERM: either asks for one orderly stop, never cuts it short.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stopping.set())
    try:
        stack.start()
        (data_dir / STATE_FILE).write_text(
            json.dumps(
                {
                    "admin_url": stack.config.url("admin-api"),
                    "inbound_url": stack.config.url("inbound"),
                    "sns_endpoint_url": stack.sns_endpoint_url,
                    "long_code": stack.config.long_code,
                    "topic_arn": stack.config.topic_arn,
                    "admin_token": stack.config.admin_token,
                },
                indent=2,
            )
        )
        sys.stdout.write(stack.banner())
        if args.demo:
            booked = demo.seed(stack.config.url("admin-api"), stack.config.admin_token)
            sys.stdout.write(
                f"Demo: {len(booked)} patients booked 3 h ahead; their reminders go out now.\n"
                "  python3 dev.py sms   shows them as they arrive.\n"
            )
        sys.stdout.flush()
        # Wake up now and then: a signal may land on an output thread, and only the main
        # thread runs Python's signal handlers.
        while not stopping.wait(0.5):
            pass
    finally:
        sys.stdout.write("\nstopping…\n")
        stack.stop()
        sys.stdout.write("stopped.\n")
    return 0


def _state(data_dir: str) -> dict[str, Any]:
    path = Path(data_dir) / STATE_FILE
    if not path.exists():
        return {
            "inbound_url": "http://127.0.0.1:8001",
            "sns_endpoint_url": "http://127.0.0.1:5055",
            "long_code": DEV_LONG_CODE,
            "topic_arn": DEV_TOPIC_ARN,
        }
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def _sms(args: argparse.Namespace) -> int:
    state = _state(args.data_dir)
    messages = patient.received_sms(state["sns_endpoint_url"], args.phone)
    if not messages:
        sys.stdout.write("no SMS yet\n")
    for sms in messages:
        sys.stdout.write(f"[{sms.message_id}] to {sms.phone_number}\n  {sms.message}\n\n")
    return 0


def _reply(args: argparse.Namespace) -> int:
    state = _state(args.data_dir)
    previous = args.message_id
    if previous is None:  # as AWS does: the last message we sent to that phone
        sent = patient.received_sms(state["sns_endpoint_url"], args.phone)
        previous = sent[-1].message_id if sent else None
    response = patient.reply(
        state["inbound_url"],
        patient_phone=args.phone,
        long_code=state["long_code"],
        text=" ".join(args.text),
        topic_arn=state["topic_arn"],
        previous_message_id=previous,
    )
    sys.stdout.write(f"inbound answered {response.status_code}: {response.text}\n")
    return 0 if response.is_success else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev.py", description=__doc__)
    parser.add_argument("--data-dir", default="data", help="SQLite files, logs (default: data)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the whole system; Ctrl-C stops it")
    up.add_argument("--demo", action="store_true", help="book sample appointments")
    up.set_defaults(run=_up)
    sms = commands.add_parser("sms", help="list the SMS the SNS emulator received")
    sms.add_argument("--phone", help="only those to this number (E.164)")
    sms.set_defaults(run=_sms)
    reply = commands.add_parser("reply", help="answer as the patient, e.g. reply +12025550143 yes")
    reply.add_argument("phone", help="the patient's number (E.164)")
    reply.add_argument("text", nargs="+", help="the SMS text")
    reply.add_argument("--message-id", help="the SMS replied to (default: the latest to phone)")
    reply.set_defaults(run=_reply)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
