"""Dashboard figures (kiosq.queue.stats) over tickets made by the real store with a moved clock."""

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosq.queue import stats
from kiosq.queue.config import parse_hall

SVG = "{http://www.w3.org/2000/svg}"
SHANGHAI = ZoneInfo("Asia/Shanghai")
TEN = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # the clock fixture's start


def at(minute: float) -> datetime:
    return TEN + timedelta(minutes=minute)


@pytest.fixture
def day(store, clock):
    """A morning in minutes after 10:00, every step at a known instant:

    ticket  issued  called (window)  then                          wait  service
    A001    0       4  (1), start 4  finished 12                   4     8
    A002    0       12 (1), start 12 finished 24                   12    12
    A003    0       16 (2)           no-show 18                    16    -
    B001    0       6  (3), start 6  transferred to A at 15,
                    22 (2), start 22 finished 25                   (left out)  3
    C001    1       -                cancelled 13                  (12 uncalled)
    D001    2       -                still waiting at 10:30        (28 so far)
    B002    5       -                still waiting                 (25 so far)
    A004    20      -                still waiting                 (10.0 so far: not over 10)
    """
    def step(minute: float, *actions) -> None:
        clock.now = at(minute).astimezone(UTC)
        for action in actions:
            action()

    ids = {}

    def issue(service):
        def go():
            ticket, _ = store.issue_ticket(service)
            ids[ticket.label] = ticket.id
        return go

    step(0, issue("A"), issue("A"), issue("A"), issue("B"))
    step(1, issue("C"))
    step(2, issue("D"))
    step(4, lambda: store.call_next(1), lambda: store.act(1, "start"))
    step(5, issue("B"))
    step(6, lambda: store.call_next(3), lambda: store.act(3, "start"))
    step(12, lambda: store.act(1, "finish"), lambda: store.call_next(1), lambda: store.act(1, "start"))
    step(13, lambda: store.cancel(ids["C001"]))
    step(15, lambda: store.act(3, "transfer", "A"))
    step(16, lambda: store.call_next(2))
    step(18, lambda: store.act(2, "no_show"))
    step(20, issue("A"))
    step(22, lambda: store.call_next(2), lambda: store.act(2, "start"))
    step(24, lambda: store.act(1, "finish"))
    step(25, lambda: store.act(2, "finish"))
    step(30)
    return store.tickets_of_day()


def by(rows, key, value):
    (row,) = [r for r in rows if r[key] == value]
    return row


# -- building blocks ------------------------------------------------------------------------


def test_the_scenario_is_what_the_store_made(day):
    got = {t.label: (t.service, t.status, t.window, t.transfers) for t in day}
    assert got == {"A001": ("A", "done", 1, 0), "A002": ("A", "done", 1, 0), "A003": ("A", "no_show", 2, 0),
                   "B001": ("A", "done", 2, 1), "C001": ("C", "cancelled", None, 0),
                   "D001": ("D", "waiting", None, 0), "B002": ("B", "waiting", None, 0),
                   "A004": ("A", "waiting", None, 0)}


@pytest.mark.parametrize("values, p, expected", [
    ([5], 90, 5), ([1, 2], 90, 2), ([1, 2], 50, 1), ([1, 2, 3, 4], 50, 2),
    (list(range(1, 11)), 90, 9), (list(range(1, 21)), 90, 18), (list(range(1, 12)), 90, 10),
    ([30, 10, 20], 90, 30), ([30, 10, 20], 100, 30), ([], 90, None),
])
def test_percentile_is_nearest_rank(values, p, expected):
    assert stats.percentile(values, p) == expected


def test_percentile_refuses_a_nonsense_rank():
    with pytest.raises(ValueError, match="percentile"):
        stats.percentile([1], 0)


def test_summary_and_rounding_half_up():
    assert stats.summary([4, 12, 16]) == {"count": 3, "mean": 10.7, "median": 12.0, "p90": 16.0}
    assert stats.summary([1, 2]) == {"count": 2, "mean": 1.5, "median": 1.5, "p90": 2.0}
    assert stats.summary([]) == {"count": 0, "mean": None, "median": None, "p90": None}
    assert [stats.round1(v) for v in (2.25, 0.35, 2.24, 7.6666, None)] == [2.3, 0.4, 2.2, 7.7, None]


def test_day_bounds_are_rollover_to_rollover_in_the_hall_zone(hall):
    start, end = stats.day_bounds(date(2026, 11, 23), hall)
    assert start == datetime(2026, 11, 23, 4, tzinfo=SHANGHAI)
    assert end == datetime(2026, 11, 24, 4, tzinfo=SHANGHAI)
    assert start.utcoffset() == timedelta(hours=8)


