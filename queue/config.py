"""Hall configuration: services, windows and the hall's rules, read once from TOML.

A bad file raises HallConfigError with one message that names the file, the key and the
problem; the server refuses to start rather than run half-configured.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from kiosq.queue.hours import DAYS, OpeningHours, parse_periods
from kiosq.queue.workdays import WorkCalendar

Policy = Literal["oldest", "service_order"]

DEFAULT_HALL = "default.toml"


class HallConfigError(Exception):
    """The hall file cannot be used; the message says where and what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Service(_Strict):
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,16}$")]
    name: Annotated[str, Field(min_length=1)]
    name_en: Annotated[str, Field(min_length=1)]
    prefix: Annotated[str, Field(pattern=r"^[A-Z]{1,3}$")] = ""
    first_number: Annotated[int, Field(ge=0)] = 1
    last_number: Annotated[int, Field(ge=1, le=99999)] = 999
    avg_service_minutes: Annotated[float, Field(gt=0, le=480)] = 8

    @property
    def number_width(self) -> int:
        """Digits a number is padded to: 001 for ranges up to 999, more for larger ones."""
        return max(3, len(str(self.last_number)))

    def label(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.number_width}d}"


class Window(_Strict):
    number: Annotated[int, Field(ge=1, le=999)]
    name: Annotated[str, Field(min_length=1)]
    name_en: str = ""
    services: Annotated[tuple[str, ...], Field(min_length=1)]
    policy: Policy = "oldest"


class HallInfo(_Strict):
    name: Annotated[str, Field(min_length=1)]
    name_en: str = ""
    timezone: str = "Asia/Shanghai"
    rollover_hour: Annotated[int, Field(ge=0, le=23)] = 4
    sla_wait_minutes: Annotated[float, Field(gt=0)] = 10
    no_show_after_recalls: Annotated[int, Field(ge=0, le=20)] = 3
    reinstate_minutes: Annotated[float, Field(ge=0)] = 30
    announce_in_english: bool = False  # after each Chinese call, the same in English
    # Where citizens' phones and staff browsers reach the server: the base of every absolute
    # URL it hands out (a ticket's follow_url, printed as the slip's QR code). Never taken
    # from a request's Host header, which anyone can write. Default: the server's own address.
    public_url: AnyHttpUrl | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder of zones
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai'") from None
        return value


class CalendarInfo(_Strict):
    """Working days for the time limits of applications (queue/workdays.py)."""

    national: bool = True  # include the built-in national days off and make-up days (2026)
    holidays: tuple[date, ...] = ()  # more days off (local holidays, years not built in)
    workdays: tuple[date, ...] = ()  # more weekend days that are worked (调休)

    @field_validator("workdays")
    @classmethod
    def _weekends_only(cls, value: tuple[date, ...]) -> tuple[date, ...]:
        weekdays = [d.isoformat() for d in value if d.weekday() < 5]
        if weekdays:
            raise ValueError(f"{', '.join(weekdays)} is a weekday already; list only Saturdays and Sundays "
                             "that are worked (调休)")
        return value

    def work_calendar(self) -> WorkCalendar:
        make = WorkCalendar.china if self.national else WorkCalendar.of
        return make(self.holidays, self.workdays)


class NotifyInfo(_Strict):
    """Where state changes of applications are sent (queue/notify.py)."""

    webhook_url: AnyHttpUrl | None = None
    send_phone: bool = True  # an SMS gateway needs the applicant's phone; false leaves it out
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5
    retry_seconds: Annotated[float, Field(gt=0, le=3600)] = 10  # first retry; doubles each time
    max_retry_seconds: Annotated[float, Field(gt=0, le=86400)] = 3600
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 12


