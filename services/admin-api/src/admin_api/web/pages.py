"""The clinic's web page: server-rendered routes over the JSON API's service layer.

Reads go through `queries` (the API's own), writes through `handlers` inside
`AdminService.command` (one transaction, deadlock retries, the outbox relay woken), so the
page and the API validate alike and answer with the same messages.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from reminder_contracts import SUPPORTED_LANGUAGES

from .. import handlers, queries, views
from ..api import AdminService, Service
from ..domain import STATUSES, CommandRejected, Conflict, InvalidInput, NotFound
from ..handlers import StoredResponse
from . import analytics, display, forms
from .queries import patient_names, weekly_attendance
from .session import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGN_IN_COOKIE,
    SignedIn,
    WebSession,
    Writer,
    read_form,
    role_for_token,
    signer,
)

HERE = Path(__file__).parent
LANGUAGE_NAMES = {"en": "English", "es": "Spanish (español)", "fr": "French (français)"}
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(
    badge=display.badge,
    when=display.when,
    clock=display.clock,
    duration=display.duration,
    percent=display.percent,
    offset_text=display.offset_text,
    describe=display.describe,
    status_choices=display.STATUS_CHOICES,
    language_options=[(code, LANGUAGE_NAMES.get(code, code)) for code in SUPPORTED_LANGUAGES],
)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

#: Pages show patient data: never cached, never framed, scripts and styles from here only.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
PAGE_SIZE = 25
PATIENT_LIST_SIZE = 50
COMMON_TIMEZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Europe/London",
    "Europe/Madrid",
    "Europe/Paris",
    "UTC",
)
_PHONE_LIKE = re.compile(r"^[\d\s()+.\-]{7,}$")


def render(
    request: Request,
    template: str,
    session: WebSession | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    service: AdminService = request.app.state.admin
    response = templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "zone": service.settings.clinic_zone,
            "zone_name": service.settings.clinic_timezone,
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def status_of(exc: CommandRejected) -> int:
    return 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 422


async def run_command(
    service: AdminService, request: Request, command: Callable[[Session], UUID | None]
) -> UUID | None:
    """Run a handler through the API's command wrapper; the id it returns, if any."""

    def stored(session: Session) -> StoredResponse:
        result = command(session)
        return StoredResponse(200, {"id": None if result is None else str(result)})

    response = await service.command(request, None, stored)
    found = json.loads(bytes(response.body))["id"]
    return None if found is None else UUID(found)


def today(service: AdminService) -> date:
    return handlers.utcnow().astimezone(service.settings.clinic_zone).date()


# --------------------------------------------------------------------------- sign-in


def _safe_next(raw: str | None) -> str:
    # Only a path on this site: never an open redirect to another host.
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/"


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    if signer(request).read(request.cookies.get(SESSION_COOKIE)) is not None:
        return see_other(_safe_next(next))
    return _sign_in_page(request, next=_safe_next(next))


def _sign_in_page(
    request: Request, *, next: str, error: str | None = None, status_code: int = 200
) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request, "sign_in.html", None, status_code, nonce=nonce, next=next, error=error
    )
    signer(request).set_cookie(response, SIGN_IN_COOKIE, nonce, max_age=3600)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    await request.body()
    form = await request.form()
    nonce, token, next_ = (str(form.get(k, "")) for k in ("nonce", "token", "next"))
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not hmac.compare_digest(nonce.encode(), expected.encode()):
        return _sign_in_page(
            request,
            next=_safe_next(next_),
            error="The sign-in form expired. Please enter your token again.",
            status_code=403,
        )
    role = role_for_token(request, token) if token.strip() else None
    if role is None:
        return _sign_in_page(
            request,
            next=_safe_next(next_),
            error="This token is not valid. Check it and try again."
            if token.strip()
            else "Enter your access token.",
            status_code=401,
        )
    cookie, _ = signer(request).issue(role)
    response = see_other(_safe_next(next_))
    signer(request).set_cookie(response, SESSION_COOKIE, cookie, max_age=SESSION_SECONDS)
    signer(request).clear_cookie(response, SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SignedIn) -> Response:
    await read_form(request, session)
    response = see_other("/sign-in")
    signer(request).clear_cookie(response, SESSION_COOKIE)
    return response


