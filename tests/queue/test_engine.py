"""The ticket engine's rules, every transition and refusal, with no database."""

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from kiosq.queue import engine
from kiosq.queue.config import parse_hall
from kiosq.queue.engine import Ticket, WindowState

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
DAY = date(2026, 11, 23)

HALL = parse_hall("""
[hall]
name = "测试大厅"
rollover_hour = 4
no_show_after_recalls = 2
reinstate_minutes = 30
[[services]]
code = "A"
name = "户籍"
name_en = "Household"
avg_service_minutes = 6
[[services]]
code = "B"
name = "出入境"
name_en = "Exit-entry"
last_number = 3
[[windows]]
number = 1
name = "1号"
services = ["A", "B"]
[[windows]]
number = 2
name = "2号"
services = ["B", "A"]
policy = "service_order"
""")
A, B = HALL.services["A"], HALL.services["B"]
W1, W2 = HALL.windows[1], HALL.windows[2]


def waiting(label: str, service: str = "A", seq: int = 1, priority: str = "normal") -> Ticket:
    return Ticket(id=f"id-{label}", day=DAY, number_service=service, number=int(label[1:]), label=label,
                  service=service, priority=priority, status=engine.WAITING, issued_at=NOW, queue_seq=seq)


def called(label: str = "A001", window: int = 1, recalls: int = 0) -> Ticket:
    return dataclasses.replace(waiting(label), status=engine.CALLED, window=window, called_at=NOW, recalls=recalls)


class TestIssue:
    def test_first_ticket_of_the_day_starts_at_first_number_padded(self):
        t = engine.issue(A, None, DAY, NOW, "x")
        assert (t.number, t.label, t.status, t.service, t.issued_at) == (1, "A001", "waiting", "A", NOW)

    def test_numbers_follow_the_last_one(self):
        assert engine.issue(A, 41, DAY, NOW, "x").label == "A042"

    def test_range_used_up_is_refused_with_a_reason(self):
        with pytest.raises(engine.RangeExhausted, match="B003"):
            engine.issue(B, 3, DAY, NOW, "x")

    def test_unknown_priority_is_refused(self):
        with pytest.raises(engine.NotAllowed, match="priority"):
            engine.issue(A, None, DAY, NOW, "x", priority="vip")

    def test_wide_ranges_pad_to_their_width(self):
        wide = A.model_copy(update={"last_number": 12000})
        assert engine.issue(wide, 41, DAY, NOW, "x").label == "A00042"


class TestPickNext:
    def test_priority_classes_go_first_green_appointment_elderly_normal(self):
        heads = [waiting("A001", seq=1), waiting("B001", "B", seq=2, priority="elderly"),
                 waiting("A002", seq=3, priority="appointment"), waiting("B002", "B", seq=4, priority="green")]
        order = []
        while heads:
            nxt = engine.pick_next(W1, heads)
            order.append(nxt.label)
            heads.remove(nxt)
        assert order == ["B002", "A002", "B001", "A001"]

    def test_oldest_policy_takes_the_earliest_across_services(self):
        assert engine.pick_next(W1, [waiting("A005", seq=9), waiting("B002", "B", seq=3)]).label == "B002"

    def test_service_order_policy_takes_the_first_listed_service(self):
        # Window 2 lists B before A: B's later ticket goes before A's older one.
        assert engine.pick_next(W2, [waiting("A005", seq=1), waiting("B002", "B", seq=9)]).label == "B002"

    def test_priority_beats_service_order(self):
        heads = [waiting("A005", seq=1, priority="elderly"), waiting("B002", "B", seq=9)]
        assert engine.pick_next(W2, heads).label == "A005"

    def test_ignores_services_the_window_does_not_serve(self):
        only_a = W1.model_copy(update={"services": ("A",)})
        assert engine.pick_next(only_a, [waiting("B001", "B")]) is None


class TestCallNext:
    def test_calls_the_head_to_the_window(self):
        out = engine.call_next(W1, WindowState(1), [waiting("A001")], NOW)
        t = out.ticket
        assert (t.status, t.window, t.called_at) == ("called", 1, NOW)
        assert [e.type for e in out.events] == ["ticket.called"]

    def test_nothing_waiting_is_refused(self):
        with pytest.raises(engine.NothingWaiting, match="window 1"):
            engine.call_next(W1, WindowState(1), [], NOW)

    def test_paused_window_cannot_call(self):
        with pytest.raises(engine.WindowPaused):
            engine.call_next(W1, WindowState(1, engine.PAUSED), [waiting("A001")], NOW)

    def test_moving_on_from_a_served_ticket_finishes_it(self):
        serving = dataclasses.replace(called("A001"), status=engine.SERVING, started_at=NOW)
        out = engine.call_next(W1, WindowState(1, current=serving), [waiting("A002", seq=2)], NOW)
        assert [(t.label, t.status) for t in out.tickets] == [("A001", "done"), ("A002", "called")]
        assert [e.type for e in out.events] == ["ticket.finished", "ticket.called"]

    def test_moving_on_from_a_called_ticket_marks_it_no_show(self):
        out = engine.call_next(W1, WindowState(1, current=called("A001")), [waiting("A002", seq=2)], NOW)
        assert [(t.label, t.status) for t in out.tickets] == [("A001", "no_show"), ("A002", "called")]
        assert out.events[0].type == "ticket.no_show" and out.events[0].reason == "skipped"