class HoursInfo(_Strict):
    """When tickets are issued (queue/hours.py); without this table, around the clock."""

    mon: str = ""
    tue: str = ""
    wed: str = ""
    thu: str = ""
    fri: str = ""
    sat: str = ""
    sun: str = ""
    workday_hours: str | None = None  # make-up working days (调休); default: Monday's hours
    holiday_hours: str = ""  # days off of the calendar; default: closed

    @field_validator(*DAYS, "workday_hours", "holiday_hours")
    @classmethod
    def _periods(cls, value: str | None) -> str | None:
        if value is not None:
            parse_periods(value)
        return value

    def opening_hours(self, calendar: WorkCalendar) -> OpeningHours:
        week = tuple(parse_periods(getattr(self, day)) for day in DAYS)
        workday = week[0] if self.workday_hours is None else parse_periods(self.workday_hours)
        return OpeningHours(week, workday, parse_periods(self.holiday_hours), calendar)


class FleetInfo(_Strict):
    """Terminals' heartbeats (queue/fleet.py)."""

    heartbeat_seconds: Annotated[float, Field(gt=0, le=3600)] = 30  # told to terminals
    online_seconds: Annotated[float, Field(gt=0, le=86400)] = 90  # no heartbeat for longer: offline


class SessionsInfo(_Strict):
    """Staff sign-in (queue/people.py): how long a session lives without use and at most."""

    idle_minutes: Annotated[float, Field(ge=1, le=24 * 60)] = 60
    lifetime_hours: Annotated[float, Field(ge=0.25, le=7 * 24)] = 12
    # how long `kiosq server token` makes staff, supervisor and admin tokens live (terminals: until revoked)
    token_ttl_days: Annotated[float, Field(ge=1, le=3650)] = 90


# Priorities a terminal token may ask for: green-channel tickets are staff's to give (engine.may_issue).
TERMINAL_PRIORITIES = ("normal", "elderly", "appointment")


class TerminalsInfo(_Strict):
    """What a terminal token may do (queue/routers/tickets.py, queue/throttle.py): the
    priorities it may ask for, and how many tickets and application lookups a minute
    (0: no limit, for load tests; a hall keeps one)."""

    priorities: Annotated[tuple[str, ...], Field(min_length=1)] = ("normal", "elderly")
    tickets_per_minute: Annotated[int, Field(ge=0, le=10000)] = 12  # a kiosk prints ~4 a minute at its busiest
    lookups_per_minute: Annotated[int, Field(ge=0, le=10000)] = 30

    @field_validator("priorities")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "green" in value:
            raise ValueError("green-channel tickets are given out by staff, never taken at a terminal; "
                             f"list some of {', '.join(TERMINAL_PRIORITIES)}")
        unknown = [p for p in value if p not in TERMINAL_PRIORITIES]
        if unknown:
            raise ValueError(f"unknown priority {unknown[0]!r}; a terminal may be given "
                             f"{', '.join(TERMINAL_PRIORITIES)}")
        if len(set(value)) != len(value):
            raise ValueError("a priority is listed twice")
        return value


class RetentionInfo(_Strict):
    """How long personal data and events are kept (queue/retention.py); erased once a day."""

    personal_days: Annotated[int, Field(ge=1, le=36500)] = 180  # after an application is closed
    events_days: Annotated[int, Field(ge=1, le=36500)] = 30


DEFAULT_REASONS = ("等候时间过长", "服务态度不好", "办事效率低", "一次性告知不清", "要求提供额外材料", "设施不便")
DEFAULT_REASONS_EN = ("Waited too long", "Unfriendly service", "Slow service", "Not told everything at once",
                      "Asked for extra documents", "Poor facilities")