def test_day_bounds_follow_a_dst_change():
    text = ('[hall]\nname = "H"\ntimezone = "Europe/Berlin"\nrollover_hour = 4\n'
            '[[services]]\ncode = "A"\nname = "a"\nname_en = "a"\n'
            '[[windows]]\nnumber = 1\nname = "1"\nservices = ["A"]\n')
    start, end = stats.day_bounds(date(2026, 10, 24), parse_hall(text))  # clocks go back on the 25th
    assert (start.hour, end.hour) == (4, 4)
    assert (end.astimezone(UTC) - start.astimezone(UTC)) == timedelta(hours=25)


# -- day_stats ------------------------------------------------------------------------------


def test_hall_figures(day, hall):
    got = stats.day_stats(day, hall, at(30))
    assert (got["day"], got["as_of"]) == ("2026-11-23", "2026-11-23T10:30:00+08:00")
    assert got["hall"] == {
        "name": "示范区政务服务中心", "name_en": "Model District Government Service Centre",
        "issued": 8, "called": 4, "served": 3, "no_shows": 1, "cancelled": 1, "transferred": 1, "waiting": 3,
        # B001 was transferred: its first call is gone, so its wait is left out.
        "wait_minutes": {"count": 3, "mean": 10.7, "median": 12.0, "p90": 16.0},
        "service_minutes": {"count": 3, "mean": 7.7, "median": 8.0, "p90": 12.0},
        "no_show_percent": 25.0,
        "sla_breaches": 5,  # A002 12, A003 16, C001 12 then cancelled, D001 28, B002 25
        "active_minutes": 21.0,  # first call 10:04, last end 10:25
        "served_per_hour": 8.6,  # 3 / 0.35 h
    }


def test_sla_list_and_count_with_the_default_threshold(day, hall):
    assert hall.info.sla_wait_minutes == 10
    sla = stats.day_stats(day, hall, at(30))["sla"]
    assert sla["threshold_minutes"] == 10 and sla["breaches"] == 5
    assert sla["waiting_over_threshold"] == [
        {"number": "D001", "service": "D", "service_name": "住房公积金", "service_name_en": "Housing provident fund",
         "priority": "normal", "issued_at": "2026-11-23T10:02:00+08:00", "waited_minutes": 28.0},
        {"number": "B002", "service": "B", "service_name": "出入境", "service_name_en": "Exit and entry",
         "priority": "normal", "issued_at": "2026-11-23T10:05:00+08:00", "waited_minutes": 25.0},
    ]  # A004 has waited exactly 10 minutes: not longer than the threshold


def test_a_waiting_ticket_breaches_once_it_passes_the_threshold(day, hall):
    got = stats.day_stats(day, hall, at(30.5))["sla"]
    assert [e["number"] for e in got["waiting_over_threshold"]] == ["D001", "B002", "A004"]
    assert got["waiting_over_threshold"][-1]["waited_minutes"] == 10.5
    assert got["breaches"] == 6


def test_service_rows(day, hall):
    rows = stats.day_stats(day, hall, at(30))["services"]
    assert [r["code"] for r in rows] == ["A", "B", "C", "D", "E", "F"]
    a = by(rows, "code", "A")
    # B001 now counts in A (it ended there) but was issued by and transferred out of B.
    counts = ("issued", "called", "served", "no_shows", "cancelled", "transferred", "waiting")
    assert [a[k] for k in counts] == [4, 4, 3, 1, 0, 0, 1]
    assert a["wait_minutes"] == {"count": 3, "mean": 10.7, "median": 12.0, "p90": 16.0}
    assert a["service_minutes"] == {"count": 3, "mean": 7.7, "median": 8.0, "p90": 12.0}
    assert (a["no_show_percent"], a["sla_breaches"]) == (25.0, 2)
    assert (a["active_minutes"], a["served_per_hour"]) == (21.0, 8.6)
    b = by(rows, "code", "B")
    assert {k: b[k] for k in ("issued", "called", "served", "transferred", "waiting", "sla_breaches")} == \
        {"issued": 2, "called": 0, "served": 0, "transferred": 1, "waiting": 1, "sla_breaches": 1}
    assert (b["wait_minutes"]["mean"], b["service_minutes"]["p90"], b["no_show_percent"], b["served_per_hour"],
            b["active_minutes"]) == (None, None, None, None, None)
    c = by(rows, "code", "C")
    assert (c["issued"], c["cancelled"], c["waiting"], c["sla_breaches"]) == (1, 1, 0, 1)
    f = by(rows, "code", "F")
    assert (f["name"], f["issued"], f["called"], f["wait_minutes"]["count"]) == ("不动产登记", 0, 0, 0)


