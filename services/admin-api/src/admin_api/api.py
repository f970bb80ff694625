"""The HTTP adapter: routes, bearer-token auth and JSON errors over `handlers` and `queries`."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from reminder_runtime.db import transaction

from . import handlers, queries, views
from .domain import CommandRejected, Conflict, InvalidInput, NotFound, Status
from .handlers import CommandContext, StoredResponse
from .settings import Role, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# MySQL error codes worth one more try: deadlock, lock wait timeout.
_RETRYABLE_DB_ERRORS = (1213, 1205)
_ATTEMPTS = 3


@dataclass
class AdminService:
    """What the routes need, built once per app (see `app.create_app`)."""

    settings: Settings
    session_factory: sessionmaker[Session]
    context: CommandContext
    #: tells the outbox relay new events are waiting (publish now, not at the next poll)
    wake_relay: Callable[[], None]

    async def read(self, query: Callable[[Session], T]) -> T:
        def run() -> T:
            with transaction(self.session_factory) as session:
                return query(session)

        return await asyncio.to_thread(run)

    async def command(
        self,
        request: Request,
        idempotency_key: str | None,
        command: Callable[[Session], StoredResponse],
    ) -> JSONResponse:
        """Run a command in one transaction; with an Idempotency-Key, at most once."""
        fingerprint = handlers.request_fingerprint(
            request.method, request.url.path, await request.body()
        )

        def run() -> StoredResponse:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    with transaction(self.session_factory) as session:
                        if idempotency_key:
                            stored = handlers.recall_response(session, idempotency_key, fingerprint)
                            if stored is not None:
                                return stored
                        response = command(session)
                        if idempotency_key:
                            handlers.remember_response(
                                session, idempotency_key, fingerprint, response
                            )
                        return response
                except IntegrityError:
                    # A concurrent request with the same key won: the next attempt recalls it.
                    if not idempotency_key or attempt == _ATTEMPTS:
                        raise
                except OperationalError as exc:
                    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
                    if code not in _RETRYABLE_DB_ERRORS or attempt == _ATTEMPTS:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

        response = await asyncio.to_thread(run)
        self.wake_relay()
        return JSONResponse(response.body, status_code=response.status_code)


def get_service(request: Request) -> AdminService:
    service: AdminService = request.app.state.admin
    return service


Service = Annotated[AdminService, Depends(get_service)]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")


def role_of_token(settings: Settings, given: str) -> Role | None:
    """The role `given` grants, or None. Used by the API and by the web page's sign-in."""
    role: Role | None = None
    # Compare with every token, each in constant time: timing tells nothing about which.
    for token, token_role in settings.tokens.items():
        if hmac.compare_digest(given.encode(), token.encode()):
            role = token_role
    return role


def authenticate(
    service: Service,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Role:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _Unauthorized("missing bearer token")
    role = role_of_token(service.settings, credentials.credentials)
    if role is None:
        raise _Unauthorized("invalid bearer token")
    return role


def require_admin(role: Annotated[Role, Depends(authenticate)]) -> Role:
    if role != "admin":
        raise _Forbidden("this token may read but not change anything (viewer role)")
    return role


Reader = Annotated[Role, Depends(authenticate)]
Writer = Annotated[Role, Depends(require_admin)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="a retried POST with the same key returns the first result",
    ),
]


class _Unauthorized(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail


class _Forbidden(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail


# --------------------------------------------------------------------------- request bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientIn(_Body):
    name: str = Field(max_length=1000, examples=["Ada Lovelace"])
    phone: str = Field(max_length=40, examples=["+12025550143", "(202) 555-0143"])
    language: str = Field(max_length=16, examples=["en"])
    timezone: str = Field(max_length=64, examples=["America/New_York"])


class PatientPatch(_Body):
    name: str | None = Field(None, max_length=1000)
    phone: str | None = Field(None, max_length=40)
    language: str | None = Field(None, max_length=16)
    timezone: str | None = Field(None, max_length=64)


class AppointmentIn(_Body):
    patient_id: UUID
    starts_at: datetime = Field(
        description="with its UTC offset", examples=["2030-01-31T09:30:00-05:00"]
    )
    location: str | None = Field(None, max_length=1000)
    provider: str | None = Field(None, max_length=1000)
    reminder_offsets: list[str | int] | None = Field(
        None,
        max_length=20,
        description="how long before to remind: 30m, 24h, 2d or minutes; default: the clinic's",
        examples=[["24h", "2h"]],
    )


class ReschedulePatch(_Body):
    starts_at: datetime = Field(description="with its UTC offset")


class CancelIn(_Body):
    reason: str | None = Field(None, max_length=2000)


class AttendanceIn(_Body):
    outcome: Literal["attended", "no_show"]


class Created(BaseModel):
    id: UUID


# --------------------------------------------------------------------------- routes

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or wrong bearer token"},
    422: {"description": "invalid request, with the reason in `detail`"},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"description": "the token's role may not write"},
}