class RatingsInfo(_Strict):
    """好差评 (queue/ratings.py): how long a service can be rated, the 差评's deadlines in
    working days, the preset reasons of a 差评 (zh, and en in the same order)."""

    callback_days: Annotated[int, Field(ge=0, le=30)] = 1  # 回访
    fix_days: Annotated[int, Field(ge=1, le=60)] = 5  # 整改
    grace_hours: Annotated[float, Field(ge=0, le=24 * 14)] = 24  # after the end of the service's business day
    application_days: Annotated[int, Field(ge=1, le=365)] = 15  # 一事一评: days after an application closed
    device_minutes: Annotated[int, Field(ge=1, le=120)] = 10  # the window's device rates what it just finished
    reasons: Annotated[tuple[Annotated[str, Field(min_length=1, max_length=40)], ...],
                       Field(min_length=1, max_length=12)] = DEFAULT_REASONS
    reasons_en: tuple[Annotated[str, Field(min_length=1, max_length=60)], ...] = DEFAULT_REASONS_EN

    @model_validator(mode="after")
    def _same_length(self) -> RatingsInfo:
        if len(self.reasons_en) != len(self.reasons):
            raise ValueError(f"reasons_en has {len(self.reasons_en)} entries and reasons {len(self.reasons)}; "
                             "give each reason its English in the same order")
        if self.callback_days > self.fix_days:
            raise ValueError(f"callback_days ({self.callback_days}) is after fix_days ({self.fix_days}); "
                             "the call-back comes before the fix")
        return self


class ComplaintsInfo(_Strict):
    """效能投诉 (queue/complaints.py): the deadlines in working days after a complaint came."""

    accept_days: Annotated[int, Field(ge=0, le=30)] = 2  # accepted or declined by then
    reply_days: Annotated[int, Field(ge=1, le=60)] = 10  # answered by then
    phone_per_hour: Annotated[int, Field(ge=1, le=100)] = 3  # complaints from one address without a token

    @model_validator(mode="after")
    def _order(self) -> ComplaintsInfo:
        if self.accept_days > self.reply_days:
            raise ValueError(f"accept_days ({self.accept_days}) is after reply_days ({self.reply_days})")
        return self


class DatabaseInfo(_Strict):
    """Where the hall's data lives (queue/store/database.py); without a url, SQLite in the
    data folder. The password never goes in the URL: a file holding it alone, or PGPASSFILE."""

    url: str | None = None  # postgresql://USER@HOST:PORT/DATABASE
    password_file: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value:
            from kiosq.queue.store.database import check_url

            check_url(value)  # DatabaseUrlError is a ValueError: pydantic reports it
        return value or None


class _HallFile(_Strict):
    hall: HallInfo
    services: Annotated[tuple[Service, ...], Field(min_length=1)]
    windows: Annotated[tuple[Window, ...], Field(min_length=1)]
    calendar: CalendarInfo = CalendarInfo()
    notify: NotifyInfo = NotifyInfo()
    hours: HoursInfo | None = None
    fleet: FleetInfo = FleetInfo()
    database: DatabaseInfo = DatabaseInfo()
    sessions: SessionsInfo = SessionsInfo()
    terminals: TerminalsInfo = TerminalsInfo()
    retention: RetentionInfo = RetentionInfo()
    ratings: RatingsInfo = RatingsInfo()
    complaints: ComplaintsInfo = ComplaintsInfo()


@dataclass(frozen=True)
class Hall:
    """A checked hall: every cross-reference resolved, lookups by code and number."""

    info: HallInfo
    services: dict[str, Service]
    windows: dict[int, Window]
    source: str
    calendar_info: CalendarInfo = CalendarInfo()
    notify: NotifyInfo = NotifyInfo()
    calendar: WorkCalendar = field(default_factory=WorkCalendar.china)
    hours: OpeningHours | None = None  # None: tickets around the clock
    fleet: FleetInfo = FleetInfo()
    database: DatabaseInfo = DatabaseInfo()
    sessions: SessionsInfo = SessionsInfo()
    terminals: TerminalsInfo = TerminalsInfo()
    retention: RetentionInfo = RetentionInfo()
    ratings: RatingsInfo = RatingsInfo()
    complaints: ComplaintsInfo = ComplaintsInfo()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.info.timezone)

    def windows_serving(self, service: str) -> list[Window]:
        return [w for w in self.windows.values() if service in w.services]