def test_window_rows_and_throughput(day, hall):
    rows = stats.day_stats(day, hall, at(30))["windows"]
    assert [r["number"] for r in rows] == [1, 2, 3, 4, 5, 6, 7, 8]
    w1, w2, w3 = (by(rows, "number", n) for n in (1, 2, 3))
    assert w1 | {"wait_minutes": None, "service_minutes": None} == {
        "number": 1, "name": "1号窗口", "name_en": "Window 1", "services": ["A"],
        "issued": None, "called": 2, "served": 2, "no_shows": 0, "cancelled": 0, "transferred": None,
        "waiting": 1, "wait_minutes": None, "service_minutes": None, "no_show_percent": 0.0,
        "sla_breaches": 1, "active_minutes": 20.0, "served_per_hour": 6.0}
    assert w1["wait_minutes"] == {"count": 2, "mean": 8.0, "median": 8.0, "p90": 12.0}
    assert w1["service_minutes"] == {"count": 2, "mean": 10.0, "median": 10.0, "p90": 12.0}
    # Window 2: A003 (no-show, waited 16) and the transferred B001 (served 3 minutes, wait unknown).
    assert (w2["called"], w2["served"], w2["no_shows"], w2["no_show_percent"], w2["waiting"]) == (2, 1, 1, 50.0, 2)
    assert w2["wait_minutes"] == {"count": 1, "mean": 16.0, "median": 16.0, "p90": 16.0}
    assert w2["service_minutes"] == {"count": 1, "mean": 3.0, "median": 3.0, "p90": 3.0}
    assert (w2["active_minutes"], w2["served_per_hour"]) == (9.0, 6.7)  # 10:16 to 10:25
    # Window 3 served B001 before the transfer; the ticket no longer records it.
    assert (w3["called"], w3["served"], w3["waiting"]) == (0, 0, 1)
    assert (w3["served_per_hour"], w3["no_show_percent"], w3["wait_minutes"]["mean"]) == (None, None, None)
    assert [r["waiting"] for r in rows] == [1, 2, 1, 1, 0, 1, 0, 3]


def test_a_ticket_at_a_window_keeps_its_window_active_until_now(store, clock, hall):
    store.issue_ticket("A")
    clock.advance(minutes=3)
    store.call_next(1)
    clock.advance(minutes=2)
    store.act(1, "start")
    clock.advance(minutes=5)
    w1 = stats.day_stats(store.tickets_of_day(), hall, clock.now)["windows"][0]
    assert (w1["called"], w1["served"], w1["active_minutes"], w1["served_per_hour"]) == (1, 0, 7.0, None)
    assert w1["service_minutes"]["count"] == 0 and w1["wait_minutes"]["mean"] == 3.0


def test_a_past_day_stops_at_its_end(day, hall):
    later = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)  # next morning; the store has not rolled over
    got = stats.day_stats(day, hall, later)
    assert got["as_of"] == "2026-11-24T04:00:00+08:00"
    longest = got["sla"]["waiting_over_threshold"][0]
    assert (longest["number"], longest["waited_minutes"]) == ("D001", 17 * 60 + 58.0)  # 10:02 to 04:00


def test_the_empty_day(hall, clock):
    got = stats.day_stats([], hall, clock.now)
    assert (got["day"], got["sla"]) == ("2026-11-23", {"threshold_minutes": 10, "breaches": 0,
                                                       "waiting_over_threshold": []})
    none = {"count": 0, "mean": None, "median": None, "p90": None}
    for row in [got["hall"], *got["services"], *got["windows"]]:
        assert (row["called"], row["served"], row["waiting"], row["sla_breaches"]) == (0, 0, 0, 0)
        assert row["wait_minutes"] == none and row["service_minutes"] == none
        assert (row["no_show_percent"], row["active_minutes"], row["served_per_hour"]) == (None, None, None)
    assert (got["hall"]["issued"], got["hall"]["transferred"]) == (0, 0)
    assert (len(got["services"]), len(got["windows"])) == (6, 8)


def test_day_stats_is_json_ready(day, hall):
    import json

    got = stats.day_stats(day, hall, at(30))
    assert json.loads(json.dumps(got, ensure_ascii=False)) == got