router = APIRouter(prefix="/v1", responses=ERRORS)


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", by_alias=True)


@router.post(
    "/patients",
    status_code=201,
    response_model=views.Patient,
    tags=["patients"],
    responses=WRITE_ERRORS,
)
async def register_patient(
    body: PatientIn, service: Service, _: Writer, request: Request, key: IdempotencyKey = None
) -> JSONResponse:
    def command(session: Session) -> StoredResponse:
        patient_id = handlers.register_patient(
            session,
            service.context,
            name=body.name,
            phone=body.phone,
            language=body.language,
            timezone=body.timezone,
        )
        return StoredResponse(201, _dump(queries.get_patient(session, patient_id)))

    return await service.command(request, key, command)


@router.get("/patients", response_model=views.PatientList, tags=["patients"])
async def find_patients(
    service: Service,
    _: Reader,
    phone: Annotated[str | None, Query(max_length=40, description="any format")] = None,
    q: Annotated[str | None, Query(max_length=200, description="part of the name")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> views.PatientList:
    region = service.settings.default_phone_region
    return await service.read(
        lambda s: queries.find_patients(s, phone=phone, q=q, phone_region=region, limit=limit)
    )


@router.get(
    "/patients/{patient_id}",
    response_model=views.Patient,
    tags=["patients"],
    responses={404: {"description": "no such patient"}},
)
async def get_patient(patient_id: UUID, service: Service, _: Reader) -> views.Patient:
    return await service.read(lambda s: queries.get_patient(s, patient_id))


@router.patch(
    "/patients/{patient_id}",
    response_model=views.Patient,
    tags=["patients"],
    responses={**WRITE_ERRORS, 404: {"description": "no such patient"}},
)
async def update_patient(
    patient_id: UUID, body: PatientPatch, service: Service, _: Writer, request: Request
) -> JSONResponse:
    if not body.model_fields_set:
        raise InvalidInput("nothing to change: give name, phone, language or timezone")
    for field in body.model_fields_set:
        if getattr(body, field) is None:
            raise InvalidInput(f"{field} cannot be null")

    def command(session: Session) -> StoredResponse:
        handlers.update_patient(
            session,
            service.context,
            patient_id,
            name=body.name,
            phone=body.phone,
            language=body.language,
            timezone=body.timezone,
        )
        return StoredResponse(200, _dump(queries.get_patient(session, patient_id)))

    return await service.command(request, None, command)


@router.post(
    "/appointments",
    status_code=201,
    response_model=views.AppointmentDetail,
    tags=["appointments"],
    responses=WRITE_ERRORS,
)
async def schedule_appointment(
    body: AppointmentIn,
    service: Service,
    _: Writer,
    request: Request,
    key: IdempotencyKey = None,
) -> JSONResponse:
    def command(session: Session) -> StoredResponse:
        appointment_id = handlers.schedule_appointment(
            session,
            service.context,
            patient_id=body.patient_id,
            starts_at=body.starts_at,
            location=body.location,
            provider=body.provider,
            reminder_offsets=body.reminder_offsets,
        )
        return StoredResponse(201, _dump(queries.get_appointment(session, appointment_id)))

    return await service.command(request, key, command)


@router.get("/appointments", response_model=views.AppointmentPage, tags=["appointments"])
async def list_appointments(
    service: Service,
    _: Reader,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    starts_from: Annotated[
        datetime | None, Query(alias="from", description="starts at or after (with offset)")
    ] = None,
    starts_before: Annotated[
        datetime | None, Query(alias="to", description="starts before (with offset)")
    ] = None,
    patient_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> views.AppointmentPage:
    return await service.read(
        lambda s: queries.list_appointments(
            s,
            status=status_,
            starts_from=starts_from,
            starts_before=starts_before,
            patient_id=patient_id,
            limit=limit,
            cursor=cursor,
        )
    )


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such appointment"}}
_CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    **WRITE_ERRORS,
    **_NOT_FOUND,
    409: {"description": "the appointment is cancelled (or already took place)"},
}


@router.get(
    "/appointments/{appointment_id}",
    response_model=views.AppointmentDetail,
    tags=["appointments"],
    responses=_NOT_FOUND,
)
async def get_appointment(
    appointment_id: UUID, service: Service, _: Reader
) -> views.AppointmentDetail:
    return await service.read(lambda s: queries.get_appointment(s, appointment_id))


@router.patch(
    "/appointments/{appointment_id}",
    response_model=views.AppointmentDetail,
    tags=["appointments"],
    responses=_CHANGE_ERRORS,
)
async def reschedule_appointment(
    appointment_id: UUID, body: ReschedulePatch, service: Service, _: Writer, request: Request
) -> JSONResponse:
    def command(session: Session) -> StoredResponse:
        handlers.reschedule_appointment(
            session, service.context, appointment_id, starts_at=body.starts_at
        )
        return StoredResponse(200, _dump(queries.get_appointment(session, appointment_id)))

    return await service.command(request, None, command)


@router.post(
    "/appointments/{appointment_id}/cancel",
    response_model=views.AppointmentDetail,
    tags=["appointments"],
    responses=_CHANGE_ERRORS,
)
async def cancel_appointment(
    appointment_id: UUID,
    service: Service,
    _: Writer,
    request: Request,
    key: IdempotencyKey = None,
    body: CancelIn | None = None,
) -> JSONResponse:
    def command(session: Session) -> StoredResponse:
        handlers.cancel_appointment(
            session, service.context, appointment_id, reason=body.reason if body else None
        )
        return StoredResponse(200, _dump(queries.get_appointment(session, appointment_id)))

    return await service.command(request, key, command)


@router.post(
    "/appointments/{appointment_id}/attendance",
    response_model=views.AppointmentDetail,
    tags=["appointments"],
    responses=_CHANGE_ERRORS,
)
async def record_attendance(
    appointment_id: UUID,
    body: AttendanceIn,
    service: Service,
    _: Writer,
    request: Request,
    key: IdempotencyKey = None,
) -> JSONResponse:
    def command(session: Session) -> StoredResponse:
        handlers.record_attendance(session, service.context, appointment_id, outcome=body.outcome)
        return StoredResponse(200, _dump(queries.get_appointment(session, appointment_id)))

    return await service.command(request, key, command)


@router.get("/stats", response_model=views.Stats, tags=["statistics"])
async def stats(
    service: Service,
    _: Reader,
    first: Annotated[
        date | None, Query(alias="from", description="first clinic day; default 29 days ago")
    ] = None,
    last: Annotated[
        date | None, Query(alias="to", description="last clinic day (inclusive); default today")
    ] = None,
) -> views.Stats:
    zone = service.settings.clinic_zone
    today = handlers.utcnow().astimezone(zone).date()
    last_day = last or (today if first is None else first + timedelta(days=29))
    first_day = first or last_day - timedelta(days=29)
    return await service.read(lambda s: queries.stats(s, first=first_day, last=last_day, zone=zone))


# --------------------------------------------------------------------------- errors


def _validation_message(exc: RequestValidationError) -> str:
    # Where and what, never the input itself (it may be a phone number).
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            location, message = "body", "not valid JSON"
        elif error.get("type") == "missing":
            message = "is required"
        elif error.get("type") == "extra_forbidden":
            message = "is not a known field"
        parts.append(f"{location}: {message}")
    return "; ".join(parts) or "invalid request"


def install_access_log(app: FastAPI) -> None:
    """One log line per request, with the path but never the query string: `?phone=` and
    `?q=` carry phone numbers and names (PHI). Replaces uvicorn's access log."""
    access = logging.getLogger("admin_api.access")

    @app.middleware("http")
    async def log_request(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        access.info(
            "request",
            extra={
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response


def install_error_handlers(app: FastAPI) -> None:
    """Every error is JSON `{"detail": "..."}`; bad input is a 4xx, never a 500."""

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    async def rejected(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CommandRejected)
        code = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 422
        return JSONResponse({"detail": exc.detail}, status_code=code)

    async def unauthorized(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, _Unauthorized)
        return JSONResponse(
            {"detail": exc.detail},
            status_code=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def forbidden(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, _Forbidden)
        return JSONResponse({"detail": exc.detail}, status_code=status.HTTP_403_FORBIDDEN)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            {"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "request failed",
            exc_info=exc,
            extra={"method": request.method, "path": request.url.path},
        )
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)

    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(CommandRejected, rejected)
    app.add_exception_handler(_Unauthorized, unauthorized)
    app.add_exception_handler(_Forbidden, forbidden)
    app.add_exception_handler(StarletteHTTPException, http_error)
