"""The admin API's settings (env, UPPER_CASE), on top of the shared `ServiceSettings`."""

from __future__ import annotations

import secrets
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import field_validator

from reminder_runtime.settings import InsecureSetting, ServiceSettings

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
MIN_TOKEN_LENGTH = 16


class Settings(ServiceSettings):
    service_name: str = "admin-api"
    http_port: int = 8000
    database_url: str = "sqlite:///data/admin-api.db"

    #: `role:token` pairs, comma-separated; roles `admin` (read and write) and `viewer`.
    admin_api_tokens: str = ""
    #: Region for phone numbers given in national format, e.g. `US` reads 202-555-0143.
    default_phone_region: str = "US"
    #: The clinic's IANA time zone: statistics are grouped by the clinic's calendar days.
    clinic_timezone: str = "UTC"

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"DEFAULT_PHONE_REGION {value!r} is not a known region code")
        return region

    @field_validator("clinic_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"CLINIC_TIMEZONE {value!r} is not an IANA time zone") from None
        return value

    @field_validator("admin_api_tokens")
    @classmethod
    def _well_formed_tokens(cls, value: str) -> str:
        parse_tokens(value)
        return value

    def check_secrets(self) -> None:
        if not self.admin_api_tokens.strip() and not self.is_dev:
            raise InsecureSetting(
                "ADMIN_API_TOKENS is empty: set `admin:<token>` (and `viewer:<token>`) pairs, "
                "or ENVIRONMENT=dev for a generated development token"
            )

    @cached_property
    def tokens(self) -> dict[str, Role]:
        """token -> role. In dev mode with none configured: one generated admin token."""
        tokens = parse_tokens(self.admin_api_tokens)
        if not tokens and self.is_dev:
            tokens = {f"dev-{secrets.token_urlsafe(24)}": "admin"}
        return tokens

    @property
    def clinic_zone(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)


def parse_tokens(raw: str) -> dict[str, Role]:
    """`admin:s3cret,viewer:r3ad` -> {"s3cret": "admin", "r3ad": "viewer"}."""
    tokens: dict[str, Role] = {}
    for pair in (p.strip() for p in raw.split(",")):
        if not pair:
            continue
        role, sep, token = pair.partition(":")
        role, token = role.strip(), token.strip()
        if not sep or not token:
            raise ValueError("ADMIN_API_TOKENS must be `role:token` pairs, comma-separated")
        if role not in ROLES:
            raise ValueError(f"ADMIN_API_TOKENS: unknown role {role!r} (admin or viewer)")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"ADMIN_API_TOKENS: tokens must be at least {MIN_TOKEN_LENGTH} chars")
        if token in tokens:
            raise ValueError("ADMIN_API_TOKENS: the same token is listed twice")
        tokens[token] = role  # narrowed to Role by the membership test above
    return tokens