# -- waiting_series -----------------------------------------------------------------------


def test_waiting_series_at_known_instants(day, hall):
    start, _ = stats.day_bounds(date(2026, 11, 23), hall)
    series = stats.waiting_series(day, start, at(30))
    assert len(series) == 79  # 04:00 to 10:30 every 5 minutes
    assert series[0] == (start, 0) and series[-1] == (at(30), 3)
    assert all(t.tzinfo == SHANGHAI for t, _ in series)
    counts = dict(series)
    # 10:00 A001-A003 and B001 issued at that instant. 10:05: A001 called, C001, D001, B002 in.
    # 10:10: B001 counts as waiting although window 3 served it then (only its last call is kept).
    # 10:15: A002 called at 12, C001 cancelled at 13. 10:20: A003 called, A004 issued. 10:25: B001 called.
    assert [counts[at(m)] for m in (-5, 0, 5, 10, 15, 20, 25, 30)] == [0, 4, 6, 6, 4, 4, 3, 3]


def test_waiting_series_step_and_bounds(day):
    series = stats.waiting_series(day, at(0), at(29), step_minutes=10)
    assert series == [(at(0), 4), (at(10), 6), (at(20), 4), (at(29), 3)]  # ends at `now`
    assert stats.waiting_series(day, at(0), at(-1)) == []
    with pytest.raises(ValueError, match="step_minutes"):
        stats.waiting_series(day, at(0), at(30), step_minutes=0)


def test_waiting_series_steps_real_time_through_a_dst_change():
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 10, 24, 4, tzinfo=berlin)  # the business day that holds 25 hours
    end = datetime(2026, 10, 25, 4, tzinfo=berlin)
    series = stats.waiting_series([], start, end, step_minutes=60)
    assert len(series) == 26
    assert [t.hour for t, _ in series[21:]] == [1, 2, 2, 3, 4]


def test_waiting_series_of_an_empty_day(hall):
    start, _ = stats.day_bounds(date(2026, 11, 23), hall)
    series = stats.waiting_series([], start, start + timedelta(hours=1), step_minutes=15)
    assert series == [(start + timedelta(minutes=15 * i), 0) for i in range(5)]


# -- chart_svg ------------------------------------------------------------------------------


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element, cls: str) -> list[str]:
    return [el.text for el in root.iter(f"{SVG}text") if el.get("class") == cls]


def test_chart_has_a_point_per_sample_and_labels(day, hall):
    start, _ = stats.day_bounds(date(2026, 11, 23), hall)
    root = parse(stats.chart_svg(stats.waiting_series(day, start, at(30))))
    (line,) = [el for el in root.iter(f"{SVG}polyline") if el.get("class") == "series"]
    points = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
    assert len(points) == 79
    assert points[0][0] == 44.0 and points[-1][0] == 704.0  # left margin to width - right margin
    # 0 waiting sits on the baseline (30 + 184); 3 of a top tick of 6 half way up.
    assert (points[0][1], points[-1][1]) == (214.0, 122.0)
    assert texts(root, "hour") == ["04:00", "05:00", "06:00", "07:00", "08:00", "09:00", "10:00"]
    assert texts(root, "count") == ["0", "2", "4", "6"]  # the day's peak is 6
    assert texts(root, "title") == ["等候人数"] and root.find(f"{SVG}title").text == "等候人数"
    assert not [el for el in root.iter() if el.tag in (f"{SVG}script", f"{SVG}image", f"{SVG}foreignObject")]
    assert "http" not in stats.chart_svg([]).replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_chart_sla_line_language_and_escaping(day):
    series = stats.waiting_series(day, at(0), at(30))
    root = parse(stats.chart_svg(series, sla_line=8, lang="en", title='Hall <A> & "B"', width=400, height=200))
    assert (root.get("width"), root.get("height"), root.get("aria-label")) == ("400", "200", 'Hall <A> & "B"')
    assert texts(root, "title") == ['Hall <A> & "B"']
    assert texts(root, "count") == ["0", "2", "4", "6", "8"]
    assert texts(root, "sla-label") == ["Alert at 8"]
    (sla,) = [el for el in root.iter(f"{SVG}line") if el.get("class") == "sla"]
    assert float(sla.get("y1")) == 30.0  # the top of the plot: 8 is the highest tick
    assert texts(root, "hour") == ["10:00"]  # the first sample is a whole hour
    assert len(next(el for el in root.iter(f"{SVG}polyline")).get("points").split()) == 7


