"""The hall manager's figures for applications filed in a period: 办结率, 提前办结率,
warnings and overdue (电子监察), for the hall, each department and each item; and the same
as CSV. No personal data goes in or out.

Pure: callers pass the applications filed in the period (`Store.applications_filed`), the
hall's local `today` and its working-day calendar.

How the figures are defined:

- **The period** is of filing: applications whose hall-local filing date is `from` to `to`,
  inclusive. Their states are counted as they are now (`today`), so the figures of a past
  month still move while its applications are being finished.
- `submitted`: those applications. `completed`, `rejected`, `returned`: those whose status
  is that now; `open`: not completed nor rejected (returned ones included).
- **办结率** `completion_rate` = completed / submitted, in %. A rejection is a decision too,
  but it is counted in `rejected` and not here, so that the rate reads as "granted and done".
- **提前办结率** `early_completion_rate` = completed *before* the promised date (the finish's
  local date earlier than `promised_date`) / completed, in %. `completed_late`: completed
  after the promised date.
- **Warnings** `warnings`: open applications on the clock (submitted, accepted, in review;
  not returned to the citizen) that have used at least 80 % of their promised working days
  and are not yet past the promised date (`applications.due_state` == "near"). A promised
  limit of 0 days (即办件) is "near" on its day.
- **Overdue** `overdue`: open applications on the clock past their promised date, as of
  today. `over_legal`: those also past the legal date.
- Percentages are rounded half up to 1 decimal; a rate with nothing under it is None.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date

from kiosq.queue import applications as rules
from kiosq.queue.applications import Application
from kiosq.queue.stats import _cell, round1
from kiosq.queue.workdays import WorkCalendar

COUNTS = ("submitted", "completed", "rejected", "returned", "open", "completed_early", "completed_late",
          "warnings", "overdue", "over_legal")

# (key, English header, Chinese header)
CSV_COLUMNS = (
    ("scope", "scope", "范围"), ("code", "code", "编码"), ("name", "name", "名称"),
    ("department", "department", "部门"),
    ("submitted", "submitted", "申报数"), ("completed", "completed", "办结数"), ("rejected", "rejected", "不予办理数"),
    ("returned", "returned", "补正中"), ("open", "open", "在办数"),
    ("completion_rate", "completion_rate_pct", "办结率(%)"),
    ("completed_early", "completed_early", "提前办结数"),
    ("early_completion_rate", "early_completion_rate_pct", "提前办结率(%)"),
    ("completed_late", "completed_late", "超期办结数"), ("warnings", "warnings", "预警数"),
    ("overdue", "overdue", "超期数"), ("over_legal", "over_legal", "超法定时限数"),
)
SCOPES_ZH = {"hall": "全厅", "department": "部门", "item": "事项"}


def _percent(part: int, whole: int) -> float | None:
    return round1(100 * part / whole) if whole else None


def counts(apps: Iterable[Application], today: date, calendar: WorkCalendar, tz=None) -> dict:
    """The figures of a group of applications (see the module docstring)."""
    c = dict.fromkeys(COUNTS, 0)
    for app in apps:
        c["submitted"] += 1
        if app.status in (rules.COMPLETED, rules.REJECTED, rules.RETURNED):
            c[app.status] += 1
        if app.status not in rules.FINISHED:
            c["open"] += 1
        if app.status == rules.COMPLETED and app.finished_at is not None:
            done = app.finished_at.astimezone(tz).date() if tz else app.finished_at.date()
            if done < app.promised_date:
                c["completed_early"] += 1
            elif done > app.promised_date:
                c["completed_late"] += 1
        due = rules.due_state(app, today, calendar)
        if due == "near":
            c["warnings"] += 1
        elif due == "over":
            c["overdue"] += 1
            if today > app.legal_date:
                c["over_legal"] += 1
    return {**c, "completion_rate": _percent(c["completed"], c["submitted"]),
            "early_completion_rate": _percent(c["completed_early"], c["completed"])}


def figures(apps: Sequence[Application], first: date, last: date, today: date, calendar: WorkCalendar,
            tz=None) -> dict:
    """{from, to, today, hall, departments: [...], items: [...]}; departments and items in
    the order they first appear, each with the figures of `counts`."""
    by_department: dict[str, list[Application]] = {}
    by_item: dict[str, list[Application]] = {}
    for app in apps:
        by_department.setdefault(app.department, []).append(app)
        by_item.setdefault(app.item, []).append(app)
    return {
        "from": first.isoformat(), "to": last.isoformat(), "today": today.isoformat(),
        "hall": counts(apps, today, calendar, tz),
        "departments": [{"department": dept, **counts(group, today, calendar, tz)}
                        for dept, group in by_department.items()],
        "items": [{"item": code, "item_name": group[0].item_name, "department": group[0].department,
                   **counts(group, today, calendar, tz)} for code, group in by_item.items()],
    }


def figures_csv(data: dict, lang: str = "zh") -> str:
    """`figures` as CSV with a UTF-8 BOM (Excel reads the Chinese): the hall, then each
    department, then each item; empty cells where a rate is None."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([zh if lang == "zh" else en for _, en, zh in CSV_COLUMNS])

    def scope(name: str) -> str:
        return SCOPES_ZH[name] if lang == "zh" else name

    rows = [{"scope": scope("hall"), **data["hall"]}]
    rows += [{"scope": scope("department"), "name": d["department"], "department": d["department"], **d}
             for d in data["departments"]]
    rows += [{"scope": scope("item"), "code": i["item"], "name": i["item_name"], **i} for i in data["items"]]
    for row in rows:
        writer.writerow([_cell(row.get(key)) for key, _, _ in CSV_COLUMNS])
    return out.getvalue()