# --------------------------------------------------------------------------- appointments


@router.get("/")
async def appointments_page(
    request: Request,
    service: Service,
    session: SignedIn,
    status: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    q: str | None = None,
    patient: UUID | None = None,
    cursor: str | None = None,
) -> Response:
    zone = service.settings.clinic_zone
    errors: forms.Errors = {}
    first = forms.check(errors, "from", lambda: forms.optional_date(from_, "from"))
    last = forms.check(errors, "to", lambda: forms.optional_date(to, "to"))
    if not from_ and "from" not in errors:
        first = today(service)
    chosen_status = next((known for known in STATUSES if known == status), None)
    if status and chosen_status is None:
        errors["status"] = f"status must be one of {', '.join(STATUSES)}"
    shown_from = from_ or ("" if first is None else first.isoformat())
    filters = {"status": chosen_status or "", "from": shown_from, "to": to or "", "q": q or ""}

    matches: list[views.Patient] = []
    chosen: views.Patient | None = None
    page = views.AppointmentPage(items=[], next_cursor=None)
    names: dict[UUID, str] = {}
    try:
        if patient is not None:
            chosen = await service.read(lambda s: queries.get_patient(s, patient))
        elif q and q.strip():
            matches = await _search_patients(service, q)
            if len(matches) == 1:
                chosen = matches[0]
        if not errors and (chosen is not None or not (q and q.strip())):
            starts_from = None if first is None else _day_start(first, zone)
            starts_before = None if last is None else _day_start(last + timedelta(days=1), zone)
            patient_id = chosen.id if chosen else None
            page = await service.read(
                lambda s: queries.list_appointments(
                    s,
                    status=chosen_status,
                    starts_from=starts_from,
                    starts_before=starts_before,
                    patient_id=patient_id,
                    limit=PAGE_SIZE,
                    cursor=cursor,
                )
            )
            ids = [item.patient_id for item in page.items]
            names = await service.read(lambda s: patient_names(s, ids))
    except CommandRejected as exc:
        errors[forms.field_of(exc.detail, ("phone", "cursor", "from", "to"))] = exc.detail
    kept = {k: v for k, v in filters.items() if v}
    if chosen is not None:
        kept["patient"] = str(chosen.id)
        kept.pop("q", None)
    return render(
        request,
        "appointments.html",
        session,
        400 if errors else 200,
        groups=display.by_day(page.items, zone),
        today=today(service),
        day_heading=display.day_heading,
        names=names,
        filters=filters,
        errors=errors,
        matches=matches if len(matches) > 1 else [],
        searched=bool(q and q.strip()) and patient is None,
        chosen=chosen,
        next_url=f"/?{urlencode({**kept, 'cursor': page.next_cursor})}"
        if page.next_cursor
        else None,
        first_url=f"/?{urlencode(kept)}" if cursor else None,
        search_url=lambda pid: f"/?{urlencode({**kept, 'patient': str(pid), 'q': ''})}",
    )


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), zone)


async def _search_patients(service: AdminService, q: str) -> list[views.Patient]:
    region = service.settings.default_phone_region
    text = q.strip()
    if _PHONE_LIKE.match(text):
        found = await service.read(
            lambda s: queries.find_patients(s, phone=text, phone_region=region, limit=20)
        )
    else:
        found = await service.read(lambda s: queries.find_patients(s, q=text, limit=20))
    return found.items