def test_chart_thins_hour_labels_on_a_narrow_chart(hall):
    start, _ = stats.day_bounds(date(2026, 11, 23), hall)
    series = [(start + timedelta(hours=h), h) for h in range(19)]  # 04:00 to 22:00
    root = parse(stats.chart_svg(series, width=300))
    assert texts(root, "hour") == ["06:00", "12:00", "18:00"]
    assert texts(root, "count") == ["0", "5", "10", "15", "20"]


def test_chart_refuses_a_size_with_no_room():
    with pytest.raises(ValueError, match="no room"):
        stats.chart_svg([], width=100, height=240)


def test_chart_of_an_empty_day_still_renders():
    root = parse(stats.chart_svg([], sla_line=None))
    assert list(root.iter(f"{SVG}polyline")) == [] and texts(root, "hour") == []
    assert texts(root, "empty") == ["暂无数据"] and texts(root, "count") == ["0", "1"]
    assert texts(parse(stats.chart_svg([], lang="en")), "empty") == ["No data yet"]


def test_chart_of_a_single_sample(hall):
    start, _ = stats.day_bounds(date(2026, 11, 23), hall)
    root = parse(stats.chart_svg([(start, 2)]))
    assert next(root.iter(f"{SVG}polyline")).get("points") == "44.0,30.0"
    assert texts(root, "hour") == ["04:00"]


# -- stats_csv ----------------------------------------------------------------------------


def read_csv(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def test_csv_rows_and_columns(day, hall):
    text = stats.stats_csv(stats.day_stats(day, hall, at(30)))
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf")
    header, *rows = read_csv(text)
    assert header == [zh for _, _, zh in stats.CSV_COLUMNS] and header[:4] == ["营业日", "类别", "编号", "名称"]
    assert len(rows) == 1 + 6 + 8
    assert [(r[1], r[2]) for r in rows] == [("全厅", "")] + [("业务", c) for c in "ABCDEF"] + \
        [("窗口", str(n)) for n in range(1, 9)]
    table = {(r[1], r[2]): dict(zip((en for _, en, _ in stats.CSV_COLUMNS), r)) for r in rows}
    assert table[("全厅", "")] == {
        "day": "2026-11-23", "kind": "全厅", "code": "", "name": "示范区政务服务中心",
        "issued": "8", "called": "4", "served": "3", "no_shows": "1", "cancelled": "1", "transferred": "1",
        "waiting_now": "3", "waits_measured": "3", "wait_mean_min": "10.7", "wait_median_min": "12.0",
        "wait_p90_min": "16.0", "services_measured": "3", "service_mean_min": "7.7", "service_median_min": "8.0",
        "service_p90_min": "12.0", "no_show_percent": "25.0", "sla_breaches": "5", "active_minutes": "21.0",
        "served_per_hour": "8.6"}
    b = table[("业务", "B")]
    assert (b["name"], b["issued"], b["transferred"], b["wait_mean_min"], b["no_show_percent"]) == \
        ("出入境", "2", "1", "", "")
    w2 = table[("窗口", "2")]
    assert (w2["name"], w2["issued"], w2["transferred"], w2["served_per_hour"], w2["no_show_percent"]) == \
        ("2号窗口", "", "", "6.7", "50.0")


def test_csv_in_english_for_the_empty_day(hall, clock):
    header, *rows = read_csv(stats.stats_csv(stats.day_stats([], hall, clock.now), lang="en"))
    assert header == [en for _, en, _ in stats.CSV_COLUMNS]
    assert rows[0][:5] == ["2026-11-23", "hall", "", "Model District Government Service Centre", "0"]
    assert rows[1][1:4] == ["service", "A", "Household registration and ID cards"]
    assert rows[-1][1:4] == ["window", "8", "Window 8 (general)"]
    assert {r[header.index("wait_mean_min")] for r in rows} == {""}


def test_csv_quotes_text_that_excel_would_run():
    row = {k: None for k in ("issued", "called", "served", "no_shows", "cancelled", "transferred", "waiting",
                             "no_show_percent", "sla_breaches", "active_minutes", "served_per_hour")}
    row |= {"wait_minutes": stats.summary([]), "service_minutes": stats.summary([])}
    fake = {"day": "2026-11-23", "hall": row | {"name": "=HYPERLINK(1)", "name_en": "x"},
            "services": [row | {"code": "A", "name": "a,\"b\"", "name_en": "a"}], "windows": []}
    _, hall_row, service_row = read_csv(stats.stats_csv(fake))
    assert hall_row[3] == "'=HYPERLINK(1)" and service_row[3] == 'a,"b"'
