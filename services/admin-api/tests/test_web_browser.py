"""The web page end to end in a real browser (Debian's chromium driven by Playwright)
against the running admin-api on MariaDB and Tansu. Screenshots of every page go to
artifacts/screenshots/ for review."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from admin_api import handlers
from admin_api.samples import Story
from reminder_contracts import Event
from reminder_runtime.db import transaction

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = "admin-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
ZONE = ZoneInfo("America/New_York")  # the `running` app's CLINIC_TIMEZONE
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    # The system browser: Playwright's own download does not work here (never installed).
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


def base_url(running: Any) -> str:
    # localhost (not 127.0.0.1): browsers treat it as a secure origin, so they keep the
    # app's Secure cookies over plain http, as they would behind HTTPS in production.
    return f"http://localhost:{running.settings.http_port}"


async def new_page(browser: Browser, running: Any, width: int = 1280) -> tuple[Page, list[str]]:
    context = await browser.new_context(
        base_url=base_url(running), viewport={"width": width, "height": 900}
    )
    page = await context.new_page()
    problems: list[str] = []
    # A form sent back with its errors is a 422 page: the browser logs it, it is no fault.
    expected = "the server responded with a status of 422"
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" and expected not in m.text else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


async def sign_in(page: Page, token: str) -> None:
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/sign-in\?next=/"))
    await page.get_by_label("Access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Today and upcoming")


def local_input(days: int, hour: int) -> str:
    day = (datetime.now(ZONE) + timedelta(days=days)).date()
    return f"{day.isoformat()}T{hour:02d}:00"


def past_weeks_of_history(running: Any) -> list[Story]:
    """Some weeks of reminders, replies and attendance, for the analytics page."""
    now = datetime.now(UTC)
    events: list[Event] = []
    stories = []
    for i in range(40):
        starts = (now - timedelta(days=3 + i * 1.3)).replace(minute=0, second=0, microsecond=0)
        story = Story(starts_at=starts)
        stories.append(story)
        sent = starts - timedelta(hours=24)
        events += [
            story.registered(sent - timedelta(days=5)),
            story.scheduled(sent - timedelta(days=4)),
        ]
        events += [story.due()]
        if i % 9 == 4:
            events.append(story.failed(sent))
            continue
        events.append(story.sent(sent))
        confirmed = i % 3 != 0
        if confirmed:
            events.append(story.confirmed(sent + timedelta(minutes=5 + (i * 7) % 50)))
        outcome: Literal["attended", "no_show"] = (
            "no_show" if (i % 11 == 0 if confirmed else i % 2 == 0) else "attended"
        )
        events.append(story.attendance(starts + timedelta(hours=1), outcome))
        if i % 13 == 5:
            events.append(story.opted_out(sent + timedelta(hours=2)))
    with transaction(running.session_factory) as session:
        for event in events:
            handlers.project(session, event, ZONE)
    return stories


async def test_staff_book_and_cancel_an_appointment_for_a_new_patient(
    running: Any, browser: Browser
) -> None:
    page, problems = await new_page(browser, running)
    await page.goto("/")
    await shot(page, "01-sign-in")
    await sign_in(page, ADMIN_TOKEN)

    # keyboard: the first Tab reaches the skip link, visibly focused
    await page.keyboard.press("Tab")
    focused = page.locator(":focus")
    await expect(focused).to_have_text("Skip to content")
    await shot(page, "02-appointments-empty-with-skip-link")

    # register a patient: a bad phone number is refused, with the reason beside the field
    await nav(page, "Patients").click()
    await page.get_by_role("link", name="Register a patient").click()
    await page.get_by_label("Full name").fill("Marie Browser")
    await page.get_by_label("Mobile phone number").fill("+1 555 0100")
    await page.get_by_label("Language of the reminders").select_option("fr")
    await page.get_by_label("Patient's time zone").fill("Europe/Paris")
    await page.get_by_role("button", name="Register patient").click()
    phone = page.get_by_label("Mobile phone number")
    await expect(phone).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#phone-error")).to_contain_text("phone:")
    await expect(page.locator("#name-error")).to_have_count(0)
    await expect(page.get_by_label("Full name")).to_have_value("Marie Browser")
    await shot(page, "03-register-patient-bad-phone")

    await phone.fill("+33 6 12 34 56 78")
    await page.get_by_role("button", name="Register patient").click()
    await expect(page.get_by_role("status")).to_contain_text("The patient is registered")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Marie Browser")
    await expect(page.get_by_text("+33612345678")).to_be_visible()
    await shot(page, "04-patient-detail")

    # book an appointment for her
    await page.get_by_role("link", name="Book an appointment").click()
    await page.get_by_label("Date and time").fill(local_input(2, 9))
    await page.get_by_label("Provider").fill("Dr. Rivera")
    await page.get_by_label("Location").fill("Main St clinic, room 2")
    await shot(page, "05-book-appointment")
    await page.get_by_role("button", name="Book appointment").click()
    await expect(page.get_by_role("status")).to_contain_text("The appointment is booked")
    await expect(page.locator(".status-line")).to_contain_text("Scheduled")
    await shot(page, "06-appointment-booked")

    # it is listed under its day, and opens from there
    await nav(page, "Appointments").click()
    row = page.get_by_role("row").filter(has_text="Marie Browser")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("09:00")
    await expect(row).to_contain_text("Scheduled")
    day = (datetime.now(ZONE) + timedelta(days=2)).date()
    await expect(
        page.get_by_role("heading", name=re.compile(f"{day:%A} {day.day}"))
    ).to_be_visible()
    await shot(page, "07-appointments-listed")
    await row.get_by_role("link", name="Marie Browser").click()

    # cancel it and see the status change
    await page.get_by_label("Reason for cancelling (optional)").fill("patient called")
    await page.get_by_role("button", name="Cancel appointment").click()
    await expect(page.get_by_role("status")).to_contain_text("The appointment is cancelled")
    await expect(page.locator(".status-line")).to_contain_text("Cancelled")
    await expect(page.get_by_role("button", name="Cancel appointment")).to_have_count(0)
    await expect(page.locator(".timeline")).to_contain_text("Cancelled: patient called")
    await shot(page, "08-appointment-cancelled")
    await nav(page, "Appointments").click()
    await expect(page.get_by_role("row").filter(has_text="Marie Browser")).to_contain_text(
        "Cancelled"
    )

    # analytics: charts drawn by Chart.js, the numbers in tables beside them
    past_weeks_of_history(running)
    await nav(page, "Analytics").click()
    await expect(page.get_by_role("heading", name="Confirmation rate by week")).to_be_visible()
    await page.wait_for_load_state("load")
    drawn = await page.evaluate(
        "() => [...document.querySelectorAll('canvas')]"
        ".map(c => typeof Chart !== 'undefined' && !!Chart.getChart(c))"
    )
    assert drawn == [True, True, True, True], "every chart drawn"
    table = page.get_by_role("table", name="Confirmation rate by week")
    await expect(table.get_by_role("row")).to_have_count(13)  # header + 12 weeks
    await shot(page, "09-analytics")

    # a tablet's width: the list still reads
    await page.set_viewport_size({"width": 820, "height": 1180})
    await nav(page, "Appointments").click()
    await shot(page, "10-appointments-tablet")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile("/sign-in$"))
    await page.goto("/patients")
    await expect(page).to_have_url(re.compile(r"/sign-in\?next=/patients"))
    assert problems == [], "no script errors, no blocked resources"


async def test_a_viewer_sees_no_controls_that_write(running: Any, browser: Browser) -> None:
    page, problems = await new_page(browser, running)
    await sign_in(page, VIEWER_TOKEN)
    await expect(page.get_by_text("Viewer (read only)")).to_be_visible()
    await expect(page.get_by_role("link", name="Book an appointment")).to_have_count(0)
    await nav(page, "Patients").click()
    await expect(page.get_by_role("link", name="Register a patient")).to_have_count(0)
    await shot(page, "11-viewer-patients")
    await page.get_by_role("link", name="Marie Browser").first.click()
    await expect(page.get_by_role("link", name="Edit details")).to_have_count(0)
    await page.get_by_role("link", name=re.compile(r"\d{4}, 09:00")).first.click()
    await expect(page.locator(".status-line")).to_contain_text("Cancelled")
    await expect(page.get_by_role("button")).to_have_count(1)  # Sign out, nothing else
    await shot(page, "12-viewer-appointment")

    # typing a write address by hand is refused too
    await page.goto("/patients/new")
    await expect(page.get_by_role("alert")).to_contain_text("viewers can look but not change")
    assert all("status of 403" in p for p in problems), problems


AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


async def test_every_page_passes_the_axe_accessibility_checks(
    running: Any, browser: Browser
) -> None:
    """WCAG 2 A/AA rules (labels, contrast, names, landmarks) on every kind of page, for
    both roles, with a form showing its errors."""
    patient = await running.admin.post(
        "/v1/patients",
        json={"name": "Axel Access", "phone": "+12025550178", "language": "en", "timezone": "UTC"},
    )
    patient_id = patient.json()["id"]
    starts = (datetime.now(UTC) + timedelta(days=4)).isoformat()
    booked = await running.admin.post(
        "/v1/appointments", json={"patient_id": patient_id, "starts_at": starts}
    )
    appointment_id = booked.json()["id"]
    answered = past_weeks_of_history(running)[1]  # reminded, confirmed, attended

    # axe is injected as an inline script: only this check's browser ignores the CSP
    context = await browser.new_context(base_url=base_url(running), bypass_csp=True)
    page = await context.new_page()
    failures: dict[str, list[str]] = {}

    async def check(name: str) -> None:
        await page.wait_for_load_state("load")
        await page.add_script_tag(path=str(AXE))
        result = await page.evaluate(
            """async () => (await axe.run(document, {
                runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}
            })).violations.map(v => `${v.id} (${v.impact}): ${v.nodes.length} element(s)`)"""
        )
        if result:
            failures[name] = result

    await page.goto("/sign-in")
    await check("sign-in")
    await sign_in(page, ADMIN_TOKEN)
    for path in (
        "/",
        "/patients",
        f"/patients/{patient_id}",
        "/patients/new",
        f"/appointments/new?patient={patient_id}",
        f"/appointments/{appointment_id}",
        "/analytics",
    ):
        await page.goto(path)
        await check(path)
    await page.goto(f"/appointments/{answered.appointment_id}")
    timeline = page.locator(".timeline")
    for step in ("Reminder planned 1 d before", "Reminder sent", "Patient confirmed"):
        await expect(timeline).to_contain_text(step)
    await expect(page.locator(".status-line")).to_contain_text("Attended")
    await check("appointment with reminders and replies")
    await shot(page, "13-appointment-timeline")
    await page.goto("/patients/new")
    await page.get_by_role("button", name="Register patient").click()  # all fields empty
    await expect(page.locator(".field-error").first).to_be_visible()
    await check("register form with errors")
    await context.close()
    assert failures == {}, failures