@router.get("/appointments/new")
async def new_appointment_form(
    request: Request, service: Service, session: Writer, patient: UUID | None = None
) -> Response:
    chosen = await _patient_or_none(service, patient)
    return render(
        request,
        "appointment_form.html",
        session,
        patient=chosen,
        values={"reminder_offsets": ""},
        errors={},
    )


async def _patient_or_none(service: AdminService, patient: UUID | None) -> views.Patient | None:
    if patient is None:
        return None
    try:
        return await service.read(lambda s: queries.get_patient(s, patient))
    except NotFound:
        return None


@router.post("/appointments")
async def book_appointment(request: Request, service: Service, session: Writer) -> Response:
    fields = await read_form(request, session)
    zone = service.settings.clinic_zone
    patient = await _patient_or_none(service, _uuid(fields.get("patient_id")))
    errors, starts_at = forms.appointment_errors(fields, zone, service.context.now())
    if patient is None:
        errors["form"] = "Choose a patient first: open the patient and use “Book an appointment”."
    if not errors and patient is not None and starts_at is not None:
        patient_id, start = patient.id, starts_at
        try:
            appointment_id = await run_command(
                service,
                request,
                lambda s: handlers.schedule_appointment(
                    s,
                    service.context,
                    patient_id=patient_id,
                    starts_at=start,
                    location=fields.get("location") or None,
                    provider=fields.get("provider") or None,
                    reminder_offsets=forms.offsets(fields.get("reminder_offsets", "")),  # type: ignore[arg-type]
                ),
            )
            return see_other(f"/appointments/{appointment_id}?done=booked")
        except CommandRejected as exc:
            names = ("starts_at", "location", "provider", "reminder_offsets")
            errors[forms.field_of(exc.detail, names)] = exc.detail
    return render(
        request,
        "appointment_form.html",
        session,
        422,
        patient=patient,
        values=fields,
        errors=errors,
    )


def _uuid(raw: str | None) -> UUID | None:
    try:
        return UUID(raw) if raw else None
    except ValueError:
        return None


DONE_MESSAGES = {
    "booked": "The appointment is booked. Reminders will be sent before it.",
    "rescheduled": "The appointment was moved. The patient will be reminded of the new time.",
    "cancelled": "The appointment is cancelled. No more reminders will be sent.",
    "attended": "Recorded: the patient attended.",
    "no_show": "Recorded: the patient did not come.",
    "registered": "The patient is registered.",
    "updated": "The patient's details are saved.",
}


@router.get("/appointments/{appointment_id}")
async def appointment_page(
    request: Request,
    appointment_id: UUID,
    service: Service,
    session: SignedIn,
    done: str | None = None,
) -> Response:
    return await _appointment_page(request, service, session, appointment_id, done=done)


async def _appointment_page(
    request: Request,
    service: AdminService,
    session: WebSession,
    appointment_id: UUID,
    *,
    done: str | None = None,
    errors: forms.Errors | None = None,
    status_code: int = 200,
) -> Response:
    try:
        detail = await service.read(lambda s: queries.get_appointment(s, appointment_id))
    except NotFound as exc:
        return render(request, "not_found.html", session, 404, message=exc.detail)
    patient = await _patient_or_none(service, detail.patient_id)
    zone = service.settings.clinic_zone
    return render(
        request,
        "appointment.html",
        session,
        status_code,
        a=detail,
        patient=patient,
        changeable=detail.cancelled_at is None and detail.attendance is None,
        starts_local=detail.starts_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        done=DONE_MESSAGES.get(done or ""),
        errors=errors or {},
    )


@router.post("/appointments/{appointment_id}/reschedule")
async def reschedule(
    request: Request, appointment_id: UUID, service: Service, session: Writer
) -> Response:
    fields = await read_form(request, session)
    try:
        starts_at = forms.local_datetime(fields.get("starts_at", ""), service.settings.clinic_zone)
        await run_command(
            service,
            request,
            lambda s: _none(
                handlers.reschedule_appointment(
                    s, service.context, appointment_id, starts_at=starts_at
                )
            ),
        )
    except CommandRejected as exc:
        return await _appointment_page(
            request,
            service,
            session,
            appointment_id,
            errors={"reschedule": exc.detail},
            status_code=status_of(exc),
        )
    return see_other(f"/appointments/{appointment_id}?done=rescheduled")


