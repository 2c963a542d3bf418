"""The hall manager's figures for one business day: counts, wait and service times, SLA
breaches and throughput (`day_stats`), the waiting count over the day (`waiting_series`),
and that count as a server-side SVG chart (`chart_svg`) and the figures as CSV (`stats_csv`).

Pure: no SQL, no HTTP, no clock. Callers pass the day's tickets (`Store.tickets_of_day`)
and `now`; everything returned is plain data (JSON-ready dicts, a string).

How the figures are defined, and why:

- **Which row a ticket counts in.** A service row counts a ticket in the service whose queue
  it is in now (or ended in): called, served, no-shows, cancelled, waiting, times and SLA
  breaches. Two columns belong to the service that *numbered* the ticket instead:
  `issued` (the queue the citizen joined) and `transferred` (tickets sent on from it to
  another service). A window row counts the tickets last called to that window; `issued`
  and `transferred` are None there, because a ticket does not record which window
  transferred it. A window's `waiting` is the tickets waiting in the services it serves,
  so window rows overlap and do not add up to the hall's.
- **Wait** is issued -> called, for tickets that have been called. A transfer puts the same
  ticket back to waiting and clears its `called_at`, so the first call time is gone and
  issued -> final call would count the service at the first window as waiting. Transferred
  tickets are therefore left out of the wait figures and out of both SLA figures rather than
  blamed on the service they were sent to; `wait_minutes.count` says how many waits the
  figures rest on. A reinstated no-show waits until its last call (it stood in line again).
- **Service time** is started -> ended of done tickets (a ticket finished without "start"
  starts at its call, as the engine records it).
- **SLA.** A ticket breaches when it waited longer (strictly) than
  `hall.info.sla_wait_minutes` before it was called, or before it was cancelled uncalled,
  or so far if it is still waiting. `sla.waiting_over_threshold` lists the tickets waiting
  now that breach, longest first.
- **Throughput**: `served` (done tickets) and `served_per_hour`, the done tickets per hour
  of the row's *active time*: from its first call of the day to its last end (or to now,
  if a ticket is at a window now). Hours of the day so far would count the night before
  the hall opens; the active time does not. It still includes pauses and idle gaps.
- **Percentiles.** Median: `statistics.median` (the mean of the middle two for an even
  count). p90: nearest rank, the smallest observed value with at least 90 % of the values
  at or below it (`sorted(v)[ceil(0.9 n) - 1]`), so it is always a real wait and is defined
  for a single value.
- Minutes, percentages and rates are rounded half up to 1 decimal. A figure with no data
  behind it is None, never 0; counts are 0.
- For a past day, `now` is clipped to the day's end, so nothing grows after the day closed.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from xml.sax.saxutils import escape, quoteattr

from kiosq.queue.config import Hall
from kiosq.queue.engine import CANCELLED, DONE, NO_SHOW, WAITING, Ticket, business_day

Series = list[tuple[datetime, int]]


# -- the business day ------------------------------------------------------------------


def day_bounds(day: date, hall: Hall) -> tuple[datetime, datetime]:
    """Start and end (aware, in the hall's zone) of business `day`: rollover hour to rollover hour."""
    rollover = time(hall.info.rollover_hour, tzinfo=hall.tz)
    return datetime.combine(day, rollover), datetime.combine(day + timedelta(days=1), rollover)


# -- numbers ---------------------------------------------------------------------------


def round1(value: float | None) -> float | None:
    """Half up to 1 decimal (Python's round() goes to even: 2.25 -> 2.2)."""
    if value is None:
        return None
    return float(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p % of `values` at or below it."""
    if not values:
        return None
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {p}")
    ordered = sorted(values)
    return ordered[math.ceil(p / 100 * len(ordered)) - 1]


def summary(values: Sequence[float]) -> dict:
    """count, mean, median and p90 of minutes; None figures when there are no values."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    return {"count": len(values), "mean": round1(statistics.fmean(values)),
            "median": round1(statistics.median(values)), "p90": round1(percentile(values, 90))}


def _minutes(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60


def _percent(part: int, whole: int) -> float | None:
    return round1(100 * part / whole) if whole else None


# -- one ticket --------------------------------------------------------------------------


def wait_minutes(ticket: Ticket) -> float | None:
    """Issued -> called; None if not called yet or if a transfer erased its first call."""
    if ticket.transfers or ticket.called_at is None:
        return None
    return _minutes(ticket.issued_at, ticket.called_at)


def service_minutes(ticket: Ticket) -> float | None:
    """Started -> ended of a done ticket."""
    if ticket.status != DONE or ticket.started_at is None or ticket.ended_at is None:
        return None
    return _minutes(ticket.started_at, ticket.ended_at)


def waited_minutes(ticket: Ticket, as_of: datetime) -> float | None:
    """How long the ticket waited before it was called or cancelled, or has waited so far;
    None for transferred tickets (see the module docstring)."""
    if ticket.transfers:
        return None
    # Every ticket is called (called, serving, done, no-show), cancelled (ended) or waiting.
    end = ticket.called_at or ticket.ended_at or as_of
    return max(0.0, _minutes(ticket.issued_at, min(end, as_of)))


def breached(ticket: Ticket, as_of: datetime, limit_minutes: float) -> bool:
    waited = waited_minutes(ticket, as_of)
    return waited is not None and waited > limit_minutes


# -- one row: a service, a window or the hall ------------------------------------------------


def _active_minutes(tickets: Sequence[Ticket], as_of: datetime) -> float | None:
    """From the first call to the last end (now, if a ticket is still at a window)."""
    called = [t for t in tickets if t.called_at is not None]
    if not called:
        return None
    first = min(t.called_at for t in called if t.called_at is not None)
    last = max(min(t.ended_at or as_of, as_of) for t in called)
    return max(0.0, _minutes(first, last))


def _per_hour(count: int, minutes: float | None) -> float | None:
    return round1(count * 60 / minutes) if count and minutes else None


def _figures(tickets: Sequence[Ticket], issued: int | None, transferred: int | None,
             waiting: int, as_of: datetime, limit: float) -> dict:
    """The figures every row has, over the tickets that count in the row."""
    called = [t for t in tickets if t.called_at is not None]
    done = [t for t in tickets if t.status == DONE]
    no_shows = sum(t.status == NO_SHOW for t in tickets)
    active = _active_minutes(tickets, as_of)
    return {
        "issued": issued, "called": len(called), "served": len(done), "no_shows": no_shows,
        "cancelled": sum(t.status == CANCELLED for t in tickets), "transferred": transferred,
        "waiting": waiting,
        "wait_minutes": summary([w for t in called if (w := wait_minutes(t)) is not None]),
        "service_minutes": summary([s for t in done if (s := service_minutes(t)) is not None]),
        "no_show_percent": _percent(no_shows, len(called)),
        "sla_breaches": sum(breached(t, as_of, limit) for t in tickets),
        "active_minutes": round1(active),
        "served_per_hour": _per_hour(len(done), active),
    }


def _service_rows(tickets: Sequence[Ticket], hall: Hall, as_of: datetime, limit: float) -> list[dict]:
    codes = list(hall.services)
    codes += sorted(({t.service for t in tickets} | {t.number_service for t in tickets}) - set(codes))
    rows = []
    for code in codes:
        svc = hall.services.get(code)
        mine = [t for t in tickets if t.service == code]
        numbered = [t for t in tickets if t.number_service == code]
        row = {"code": code, "name": svc.name if svc else code, "name_en": svc.name_en if svc else code}
        row |= _figures(mine, issued=len(numbered), transferred=sum(t.transfers > 0 for t in numbered),
                        waiting=sum(t.status == WAITING for t in mine), as_of=as_of, limit=limit)
        rows.append(row)
    return rows


def _window_rows(tickets: Sequence[Ticket], hall: Hall, as_of: datetime, limit: float) -> list[dict]:
    numbers = list(hall.windows)
    numbers += sorted({t.window for t in tickets if t.window is not None} - set(numbers))
    rows = []
    for number in numbers:
        win = hall.windows.get(number)
        services = win.services if win else ()
        row = {"number": number, "name": win.name if win else str(number),
               "name_en": (win.name_en or win.name) if win else str(number), "services": list(services)}
        row |= _figures([t for t in tickets if t.window == number], issued=None, transferred=None,
                        waiting=sum(t.status == WAITING and t.service in services for t in tickets),
                        as_of=as_of, limit=limit)
        rows.append(row)
    return rows


def _hall_row(tickets: Sequence[Ticket], hall: Hall, as_of: datetime, limit: float) -> dict:
    row = {"name": hall.info.name, "name_en": hall.info.name_en or hall.info.name}
    return row | _figures(tickets, issued=len(tickets), transferred=sum(t.transfers > 0 for t in tickets),
                          waiting=sum(t.status == WAITING for t in tickets), as_of=as_of, limit=limit)


def _waiting_over(tickets: Sequence[Ticket], hall: Hall, as_of: datetime, limit: float) -> list[dict]:
    """Tickets waiting now for longer than the SLA allows, longest first."""
    over = []
    for t in tickets:
        waited = waited_minutes(t, as_of) if t.status == WAITING else None
        if waited is not None and waited > limit:
            svc = hall.services.get(t.service)
            over.append((waited, t.queue_seq, {
                "number": t.label, "service": t.service, "service_name": svc.name if svc else t.service,
                "service_name_en": svc.name_en if svc else t.service, "priority": t.priority,
                "issued_at": t.issued_at.astimezone(hall.tz).isoformat(timespec="seconds"),
                "waited_minutes": round1(waited)}))
    return [entry for _, _, entry in sorted(over, key=lambda o: (-o[0], o[1]))]


def day_stats(tickets: list[Ticket], hall: Hall, now: datetime) -> dict:
    """The dashboard's figures for the business day of `tickets` (of `now` if there are none).

    Keys: day, as_of, sla {threshold_minutes, breaches, waiting_over_threshold}, hall,
    services, windows; each row has the figures of `_figures`. See the module docstring.
    """
    day = tickets[0].day if tickets else business_day(now, hall)
    as_of = min(now, day_bounds(day, hall)[1])
    limit = hall.info.sla_wait_minutes
    return {
        "day": day.isoformat(),
        "as_of": as_of.astimezone(hall.tz).isoformat(timespec="seconds"),
        "sla": {"threshold_minutes": limit,
                "breaches": sum(breached(t, as_of, limit) for t in tickets),
                "waiting_over_threshold": _waiting_over(tickets, hall, as_of, limit)},
        "hall": _hall_row(tickets, hall, as_of, limit),
        "services": _service_rows(tickets, hall, as_of, limit),
        "windows": _window_rows(tickets, hall, as_of, limit),
    }


# -- waiting count over the day -------------------------------------------------------------


def _waiting_until(ticket: Ticket) -> datetime | None:
    """When the ticket stopped waiting: its (last) call, or its end if it never was called."""
    return ticket.called_at or ticket.ended_at


def waiting_series(tickets: Iterable[Ticket], day_start: datetime, now: datetime,
                   step_minutes: int = 5) -> Series:
    """The number of tickets waiting at day_start, day_start + step, ... and at `now`.

    A ticket counts as waiting from issued_at (inclusive) until called_at, or ended_at if it
    was never called (exclusive); still waiting if it has neither. Only the final timestamps
    are kept, so a transferred ticket counts as waiting from its issue to its last call,
    the time it spent at the first window included, and a reinstated no-show likewise.
    Samples carry day_start's time zone; steps are real minutes (UTC), so a DST change
    does not bend them. For a past day, pass the day's end as `now`.
    """
    if step_minutes <= 0:
        raise ValueError(f"step_minutes must be positive, not {step_minutes}")
    tickets = list(tickets)
    starts = sorted(t.issued_at for t in tickets)
    ends = sorted(end for t in tickets if (end := _waiting_until(t)) is not None)
    first, step, zone = day_start.astimezone(UTC), timedelta(minutes=step_minutes), day_start.tzinfo
    samples = int((now - first).total_seconds() // step.total_seconds()) + 1 if now >= first else 0
    series: Series = []
    times = [first + i * step for i in range(samples)]
    if times and times[-1] < now:
        times.append(now.astimezone(UTC))  # a live chart ends at this moment, not at the last step
    for at in times:
        series.append((at.astimezone(zone), bisect_right(starts, at) - bisect_right(ends, at)))
    return series


# -- SVG chart ----------------------------------------------------------------------------------

_WORDS = {
    "zh": {"title": "等候人数", "empty": "暂无数据", "sla": "警戒线 {n} 人"},
    "en": {"title": "People waiting", "empty": "No data yet", "sla": "Alert at {n}"},
}
_FONT = "'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC',sans-serif"
_MARGIN = {"left": 44, "right": 16, "top": 30, "bottom": 26}


def _nice_step(top: int, divisions: int = 4) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that splits 0..top into at most `divisions`."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if math.ceil(top / (factor * magnitude)) <= divisions:
                return factor * magnitude
        magnitude *= 10


def _count_ticks(series: Series, sla_line: int | None) -> list[int]:
    top = max([count for _, count in series] + [sla_line or 0, 1])
    step = _nice_step(top)
    return list(range(0, math.ceil(top / step) * step + 1, step))


def _hour_ticks(first: datetime, last: datetime, max_labels: int) -> list[datetime]:
    """Whole local hours from first to last, thinned to every 1, 2, 3, 4, 6 or 12 hours."""
    zone = first.tzinfo
    hour = first.replace(minute=0, second=0, microsecond=0)
    if hour < first:
        hour += timedelta(hours=1)
    hours = []
    while hour <= last:
        hours.append(hour)
        hour = (hour.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
    every = next((k for k in (1, 2, 3, 4, 6, 12) if math.ceil(len(hours) / k) <= max_labels), 24)
    return [h for h in hours if h.hour % every == 0]


def _text(x: float, y: float, label: str, cls: str, anchor: str = "middle") -> str:
    return f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(label)}</text>'


def _line(cls: str, x1: float, x2: float, y1: float, y2: float) -> str:
    return f'<line class="{cls}" x1="{x1:.1f}" x2="{x2:.1f}" y1="{y1:.1f}" y2="{y2:.1f}"/>'


def _frame(width: int, height: int, heading: str) -> list[str]:
    """The svg element, its title and style, a white background and the heading."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(heading)}>',
            f"<title>{escape(heading)}</title>",
            f"<style>text{{font-family:{_FONT};font-size:12px;fill:#444}}"
            ".title{font-size:14px;font-weight:bold;fill:#222}.grid{stroke:#e3e3e3}"
            ".axis{stroke:#888}.area{fill:#1f77b4;fill-opacity:.18;stroke:none}"
            ".series{fill:none;stroke:#1f77b4;stroke-width:2;stroke-linejoin:round}"
            ".sla{stroke:#d62728;stroke-width:1.5;stroke-dasharray:6 4}.sla-label{fill:#d62728}</style>",
            f'<rect width="{width}" height="{height}" fill="#fff"/>',
            _text(_MARGIN["left"], 18, heading, "title", "start")]


def chart_svg(series: Series, sla_line: int | None = None, width: int = 720, height: int = 240,
              lang: str = "zh", title: str | None = None) -> str:
    """The waiting count over the day as a self-contained SVG area chart.

    Hour labels along the bottom (the samples' own time zone), 2-5 count labels on the left
    with grid lines, and, if `sla_line` is given, a dashed line at that waiting count (an
    alert level the hall sets). An empty series draws the axes and says there is no data.
    No script, no external font or stylesheet; all text is escaped. `title` replaces the
    default heading ("等候人数" / "People waiting"); unknown languages get English.
    """
    words = _WORDS.get(lang, _WORDS["en"])
    left, top, right = _MARGIN["left"], _MARGIN["top"], width - _MARGIN["right"]
    bottom = height - _MARGIN["bottom"]
    if right - left < 100 or bottom - top < 60:
        raise ValueError(f"a {width}x{height} chart leaves no room to plot; use at least 160x120")
    ticks = _count_ticks(series, sla_line)

    def y(count: float) -> float:
        return bottom - (bottom - top) * count / ticks[-1]

    parts = _frame(width, height, title if title is not None else words["title"])
    for count in ticks:
        parts += [_line("grid", left, right, y(count), y(count)),
                  _text(left - 6, y(count) + 4, str(count), "count", "end")]
    parts += [_line("axis", left, left, top, bottom), _line("axis", left, right, bottom, bottom)]
    if series:
        parts += _plot(series, left, right - left, bottom, y, max(2, (right - left) // 56))
    else:
        parts.append(_text((left + right) / 2, (top + bottom) / 2, words["empty"], "empty"))
    if sla_line is not None:
        parts += [_line("sla", left, right, y(sla_line), y(sla_line)),
                  _text(right, y(sla_line) - 4, words["sla"].format(n=sla_line), "sla-label", "end")]
    parts.append("</svg>")
    return "\n".join(parts)


def _plot(series: Series, left: float, plot_w: float, bottom: float, y: Callable[[float], float],
          max_labels: int) -> list[str]:
    """Hour labels, the area and the line of a non-empty series."""
    first, last = series[0][0], series[-1][0]
    origin = first.astimezone(UTC)  # real seconds: same-zone subtraction is wall-clock
    span = max((last.astimezone(UTC) - origin).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return left + plot_w * (at.astimezone(UTC) - origin).total_seconds() / span

    hours = _hour_ticks(first, last, max_labels)
    points = " ".join(f"{x(at):.1f},{y(count):.1f}" for at, count in series)
    baseline = f"{x(last):.1f},{bottom:.1f} {x(first):.1f},{bottom:.1f}"
    return [*(_text(x(h), bottom + 17, h.strftime("%H:%M"), "hour") for h in hours),
            f'<polygon class="area" points="{points} {baseline}"/>',
            f'<polyline class="series" points="{points}"/>']


# -- CSV export -------------------------------------------------------------------------------

# (field in a row, English header, Chinese header). Dotted fields are nested: wait_minutes.mean.
CSV_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("day", "day", "营业日"),
    ("kind", "kind", "类别"),
    ("code", "code", "编号"),
    ("name", "name", "名称"),
    ("issued", "issued", "取号数"),
    ("called", "called", "叫号数"),
    ("served", "served", "办结数"),
    ("no_shows", "no_shows", "过号数"),
    ("cancelled", "cancelled", "取消数"),
    ("transferred", "transferred", "转出数"),
    ("waiting", "waiting_now", "当前等候"),
    ("wait_minutes.count", "waits_measured", "等候样本数"),
    ("wait_minutes.mean", "wait_mean_min", "平均等候(分钟)"),
    ("wait_minutes.median", "wait_median_min", "等候中位数(分钟)"),
    ("wait_minutes.p90", "wait_p90_min", "等候P90(分钟)"),
    ("service_minutes.count", "services_measured", "办理样本数"),
    ("service_minutes.mean", "service_mean_min", "平均办理(分钟)"),
    ("service_minutes.median", "service_median_min", "办理中位数(分钟)"),
    ("service_minutes.p90", "service_p90_min", "办理P90(分钟)"),
    ("no_show_percent", "no_show_percent", "过号率(%)"),
    ("sla_breaches", "sla_breaches", "超时等候数"),
    ("active_minutes", "active_minutes", "工作时长(分钟)"),
    ("served_per_hour", "served_per_hour", "每小时办结"),
)
_KINDS = {"zh": {"hall": "全厅", "service": "业务", "window": "窗口"},
          "en": {"hall": "hall", "service": "service", "window": "window"}}


def _cell(value: object) -> str:
    """None is an empty cell; text that Excel would run as a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
    return str(value)


def _field(row: dict, path: str) -> object:
    for key in path.split("."):
        row = row[key]
    return row


def _csv_rows(stats: dict, lang: str) -> Iterable[dict]:
    """The hall row, then one per service, then one per window, with kind/code/name/day set."""
    kinds, name = _KINDS.get(lang, _KINDS["en"]), "name" if lang == "zh" else "name_en"
    yield stats["hall"] | {"day": stats["day"], "kind": kinds["hall"], "code": None, "name": stats["hall"][name]}
    for row in stats["services"]:
        yield row | {"day": stats["day"], "kind": kinds["service"], "name": row[name]}
    for row in stats["windows"]:
        yield row | {"day": stats["day"], "kind": kinds["window"], "code": row["number"], "name": row[name]}


def stats_csv(stats: dict, lang: str = "zh") -> str:
    """`day_stats` as CSV text, starting with a UTF-8 BOM so that Excel reads the Chinese.

    Columns: CSV_COLUMNS (headers in Chinese or, with lang="en", English snake_case);
    rows: the hall, each service, each window; empty cells where a figure is None.
    """
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([zh if lang == "zh" else en for _, en, zh in CSV_COLUMNS])
    for row in _csv_rows(stats, lang):
        writer.writerow([_cell(_field(row, path)) for path, _, _ in CSV_COLUMNS])
    return out.getvalue()
