"""pytest plugin of the reminder services: real Kafka (or Tansu), a MySQL-compatible
database and a moto SNS server, plus small polling helpers."""

from .helpers import async_wait_for, free_port, wait_for
from .kafka import TansuBroker
from .sns import SentSms, SnsServer

__all__ = ["SentSms", "SnsServer", "TansuBroker", "async_wait_for", "free_port", "wait_for"]
