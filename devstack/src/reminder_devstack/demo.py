"""`--demo`: sample patients and appointments, booked through the admin API like a clerk would.

Each appointment is three hours away, inside the default 24 h reminder window, so its
reminder is due at once. Patients get time zones where it is daytime now, so quiet hours
(21:00-08:00 local by default) do not hold the reminders back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

# Phone numbers in the range reserved for fiction (555-01xx), valid for libphonenumber.
DEMO_PATIENTS = (
    ("Grace Hopper", "+12025550143", "en"),
    ("Ana María López", "+12025550178", "es"),
    ("Amélie Dubois", "+12025550121", "fr"),
)
_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Europe/Madrid",
    "Europe/Paris",
    "Europe/London",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


def daytime_zone(now: datetime, prefer: str) -> str:
    """`prefer` if it is between 09:00 and 17:00 there, else the first zone where it is."""
    for name in (prefer, *_ZONES):
        if 9 <= now.astimezone(ZoneInfo(name)).hour < 17:
            return name
    return prefer


def seed(admin_url: str, token: str, now: datetime | None = None) -> list[str]:
    """Registers the demo patients and books one appointment each; returns appointment ids."""
    now = now or datetime.now(UTC)
    preferred = {"en": "America/New_York", "es": "Europe/Madrid", "fr": "Europe/Paris"}
    headers = {"Authorization": f"Bearer {token}"}
    booked = []
    with httpx.Client(base_url=admin_url, headers=headers, timeout=10) as client:
        for name, phone, language in DEMO_PATIENTS:
            patient = client.post(
                "/v1/patients",
                json={
                    "name": name,
                    "phone": phone,
                    "language": language,
                    "timezone": daytime_zone(now, preferred[language]),
                },
            )
            patient.raise_for_status()
            appointment = client.post(
                "/v1/appointments",
                json={
                    "patient_id": patient.json()["id"],
                    "starts_at": (now + timedelta(hours=3)).replace(microsecond=0).isoformat(),
                    "location": "Main Street Clinic, room 2",
                    "provider": "Dr. Rivera",
                },
            )
            appointment.raise_for_status()
            booked.append(str(appointment.json()["id"]))
    return booked
