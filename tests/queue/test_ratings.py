"""好差评 in the store, on SQLite and PostgreSQL, on an injected clock: a finished ticket's
service rated once, until the end of its business day plus the grace; a 差评's case with
its call-back and fix deadlines in working days (the 国庆 holidays skipped, the make-up
Saturday worked); the case's steps in their order; an upheld appeal keeps the rating on
record and out of the figures; the comment and notes sealed."""

import itertools
from datetime import UTC, date, datetime

import pytest

from kiosq.queue import ratings as rules
from kiosq.queue.personal import Personal
from kiosq.queue.workdays import WorkCalendar


@pytest.fixture
def rating_store(store, clock, tmp_path):
    clock.now = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai, the eve of 国庆
    (tmp_path / "keys").mkdir()
    store.seal_notes_with(Personal.in_dir(tmp_path / "keys"))
    return store


KEYS = itertools.count()


def served(store, window=1, clerk="zhangmin"):
    """A ticket issued, called, started and finished at `window` by `clerk`."""
    ticket, _ = store.issue_ticket("A", idempotency_key=f"k-{next(KEYS)}")
    store.call_next(window, served_by=clerk)
    store.act(window, "start", served_by=clerk)
    store.act(window, "finish", served_by=clerk)
    return ticket


def test_a_finished_service_is_rated_once_until_its_day_and_the_grace_end(rating_store, clock):
    store = rating_store
    waiting, _ = store.issue_ticket("A", idempotency_key="early")
    with pytest.raises(rules.RatingRefused) as refused:
        store.rate_ticket(waiting.id, "online", 5, [], None)
    assert refused.value.code == "not_finished"
    store.call_next(1, served_by="zhangmin")
    store.act(1, "finish", served_by="zhangmin")
    rating = store.rate_ticket(waiting.id, "online", 4, [], None)
    assert (rating.level, rating.window, rating.clerk, rating.service, rating.case) == (4, 1, "zhangmin", "A", None)
    with pytest.raises(rules.RatingRefused) as refused:
        store.rate_ticket(waiting.id, "kiosk", 1, ["等候时间过长"], None)
    assert refused.value.code == "already_rated"
    assert store.rating_of(rating.subject).level == 4  # the first one stays

    late = served(store)
    # Business day 2026-09-30 ends at 04:00 on 10-01; the grace is 24 hours more.
    clock.now = datetime(2026, 10, 1, 19, 59, tzinfo=UTC)  # 03:59 on 10-02 in Shanghai
    assert store.rate_ticket(late.id, "online", 5, [], None).level == 5
    clock.now = datetime(2026, 9, 30, 3, 0, tzinfo=UTC)
    third = served(store)
    clock.now = datetime(2026, 10, 1, 20, 1, tzinfo=UTC)  # 04:01 on 10-02
    with pytest.raises(rules.RatingRefused) as refused:
        store.rate_ticket(third.id, "online", 5, [], None)
    assert refused.value.code == "too_late" and "2026-10-02T04:00" in str(refused.value)


def test_a_bad_rating_opens_a_case_whose_deadlines_skip_the_holidays(rating_store):
    store = rating_store
    ticket = served(store, clerk="lisi")
    rating = store.rate_ticket(ticket.id, "window", 2, ["服务态度不好"], "窗口人员态度生硬，电话 13800138000")
    case = rating.case
    assert case is not None and case.state == rules.OPEN and case.opened_on == date(2026, 9, 30)
    # 10-01 to 10-07 are 国庆 days off, 10-10 (a Saturday) is worked: 1 working day is 10-08,
    # 5 are 10-08, 10-09, 10-10, 10-12, 10-13.
    assert (case.callback_due, case.fix_due) == (date(2026, 10, 8), date(2026, 10, 13))
    assert rating.comment == "窗口人员态度生硬，电话 13800138000"  # the route masks it; the store keeps it sealed
    raw = store.db.one("SELECT comment FROM ratings WHERE id = ?", (rating.id,))[0]
    assert "态度".encode() not in bytes(raw)  # sealed, under the applicant keys
    assert [c.id for c in store.rating_cases()] == [rating.id]
    assert store.rating_cases((rules.FIXED,)) == []