def _none(_: object) -> None:
    """Drop a handler's "did anything change" flag: the page shows the result either way."""
    return None


@router.post("/appointments/{appointment_id}/cancel")
async def cancel(
    request: Request, appointment_id: UUID, service: Service, session: Writer
) -> Response:
    fields = await read_form(request, session)
    reason = fields.get("reason") or None
    try:
        await run_command(
            service,
            request,
            lambda s: handlers.cancel_appointment(
                s, service.context, appointment_id, reason=reason
            ),
        )
    except CommandRejected as exc:
        return await _appointment_page(
            request,
            service,
            session,
            appointment_id,
            errors={"cancel": exc.detail},
            status_code=status_of(exc),
        )
    return see_other(f"/appointments/{appointment_id}?done=cancelled")


@router.post("/appointments/{appointment_id}/attendance")
async def attendance(
    request: Request, appointment_id: UUID, service: Service, session: Writer
) -> Response:
    fields = await read_form(request, session)
    outcome = fields.get("outcome", "")
    try:
        if outcome not in ("attended", "no_show"):
            raise InvalidInput("outcome must be attended or no_show")
        chosen: Literal["attended", "no_show"] = "attended" if outcome == "attended" else "no_show"
        await run_command(
            service,
            request,
            lambda s: handlers.record_attendance(
                s, service.context, appointment_id, outcome=chosen
            ),
        )
    except CommandRejected as exc:
        return await _appointment_page(
            request,
            service,
            session,
            appointment_id,
            errors={"attendance": exc.detail},
            status_code=status_of(exc),
        )
    return see_other(f"/appointments/{appointment_id}?done={outcome}")


# --------------------------------------------------------------------------- patients


@router.get("/patients")
async def patients_page(
    request: Request, service: Service, session: SignedIn, q: str | None = None
) -> Response:
    errors: forms.Errors = {}
    items: list[views.Patient] = []
    try:
        if q and q.strip():
            items = await _search_patients(service, q)
        else:
            items = (
                await service.read(lambda s: queries.find_patients(s, limit=PATIENT_LIST_SIZE))
            ).items
    except CommandRejected as exc:
        errors["q"] = exc.detail
    return render(
        request,
        "patients.html",
        session,
        400 if errors else 200,
        patients=items,
        q=q or "",
        errors=errors,
        limited=not q and len(items) == PATIENT_LIST_SIZE,
    )


def _patient_form_values(fields: dict[str, str]) -> dict[str, str]:
    return {k: fields.get(k, "") for k in ("name", "phone", "language", "timezone")}


@router.get("/patients/new")
async def new_patient_form(request: Request, service: Service, session: Writer) -> Response:
    values = {"name": "", "phone": "", "language": "en", "timezone": ""}
    values["timezone"] = service.settings.clinic_timezone
    return _patient_form(request, session, None, values, {})


def _patient_form(
    request: Request,
    session: WebSession,
    patient: views.Patient | None,
    values: dict[str, str],
    errors: forms.Errors,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "patient_form.html",
        session,
        status_code,
        patient=patient,
        values=values,
        errors=errors,
        timezones=COMMON_TIMEZONES,
    )


@router.post("/patients")
async def register_patient(request: Request, service: Service, session: Writer) -> Response:
    values = _patient_form_values(await read_form(request, session))
    errors = forms.patient_errors(values, service.settings.default_phone_region)
    if not errors:
        try:
            patient_id = await run_command(
                service,
                request,
                lambda s: handlers.register_patient(s, service.context, **values),
            )
            return see_other(f"/patients/{patient_id}?done=registered")
        except CommandRejected as exc:
            errors[forms.field_of(exc.detail, tuple(values))] = exc.detail
    return _patient_form(request, session, None, values, errors, 422)


