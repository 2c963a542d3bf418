"""效能投诉 in the store, on SQLite and PostgreSQL, on an injected clock: numbers per day,
deadlines in working days (国庆 skipped), the states in their order, and the retention run
emptying a closed complaint's sealed text and answer."""

from datetime import UTC, date, datetime

import pytest

from kiosq.queue import complaints as rules
from kiosq.queue import retention
from kiosq.queue.personal import Personal


@pytest.fixture
def keyed(store, clock, tmp_path):
    clock.now = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai, the eve of 国庆
    (tmp_path / "keys").mkdir()
    personal = Personal.in_dir(tmp_path / "keys")
    store.seal_notes_with(personal)
    return store, personal


def file(store, personal, n):
    return store.file_complaint(channel="kiosk", about={"window": 1}, category="evasion",
                                sealed=personal.seal({"text": f"投诉{n}"}), lookup_hash="h", caller="c", key=f"k{n}",
                                fingerprint=f"f{n}")[0]


def test_numbers_deadlines_and_states(keyed):
    store, personal = keyed
    first, second = file(store, personal, 1), file(store, personal, 2)
    assert (first.complaint_no, second.complaint_no) == ("TS20260930-0001", "TS20260930-0002")
    # 2 working days after 09-30 are 10-08 and 10-09; the 10th is 10-20 (10-10, a Saturday, is worked).
    assert (first.accept_by, first.reply_by) == (date(2026, 10, 9), date(2026, 10, 20))
    with pytest.raises(rules.ComplaintRefused):
        store.act_on_complaint(first.complaint_no, "answer", "sup", "x")
    store.act_on_complaint(first.complaint_no, "accept", "sup")
    answered = store.act_on_complaint(first.complaint_no, "answer", "sup", "已处理")
    assert answered.state == rules.ANSWERED and answered.answer == "已处理"
    closed = store.act_on_complaint(first.complaint_no, "close", "citizen", satisfaction=5)
    assert (closed.state, closed.satisfaction) == (rules.CLOSED, 5)
    assert store.act_on_complaint(second.complaint_no, "decline", "sup", "不属于受理范围").state == rules.DECLINED
    assert [c.complaint_no for c in store.complaints((rules.DECLINED,))] == [second.complaint_no]
    assert store.file_complaint(channel="kiosk", about={}, category="evasion", sealed=personal.seal({"text": "x"}),
                                lookup_hash="h", caller="c", key="k1", fingerprint="f1")[1] is True  # a replay
    assert rules.due_state(date(2026, 10, 9), False, date(2026, 10, 9)) == "due_today"


def test_retention_empties_closed_complaints_texts(keyed, clock):
    store, personal = keyed
    c = file(store, personal, 1)
    store.act_on_complaint(c.complaint_no, "accept", "sup")
    store.act_on_complaint(c.complaint_no, "answer", "sup", "答复")
    store.act_on_complaint(c.complaint_no, "close", "citizen", satisfaction=3)
    still_open = file(store, personal, 2)
    clock.advance(days=181)
    retention.run_now(store)
    record, _hash = store.complaint_secrets(c.complaint_no)
    kept = store.complaint(c.complaint_no)
    assert record == b"" and kept.answer is None and (kept.state, kept.satisfaction, kept.category) == (
        "closed", 3, "evasion")
    assert personal.open(store.complaint_secrets(still_open.complaint_no)[0]) == {"text": "投诉2"}