def test_the_case_steps_come_in_their_order_and_an_upheld_appeal_leaves_the_figures(rating_store):
    store = rating_store
    good = store.rate_ticket(served(store).id, "online", 5, [], None)
    bad = store.rate_ticket(served(store).id, "online", 1, ["等候时间过长"], None)
    other = store.rate_ticket(served(store).id, "online", 2, [], "办事效率低")

    def figures():
        rows = [{"level": r.level, "state": r.case and r.case.state,
                 "callback_at": r.case and r.case.callback_at, "fixed_at": r.case and r.case.fixed_at and
                 r.case.fixed_at.date().isoformat(), "fix_due": r.case and r.case.fix_due.isoformat()}
                for r in store.ratings_between(date(2026, 9, 30), date(2026, 9, 30))]
        return rules.figures(rows)
    assert (figures()["ratings"], figures()["bad"], figures()["good_rate"]) == (3, 2, 0.3333)

    store.rating_step(bad.id, "callback", "sup", "已回访，群众表示理解")
    with pytest.raises(rules.CaseRefused) as refused:
        store.rating_step(bad.id, "callback", "sup", None)
    assert refused.value.code == "already_called_back"
    fixed = store.rating_step(bad.id, "fix", "sup", "已调整窗口排班")
    assert fixed.case.state == rules.FIXED and fixed.case.fix_note == "已调整窗口排班"
    with pytest.raises(rules.CaseRefused) as refused:
        store.rating_step(bad.id, "appeal", "lisi", "恶意差评")
    assert refused.value.code == "case_closed"
    f = figures()
    assert (f["called_back"], f["callback_rate"], f["fixed"], f["fix_rate"], f["fixed_on_time"]) == (1, 0.5, 1, 0.5, 1)

    store.rating_step(other.id, "appeal", "lisi", "该群众未在本窗口办理业务")
    with pytest.raises(rules.CaseRefused) as refused:
        store.rating_step(other.id, "fix", "sup", "x")
    assert refused.value.code == "appeal_pending"
    with pytest.raises(rules.CaseRefused) as refused:
        store.rating_step(other.id, "decide", "lisi", None, True)
    assert refused.value.code == "own_appeal" and refused.value.status == 403
    upheld = store.rating_step(other.id, "decide", "sup", "核实属实", True)
    assert upheld.case.state == rules.UPHELD and upheld.case.decided_by == "sup"
    f = figures()  # on record, out of the figures
    assert (f["ratings"], f["bad"], f["upheld"], f["good_rate"], f["fix_rate"]) == (2, 1, 1, 0.5, 1.0)
    assert len(store.ratings_between(date(2026, 9, 30), date(2026, 9, 30))) == 3
    assert good.case is None


def test_a_rejected_appeal_puts_the_case_back_to_its_follow_up(rating_store):
    store = rating_store
    bad = store.rate_ticket(served(store).id, "online", 1, ["等候时间过长"], None)
    store.rating_step(bad.id, "appeal", "lisi", "理由")
    back = store.rating_step(bad.id, "decide", "sup", "证据不足", False)
    assert back.case.state == rules.OPEN and back.case.appeal_by == "lisi"
    with pytest.raises(rules.CaseRefused) as refused:
        store.rating_step(bad.id, "appeal", "lisi", "再次申诉")
    assert refused.value.code == "already_appealed"
    assert store.rating_step(bad.id, "fix", "sup", "已整改").case.state == rules.FIXED


def test_due_states_warn_at_80_percent_and_say_overdue_after_the_day():
    cal = WorkCalendar.china()
    opened, due = date(2026, 11, 23), date(2026, 11, 30)  # Monday; 5 working days
    assert rules.due_state(opened, due, False, date(2026, 11, 25), cal) == "ok"  # 2 of 5
    assert rules.due_state(opened, due, False, date(2026, 11, 27), cal) == "warning"  # 4 of 5
    assert rules.due_state(opened, due, False, date(2026, 12, 1), cal) == "overdue"
    assert rules.due_state(opened, due, True, date(2026, 12, 1), cal) is None
    with pytest.raises(rules.RatingRefused) as refused:
        rules.check_rating(2, [], "  ")
    assert refused.value.code == "reason_required" and refused.value.status == 422
    rules.check_rating(2, ["等候时间过长"], None)
    rules.check_rating(3, [], None)


def test_retention_erases_comments_and_notes_and_keeps_the_figures(rating_store, clock):
    from kiosq.queue import retention

    store = rating_store
    bad = store.rate_ticket(served(store).id, "online", 1, ["等候时间过长"], "我叫张三")
    store.rating_step(bad.id, "callback", "sup", "已回访张三")
    clock.advance(days=181)
    run = retention.run_now(store)
    assert run["rating_texts_erased"] == 1
    kept = store.rating(bad.id)
    assert (kept.level, kept.reasons, kept.comment, kept.case.callback_note) == (1, ["等候时间过长"], None, None)
    assert kept.case.callback_at is not None and kept.case.callback_by == "sup"
