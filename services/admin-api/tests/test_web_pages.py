"""The web page through HTTP against the real app on MariaDB and Tansu: sign-in, CSRF,
roles, forms with their errors, the lists, the appointment's actions and analytics."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
import pytest

from admin_api import handlers
from admin_api.samples import Story
from admin_api.web.session import SESSION_COOKIE, SIGN_IN_COOKIE
from admin_api.web.testing import SignIn, Staff, field_error, sign_in_response, text_of
from reminder_contracts import Event
from reminder_runtime.db import transaction

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "admin-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
ZONE = ZoneInfo("America/New_York")  # the `running` app's CLINIC_TIMEZONE


def local_input(days: float, hour: int = 10) -> str:
    """A `datetime-local` value `days` from now at `hour`:00 in the clinic's zone."""
    day = (datetime.now(ZONE) + timedelta(days=days)).date()
    return f"{day.isoformat()}T{hour:02d}:00"


async def register(staff: Staff, name: str, phone: str = "+12025550143") -> str:
    await staff.get("/patients/new")
    response = await staff.post(
        "/patients",
        {"name": name, "phone": phone, "language": "en", "timezone": "America/New_York"},
    )
    assert response.status_code == 303, text_of(response)
    found = re.match(r"/patients/([0-9a-f-]{36})\?done=registered", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


async def book(staff: Staff, patient_id: str, starts_at: str, **fields: str) -> str:
    await staff.get("/appointments/new", patient=patient_id)
    response = await staff.post(
        "/appointments", {"patient_id": patient_id, "starts_at": starts_at, **fields}
    )
    assert response.status_code == 303, text_of(response)
    found = re.match(r"/appointments/([0-9a-f-]{36})", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


@pytest.fixture
async def sign_in(running: Any) -> AsyncIterator[SignIn]:
    """`await sign_in(token)` -> a signed-in `Staff` (one HTTP client each)."""
    clients: list[httpx.AsyncClient] = []

    async def signed_in(token: str) -> Staff:
        http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{running.settings.http_port}", timeout=20
        )
        clients.append(http)
        response = await sign_in_response(http, token)
        assert response.status_code == 303, response.text
        staff = Staff(http, response.cookies[SESSION_COOKIE])
        assert (await staff.get("/")).status_code == 200
        return staff

    yield signed_in
    for http in clients:
        await http.aclose()


# --------------------------------------------------------------------------- session


async def test_sign_in_gives_a_hardened_session_cookie_and_sign_out_ends_it(
    running: Any, sign_in: SignIn
) -> None:
    async with httpx.AsyncClient(base_url=running.admin.base_url, timeout=20) as http:
        # signed out: every page sends the browser to the sign-in form
        for path in ("/", "/patients", "/analytics", "/appointments/new"):
            response = await http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/sign-in?next=")

        wrong = await sign_in_response(http, "not-the-right-token-at-all")
        assert wrong.status_code == 401
        assert "This token is not valid" in text_of(wrong)
        assert SESSION_COOKIE not in wrong.cookies

        response = await sign_in_response(http, ADMIN_TOKEN)
        assert response.status_code == 303
        cookie = next(
            h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
        ).lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "secure" in cookie, "outside ENVIRONMENT=dev the cookie is Secure"
        assert ADMIN_TOKEN not in cookie, "the token itself never goes into the cookie"

        # the sign-in form refuses a post without its nonce (login CSRF)
        forged = await http.post("/sign-in", data={"token": ADMIN_TOKEN, "next": "/"})
        assert forged.status_code == 403
        assert SESSION_COOKIE not in forged.cookies

    staff = await sign_in(ADMIN_TOKEN)
    page = await staff.get("/")
    assert "Signed in: Administrator" in text_of(page)
    for header, value in (("cache-control", "no-store"), ("x-content-type-options", "nosniff")):
        assert page.headers[header] == value
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    # a tampered cookie is no session
    staff_tampered = Staff(staff.http, staff.cookie[:-2] + "xx")
    assert (await staff_tampered.get("/")).status_code == 303

    out = await staff.post("/sign-out")
    assert (out.status_code, out.headers["location"]) == (303, "/sign-in")
    cleared = next(h for h in out.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert 'reminders_session=""' in cleared or "Max-Age=0" in cleared
    assert SIGN_IN_COOKIE not in out.cookies


async def test_forms_without_the_session_csrf_token_are_refused(
    running: Any, sign_in: SignIn
) -> None:
    admin, other = await sign_in(ADMIN_TOKEN), await sign_in(ADMIN_TOKEN)
    await admin.get("/patients/new")
    await other.get("/patients/new")
    assert admin.csrf != other.csrf, "the token is bound to the session"
    body = {"name": "Csrf Tester", "phone": "+12025550143", "language": "en", "timezone": "UTC"}
    for csrf in ("", "0" * 64, other.csrf):
        refused = await admin.post("/patients", body, csrf=csrf)
        assert refused.status_code == 403, csrf
        assert "did not come from this site" in text_of(refused)
    found = await running.viewer.get("/v1/patients", params={"q": "Csrf Tester"})
    assert found.json()["items"] == [], "a refused form changes nothing"
    assert (await admin.post("/patients", body)).status_code == 303


async def test_a_viewer_sees_no_write_controls_and_its_writes_are_refused(
    running: Any, sign_in: SignIn
) -> None:
    admin, viewer = await sign_in(ADMIN_TOKEN), await sign_in(VIEWER_TOKEN)
    patient_id = await register(admin, "Vera Viewer-Test", "+12025550178")
    appointment_id = await book(admin, patient_id, local_input(5))

    for path in ("/", "/patients", f"/patients/{patient_id}", f"/appointments/{appointment_id}"):
        page = await viewer.get(path)
        assert page.status_code == 200, path
        visible = text_of(page)
        assert "Viewer (read only)" in visible
        for control in (
            "Register a patient",
            "Book an appointment",
            "Cancel appointment",
            "Reschedule",
            "Edit details",
            "Record attendance",
        ):
            assert control not in visible, (path, control)
        forms = re.findall(r'<form method="post" action="([^"]+)"', page.text)
        assert forms == ["/sign-out"], (path, forms)
    assert "Cancel appointment" in text_of(await admin.get(f"/appointments/{appointment_id}"))

    await viewer.get("/")  # a valid CSRF token: the role alone is what refuses
    for path, data in (
        ("/patients", {"name": "X", "phone": "+12025550143", "language": "en", "timezone": "UTC"}),
        (f"/appointments/{appointment_id}/cancel", {"reason": "viewer"}),
        (f"/appointments/{appointment_id}/attendance", {"outcome": "no_show"}),
        (f"/patients/{patient_id}/edit", {"name": "Changed"}),
    ):
        refused = await viewer.post(path, data)
        assert refused.status_code == 403, path
        assert "viewers can look but not change anything" in text_of(refused)
    assert (await viewer.get("/patients/new")).status_code == 403
    detail = (await running.viewer.get(f"/v1/appointments/{appointment_id}")).json()
    assert detail["status"] == "scheduled"


# --------------------------------------------------------------------------- forms


async def test_patient_form_shows_the_apis_messages_next_to_each_field(
    running: Any, sign_in: SignIn
) -> None:
    admin = await sign_in(ADMIN_TOKEN)
    await admin.get("/patients/new")
    bad = {"name": "  ", "phone": "+1555123", "language": "en", "timezone": "Mars/Olympus"}
    page = await admin.post("/patients", bad)
    assert page.status_code == 422

    api = await running.admin.post("/v1/patients", json={**bad, "name": "Ok Name"})
    assert api.status_code == 422
    assert field_error(page, "phone") == api.json()["detail"], "the API's own message"
    assert field_error(page, "name") == "name must not be empty"
    assert field_error(page, "timezone") is not None
    assert "IANA" in (field_error(page, "timezone") or "")
    assert field_error(page, "language") is None
    # what was typed stays in the form
    assert 'value="+1555123"' in page.text
    assert 'value="Mars/Olympus"' in page.text

    # edit: same rules, and a good change is saved
    patient_id = await register(admin, "Edith Editable")
    await admin.get(f"/patients/{patient_id}/edit")
    wrong = await admin.post(
        f"/patients/{patient_id}/edit",
        {"name": "Edith Editable", "phone": "12", "language": "en", "timezone": "UTC"},
    )
    assert wrong.status_code == 422
    assert (field_error(wrong, "phone") or "").startswith("phone:")
    saved = await admin.post(
        f"/patients/{patient_id}/edit",
        {"name": "Edith Edited", "phone": "(202) 555-0178", "language": "fr", "timezone": "UTC"},
    )
    assert saved.status_code == 303
    patient = (await running.viewer.get(f"/v1/patients/{patient_id}")).json()
    assert (patient["name"], patient["phone"], patient["language"]) == (
        "Edith Edited",
        "+12025550178",
        "fr",
    )


async def test_booking_form_errors_are_shown_next_to_their_fields(
    running: Any, sign_in: SignIn
) -> None:
    admin = await sign_in(ADMIN_TOKEN)
    patient_id = await register(admin, "Bo Booking")
    await admin.get("/appointments/new", patient=patient_id)
    page = await admin.post(
        "/appointments",
        {"patient_id": patient_id, "starts_at": local_input(-2), "reminder_offsets": "soon"},
    )
    assert page.status_code == 422
    assert field_error(page, "starts_at") == "starts_at must be in the future"
    assert "is not a duration like 30m, 24h or 2d" in (field_error(page, "reminder_offsets") or "")
    assert field_error(page, "provider") is None
    listed = await running.viewer.get("/v1/appointments", params={"patient_id": patient_id})
    assert listed.json()["items"] == []

    appointment_id = await book(
        admin, patient_id, local_input(3, 14), provider="Dr. Rivera", reminder_offsets="24h, 2h"
    )
    detail = (await running.viewer.get(f"/v1/appointments/{appointment_id}")).json()
    assert detail["reminder_offsets_minutes"] == [1440, 120]
    assert detail["provider"] == "Dr. Rivera"
    starts = datetime.fromisoformat(detail["starts_at"]).astimezone(ZONE)
    assert (starts.hour, starts.minute) == (14, 0), "the form's time is the clinic's time"


# --------------------------------------------------------------------------- lists


async def test_appointments_by_day_with_status_filter_search_and_paging(
    running: Any, sign_in: SignIn
) -> None:
    admin = await sign_in(ADMIN_TOKEN)
    pia = await register(admin, "Pia Paging", "+33612345678")
    ids = [await book(admin, pia, local_input(40 + i // 9, 8 + i % 9)) for i in range(27)]
    await admin.post(f"/appointments/{ids[0]}/cancel", {"reason": "moved away"})

    frm = (datetime.now(ZONE) + timedelta(days=40)).date().isoformat()
    page = await admin.get("/", **{"from": frm})
    visible = text_of(page)
    assert visible.count("Pia Paging") == 25, "one page"
    day = date.fromisoformat(frm)
    assert f"{day:%A} {day.day} {day:%B %Y}" in visible, "grouped under the day's heading"
    assert "✓ Confirmed" not in visible
    assert "⊘ Cancelled" in visible, "the badge: a symbol and a word"
    assert "○ Scheduled" in visible
    next_link = re.search(r'<a href="([^"]+)" rel="next">', page.text)
    assert next_link
    second = await admin.get(html.unescape(next_link.group(1)))
    assert text_of(second).count("Pia Paging") == 2
    assert 'rel="next"' not in second.text
    seen = re.findall(r'href="/appointments/([0-9a-f-]{36})"', page.text + second.text)
    assert sorted(set(seen)) == sorted(ids), "every appointment once, across the pages"

    cancelled = await admin.get("/", status="cancelled", **{"from": frm})
    assert set(re.findall(r'href="/appointments/([0-9a-f-]{36})"', cancelled.text)) == {ids[0]}

    by_name = await admin.get("/", q="pia pag", **{"from": frm})
    assert "Appointments of Pia Paging" in text_of(by_name)
    by_phone = await admin.get("/", q="+33 6 12 34 56 78", **{"from": frm})
    assert "Appointments of Pia Paging" in text_of(by_phone)
    nobody = await admin.get("/", q="Nobody Like This")
    assert "No patient matches" in text_of(nobody)
    garbage = await admin.get("/", cursor="garbage")
    assert garbage.status_code == 400
    assert "cursor is not one this API returned" in text_of(garbage)


async def test_appointment_actions_and_their_refusals(running: Any, sign_in: SignIn) -> None:
    admin = await sign_in(ADMIN_TOKEN)
    patient_id = await register(admin, "Ana Actions", "+34612345678")
    appointment_id = await book(admin, patient_id, local_input(6))
    path = f"/appointments/{appointment_id}"

    moved = await admin.post(f"{path}/reschedule", {"starts_at": local_input(8, 11)})
    assert moved.status_code == 303
    page = await admin.get(moved.headers["location"])
    assert "The appointment was moved" in text_of(page)
    assert "Moved from" in text_of(page), "the timeline tells"

    past = await admin.post(f"{path}/reschedule", {"starts_at": local_input(-1)})
    assert past.status_code == 422
    assert field_error(past, "starts_at") == "starts_at must be in the future"

    assert (await admin.post(f"{path}/attendance", {"outcome": "no_show"})).status_code == 303
    page = await admin.get(path)
    assert "! No-show" in text_of(page)
    assert "Recorded: no-show" in text_of(page), "the timeline tells"
    refused = await admin.post(f"{path}/cancel", {})
    assert refused.status_code == 409
    assert "attendance is already recorded" in text_of(refused)
    api = (await running.viewer.get(f"/v1{path}")).json()
    assert (api["status"], api["cancelled_at"]) == ("no_show", None)

    missing = await admin.get("/appointments/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert "No appointment with this id" in text_of(missing)


# --------------------------------------------------------------------------- analytics


async def test_analytics_weekly_figures_with_the_no_show_split(
    running: Any, sign_in: SignIn
) -> None:
    # Three weeks in the past, the middle one empty. Monday 2025-03-03 is the first.
    monday = date(2025, 3, 3)

    def at(day: date, hour: int) -> datetime:
        return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE).astimezone(UTC)

    events: list[Event] = []
    plans: list[tuple[date, int | None, Literal["attended", "no_show"]]] = [
        # (day, confirm after minutes or None, outcome)
        (monday, 10, "attended"),
        (monday + timedelta(days=2), 30, "no_show"),
        (monday + timedelta(days=3), None, "no_show"),
        (monday + timedelta(days=4), None, "attended"),
        (monday + timedelta(days=14), 6, "attended"),
    ]
    for day, minutes, outcome in plans:
        story = Story(starts_at=at(day, 10))
        sent_at = at(day, 10) - timedelta(hours=24)
        events += [story.registered(sent_at - timedelta(days=3))]
        events += [story.scheduled(sent_at - timedelta(days=2)), story.due(), story.sent(sent_at)]
        if minutes is not None:
            events.append(story.confirmed(sent_at + timedelta(minutes=minutes)))
        events.append(story.attendance(at(day, 11), outcome))
    failing = Story(starts_at=at(monday + timedelta(days=15), 9))
    events += [failing.registered(at(monday, 1)), failing.scheduled(at(monday, 2))]
    events += [failing.due(), failing.failed(at(monday + timedelta(days=14), 9))]
    events.append(failing.opted_out(at(monday + timedelta(days=14), 12)))
    with transaction(running.session_factory) as session:
        for event in events:
            handlers.project(session, event, ZONE)

    admin = await sign_in(VIEWER_TOKEN)  # reading analytics needs no admin
    last = (monday + timedelta(days=20)).isoformat()
    page = await admin.get("/analytics", **{"from": monday.isoformat(), "to": last})
    assert page.status_code == 200
    visible = text_of(page)
    rows = {
        m.group(1): " ".join(m.group(2).split())
        for m in re.finditer(
            r'<tr><th scope="row">(\d{4}-\d\d-\d\d)</th>(.*?)</tr>', page.text, re.S
        )
    }
    assert set(rows) == {"2025-03-03", "2025-03-10", "2025-03-17"}
    # confirmation: week 1 reminded 4, confirmed 2
    assert "<td>4</td><td>2</td><td>50.0 %</td>" in page.text.replace("\n", "")
    # no-shows: confirmed 1 of 2 (50 %), not confirmed 1 of 2 (50 %); week 3: 0 of 1
    assert "50.0 % (1/2)" in visible
    assert "0.0 % (0/1)" in visible
    # reply times: week 1 median of 10 and 30 min = 20 min; week 3: 6 min
    assert "20 min" in visible
    assert "6 min" in visible
    # the empty middle week shows no numbers it does not have
    assert "n/a" in visible
    # send failure and opt-out in week 3
    assert re.search(r"2025-03-17</th><td>1</td><td>1</td>", page.text.replace(" ", ""))
    # the charts' data is the tables' data, drawn by the vendored library
    assert '<script src="/static/chart.umd.js"></script>' in page.text
    data = re.search(
        r'<script type="application/json" id="analytics-data">(.*?)</script>', page.text
    )
    assert data
    series = json.loads(data.group(1))
    assert series["labels"] == ["2025-03-03", "2025-03-10", "2025-03-17"]
    assert series["confirmation_rate"] == [50.0, None, 100.0]
    assert series["no_show_confirmed"] == [50.0, None, 0.0]
    assert series["no_show_unconfirmed"] == [50.0, None, None]
    assert series["reply_minutes"] == [20.0, None, 6.0]
    assert (series["send_failures"], series["opt_outs"]) == ([0, 0, 1], [0, 0, 1])

    bad = await admin.get("/analytics", **{"from": "2025-03-10", "to": "2025-03-01"})
    assert bad.status_code == 400
    assert "to must not be before from" in text_of(bad)


async def test_the_chart_library_is_served_from_the_app(running: Any) -> None:
    script = await running.anonymous.get("/static/chart.umd.js")
    assert script.status_code == 200
    assert "Chart.js v4" in script.text[:200]
    license_ = await running.anonymous.get("/static/chart.js.LICENSE.md")
    assert "MIT License" in license_.text
