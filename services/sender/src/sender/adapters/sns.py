"""Amazon SNS as the SMS gateway: one blocking boto3 client, called from a small pool of
threads so the event loop never waits on HTTP.

The client is configured the standard AWS way (AWS_REGION, AWS_ENDPOINT_URL_SNS, the
credential chain). botocore's own retries are off: the service layer retries throttling
and 5xx itself, taking a send slot from the shared rate limiter for every attempt.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from prometheus_client import Histogram

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

PUBLISH_LATENCY = Histogram(
    "sender_sns_publish_seconds",
    "Duration of one SNS Publish call",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class PublishFailed(Exception):
    """SNS (or the way to it) refused one publish; `code` is AWS's error code."""

    def __init__(self, code: str, http_status: int | None, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.http_status = http_status
        self.message = message


@dataclass(frozen=True)
class SmsOptions:
    origination_number: str | None
    max_price_usd: Decimal | None


def make_sns_client(timeout_seconds: float, max_pool: int) -> SNSClient:
    """An SNS client from the standard AWS environment. botocore itself reads only
    AWS_DEFAULT_REGION (and the config file); AWS_REGION, the name the other AWS SDKs and
    Lambda use, is honoured here too, so either works."""
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        max_pool_connections=max_pool,
    )
    return boto3.client("sns", region_name=os.environ.get("AWS_REGION") or None, config=config)


class SnsSmsGateway:
    def __init__(self, client: SNSClient, options: SmsOptions, threads: int) -> None:
        self.client = client
        self.options = options
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sns")

    def attributes(self) -> dict[str, MessageAttributeValueTypeDef]:
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
        }
        if self.options.origination_number:
            attributes["AWS.MM.SMS.OriginationNumber"] = {
                "DataType": "String",
                "StringValue": self.options.origination_number,
            }
        if self.options.max_price_usd is not None:
            attributes["AWS.SNS.SMS.MaxPrice"] = {
                "DataType": "Number",
                "StringValue": str(self.options.max_price_usd),
            }
        return attributes

    def publish_blocking(self, phone: str, text: str) -> str:
        """Send one SMS; returns the SNS MessageId or raises PublishFailed."""
        started = time.perf_counter()
        try:
            response = self.client.publish(
                PhoneNumber=phone, Message=text, MessageAttributes=self.attributes()
            )
        except ClientError as exc:
            error: Any = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise PublishFailed(
                str(error.get("Code", "Unknown")), status, _without_pii(error.get("Message"))
            ) from None
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            # The request never reached SNS: safe to try again.
            raise PublishFailed("EndpointConnectionError", None, type(exc).__name__) from None
        except ReadTimeoutError:
            # SNS may have sent it: the outcome is unknown (see handlers: never re-sent).
            raise PublishFailed("ReadTimeout", None, "no answer from SNS in time") from None
        finally:
            PUBLISH_LATENCY.observe(time.perf_counter() - started)
        return response["MessageId"]

    async def publish(self, phone: str, text: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.publish_blocking, phone, text)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _without_pii(message: object) -> str:
    """AWS error messages can quote the phone number: keep the words, mask the digits."""
    from reminder_runtime.logging import mask

    return str(mask(str(message or "")))[:300]