def load_hall(path: str | Path | None = None) -> Hall:
    """Read and check a hall file; without a path, the hall shipped with kiosq."""
    if path is None:
        # A file beside this module: kiosq.queue is a namespace package (no __init__.py),
        # which importlib.resources cannot read from on Python 3.11.
        text = (Path(__file__).parent / "halls" / DEFAULT_HALL).read_text("utf-8")
        return parse_hall(text, source=f"(built-in) {DEFAULT_HALL}")
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise HallConfigError(f"{path}: cannot read the hall file ({exc.strerror}); "
                              "check the path given to --hall") from None
    except UnicodeDecodeError:
        raise HallConfigError(f"{path}: not UTF-8 text; save the hall file as UTF-8") from None
    return parse_hall(text, source=str(path))


def parse_hall(text: str, source: str = "hall.toml") -> Hall:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HallConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        parsed = _HallFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise HallConfigError(f"{source}: {_key(err['loc'])}: {_problem(err)}") from None
    return _cross_check(parsed, source)


def _key(loc: tuple[int | str, ...]) -> str:
    """('windows', 2, 'services') -> 'windows[3].services' (tables counted from 1, as in the file)."""
    out = ""
    for part in loc:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _problem(err: ErrorDetails) -> str:
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "extra_forbidden":
        return "unknown key (check its spelling against docs/hall-config.md)"
    return err["msg"].removeprefix("Value error, ")


def _cross_check(parsed: _HallFile, source: str) -> Hall:
    def fail(key: str, problem: str) -> HallConfigError:
        return HallConfigError(f"{source}: {key}: {problem}")

    services: dict[str, Service] = {}
    prefixes: dict[str, str] = {}
    for i, svc in enumerate(parsed.services, 1):
        key = f"services[{i}]"
        if svc.code in services:
            raise fail(f"{key}.code", f"service code {svc.code!r} is used twice")
        if not svc.prefix:
            if not svc.code.isalpha() or not svc.code.isupper() or len(svc.code) > 3:
                raise fail(f"{key}.prefix", f"required when the code ({svc.code!r}) is not 1-3 capital letters")
            svc = svc.model_copy(update={"prefix": svc.code})
        if svc.prefix in prefixes:
            raise fail(f"{key}.prefix", f"prefix {svc.prefix!r} is already used by service "
                       f"{prefixes[svc.prefix]!r}; ticket numbers must tell services apart")
        if svc.last_number < svc.first_number:
            raise fail(f"{key}.last_number", f"{svc.last_number} is below first_number {svc.first_number}")
        services[svc.code] = svc
        prefixes[svc.prefix] = svc.code

    windows: dict[int, Window] = {}
    for i, win in enumerate(parsed.windows, 1):
        key = f"windows[{i}]"
        if win.number in windows:
            raise fail(f"{key}.number", f"window {win.number} is defined twice")
        for code in win.services:
            if code not in services:
                raise fail(f"{key}.services", f"unknown service {code!r}; known services: {', '.join(services)}")
        if len(set(win.services)) != len(win.services):
            raise fail(f"{key}.services", "a service is listed twice")
        windows[win.number] = win

    for code in services:
        if not any(code in w.services for w in windows.values()):
            raise fail("windows", f"no window serves service {code!r}; its tickets could never be called")
    for i, day in enumerate(parsed.calendar.holidays, 1):
        if day in parsed.calendar.workdays:
            raise fail(f"calendar.holidays[{i}]", f"{day} is also listed in calendar.workdays; it cannot be both")
    if parsed.fleet.online_seconds < parsed.fleet.heartbeat_seconds:
        raise fail("fleet.online_seconds", f"{parsed.fleet.online_seconds:g} is shorter than heartbeat_seconds "
                   f"({parsed.fleet.heartbeat_seconds:g}); every terminal would look offline between heartbeats")
    calendar = parsed.calendar.work_calendar()
    return Hall(info=parsed.hall, services=services, windows=windows, source=source,
                calendar_info=parsed.calendar, notify=parsed.notify, calendar=calendar,
                hours=None if parsed.hours is None else parsed.hours.opening_hours(calendar), fleet=parsed.fleet,
                database=parsed.database, sessions=parsed.sessions, terminals=parsed.terminals,
                retention=parsed.retention, ratings=parsed.ratings,
                complaints=parsed.complaints)