class TestTransitions:
    def test_start_then_finish(self):
        later = NOW + timedelta(minutes=5)
        t = engine.finish(engine.start(called(), NOW), later)
        assert (t.status, t.started_at, t.ended_at) == ("done", NOW, later)

    def test_finish_straight_from_called_counts_service_from_the_call(self):
        t = engine.finish(called(), NOW + timedelta(minutes=3))
        assert t.status == "done" and t.started_at == NOW

    def test_recall_counts(self):
        t = engine.recall(engine.recall(called(), NOW, 2), NOW, 2)
        assert (t.status, t.recalls) == ("called", 2)

    def test_recall_past_the_limit_makes_a_no_show(self):
        t = engine.recall(called(recalls=2), NOW, 2)
        assert (t.status, t.ended_at) == ("no_show", NOW)

    def test_no_show(self):
        assert engine.no_show(called(), NOW).status == "no_show"

    def test_reinstate_within_the_limit_keeps_the_place_in_line(self):
        gone = engine.no_show(dataclasses.replace(called(), queue_seq=7), NOW)
        back = engine.reinstate(gone, NOW + timedelta(minutes=29), within_minutes=30)
        assert (back.status, back.queue_seq, back.window, back.recalls) == ("waiting", 7, None, 0)

    def test_reinstate_too_late_is_refused(self):
        gone = engine.no_show(called(), NOW)
        with pytest.raises(engine.NotAllowed, match="30 minutes"):
            engine.reinstate(gone, NOW + timedelta(minutes=31), within_minutes=30)

    def test_transfer_keeps_number_and_place(self):
        t = engine.transfer(dataclasses.replace(called(), queue_seq=4), B, NOW)
        assert (t.label, t.number_service, t.service, t.status, t.queue_seq, t.transfers, t.window) == \
            ("A001", "A", "B", "waiting", 4, 1, None)

    def test_transfer_to_the_same_service_is_refused(self):
        with pytest.raises(engine.NotAllowed, match="already"):
            engine.transfer(called(), A, NOW)

    def test_cancel_waiting(self):
        assert engine.cancel(waiting("A001"), NOW).status == "cancelled"

    @pytest.mark.parametrize("action, allowed", [
        (lambda t: engine.start(t, NOW), {"called"}),
        (lambda t: engine.finish(t, NOW), {"called", "serving"}),
        (lambda t: engine.no_show(t, NOW), {"called"}),
        (lambda t: engine.recall(t, NOW, 3), {"called"}),
        (lambda t: engine.reinstate(dataclasses.replace(t, ended_at=NOW), NOW, 30), {"no_show"}),
        (lambda t: engine.transfer(t, B, NOW), {"waiting", "called", "serving"}),
        (lambda t: engine.cancel(t, NOW), {"waiting", "called"}),
    ])
    def test_each_transition_is_refused_from_every_other_state(self, action, allowed):
        for status in ("waiting", "called", "serving", "done", "no_show", "cancelled"):
            ticket = dataclasses.replace(called(), status=status)
            if status in allowed:
                action(ticket)
            else:
                with pytest.raises(engine.NotAllowed, match=f"A001: it is {status.replace('_', '-')}"):
                    action(ticket)


class TestWindowActions:
    def test_actions_need_a_current_ticket(self):
        with pytest.raises(engine.NotAllowed, match="no current ticket"):
            engine.act_on_current("finish", W1, WindowState(1), NOW, HALL)

    def test_recall_event_and_automatic_no_show(self):
        out = engine.act_on_current("recall", W1, WindowState(1, current=called(recalls=1)), NOW, HALL)
        assert out.events[0].type == "ticket.recalled"
        out = engine.act_on_current("recall", W1, WindowState(1, current=called(recalls=2)), NOW, HALL)
        assert out.events[0].type == "ticket.no_show" and "2 times" in out.events[0].reason

    def test_transfer_to_unknown_service_is_refused(self):
        with pytest.raises(engine.NotAllowed, match="unknown service 'Z'"):
            engine.act_on_current("transfer", W1, WindowState(1, current=called()), NOW, HALL, "Z")

    def test_pause_and_resume(self):
        paused = engine.pause(WindowState(1))
        assert paused.state == "paused"
        with pytest.raises(engine.NotAllowed, match="already paused"):
            engine.pause(paused)
        assert engine.resume(paused).state == "open"
        with pytest.raises(engine.NotAllowed, match="not paused"):
            engine.resume(WindowState(1))


class TestDayAndEstimates:
    def test_business_day_turns_at_the_rollover_hour_in_hall_time(self):
        # 03:59 and 04:00 Shanghai time (UTC+8) on 24 November.
        before = datetime(2026, 11, 23, 19, 59, tzinfo=UTC)
        after = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
        assert engine.business_day(before, HALL) == date(2026, 11, 23)
        assert engine.business_day(after, HALL) == date(2026, 11, 24)

    def test_close_day_cancels_waiting_and_called_and_finishes_serving(self):
        stale = [waiting("A001"), called("A002"),
                 dataclasses.replace(called("A003"), status=engine.SERVING, started_at=NOW),
                 dataclasses.replace(waiting("A004"), status=engine.DONE)]
        closed = engine.close_day(stale, NOW)
        assert [(t.label, t.status) for t in closed] == [("A001", "cancelled"), ("A002", "cancelled"),
                                                         ("A003", "done")]

    def test_eta_is_people_ahead_times_average_over_open_windows(self):
        assert engine.eta_minutes(10, A, 2) == 30
        assert engine.eta_minutes(0, A, 2) == 0
        assert engine.eta_minutes(0, A, 0) is None  # next, but every window serving it is paused
        assert engine.eta_minutes(3, A, 0) is None

    def test_queue_key_orders_rank_then_place(self):
        tickets = [waiting("A003", seq=3), waiting("A001", seq=1, priority="elderly"), waiting("A002", seq=2)]
        assert [t.label for t in sorted(tickets, key=engine.queue_key)] == ["A001", "A002", "A003"]