@router.get("/patients/{patient_id}")
async def patient_page(
    request: Request,
    patient_id: UUID,
    service: Service,
    session: SignedIn,
    done: str | None = None,
    cursor: str | None = None,
) -> Response:
    try:
        patient = await service.read(lambda s: queries.get_patient(s, patient_id))
        page = await service.read(
            lambda s: queries.list_appointments(
                s, patient_id=patient_id, limit=PAGE_SIZE, cursor=cursor
            )
        )
    except NotFound as exc:
        return render(request, "not_found.html", session, 404, message=exc.detail)
    except InvalidInput as exc:
        return render(request, "not_found.html", session, 400, message=exc.detail)
    return render(
        request,
        "patient.html",
        session,
        patient=patient,
        appointments=page.items,
        next_url=f"/patients/{patient_id}?{urlencode({'cursor': page.next_cursor})}"
        if page.next_cursor
        else None,
        done=DONE_MESSAGES.get(done or ""),
    )


@router.get("/patients/{patient_id}/edit")
async def edit_patient_form(
    request: Request, patient_id: UUID, service: Service, session: Writer
) -> Response:
    patient = await _patient_or_none(service, patient_id)
    if patient is None:
        return render(request, "not_found.html", session, 404, message="no patient with this id")
    values = {
        "name": patient.name,
        "phone": patient.phone,
        "language": patient.language,
        "timezone": patient.timezone,
    }
    return _patient_form(request, session, patient, values, {})


@router.post("/patients/{patient_id}/edit")
async def edit_patient(
    request: Request, patient_id: UUID, service: Service, session: Writer
) -> Response:
    values = _patient_form_values(await read_form(request, session))
    patient = await _patient_or_none(service, patient_id)
    if patient is None:
        return render(request, "not_found.html", session, 404, message="no patient with this id")
    errors = forms.patient_errors(values, service.settings.default_phone_region)
    if not errors:
        try:
            await run_command(
                service,
                request,
                lambda s: _none(handlers.update_patient(s, service.context, patient_id, **values)),
            )
            return see_other(f"/patients/{patient_id}?done=updated")
        except CommandRejected as exc:
            errors[forms.field_of(exc.detail, tuple(values))] = exc.detail
    return _patient_form(request, session, patient, values, errors, 422)


# --------------------------------------------------------------------------- analytics


@router.get("/analytics")
async def analytics_page(
    request: Request,
    service: Service,
    session: SignedIn,
    raw_from: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
) -> Response:
    zone = service.settings.clinic_zone
    errors: forms.Errors = {}
    default_first, default_last = analytics.default_range(today(service))
    first = forms.check(errors, "from", lambda: forms.optional_date(raw_from, "from"))
    last = forms.check(errors, "to", lambda: forms.optional_date(to, "to"))
    first, last = first or default_first, last or default_last
    weeks: list[analytics.WeekFigures] = []
    total: views.DayFigures | None = None
    if not errors:
        try:
            stats = await service.read(
                lambda s: queries.stats(s, first=first, last=last, zone=zone)
            )
            attendance = await service.read(lambda s: weekly_attendance(s, first=first, last=last))
            weeks = analytics.by_week(stats.days, attendance)
            total = stats.total
        except CommandRejected as exc:
            errors[forms.field_of(exc.detail, ("from", "to"))] = exc.detail
    return render(
        request,
        "analytics.html",
        session,
        400 if errors else 200,
        first=first,
        last=last,
        weeks=weeks,
        overall=analytics.overall(weeks, first, total),
        errors=errors,
        # in a <script> block: no "<" may close it early
        chart=json.dumps(analytics.chart_data(weeks)).replace("<", "\\u003c"),
    )
