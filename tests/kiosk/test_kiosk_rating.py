"""好差评 at the kiosk, as a citizen gives it: real touches on the (offscreen) window's done
screens, against a real `kiosq server` on 127.0.0.1. A 差评 with a reason opens a case
(channel kiosk), each session rates once under its own id, nobody tapping sends nothing,
and a hall out of reach costs nothing but a small line."""

from __future__ import annotations

import pytest
import requests

from kiosq.kiosk.accessibility import contrast_problems, elder_size_problems
from tests.kiosk.conftest import pump, pump_until, screenshot, tap, window_image
from tests.kiosk.test_kiosk_ticket import Server, free_port, screen, take_ticket


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("kiosq-server"))
    srv.start()
    srv.tokens["admin"] = srv.token("admin", "RATE-ADM")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kiosk_app(tmp_path_factory, printer_sim, server):
    """The whole app with the hall server, its spoken prompts written to WAV files."""
    from kiosq.kiosk.settings import KioskConfig
    from kiosq.kiosk.speech import Speaker
    from tests.kiosk.conftest import running_app

    config = KioskConfig(printer_uri=printer_sim.uri, data_dir=tmp_path_factory.mktemp("kiosk"),
                         server_url=server.url, terminal_token=server.terminal_token, ticket_done_seconds=30)
    with running_app(config, speaker=Speaker(out_dir=tmp_path_factory.mktemp("speech"))) as app:
        yield app


def admin_get(server, path):
    r = requests.get(server.url + path, headers={"Authorization": f"Bearer {server.tokens['admin']}"}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def kiosk_ratings(server) -> int:
    return admin_get(server, "/api/ratings/stats")["by"]["channel"].get("kiosk", {}).get("ratings", 0)


def kiosk_cases(server) -> list[dict]:
    return [c for c in admin_get(server, "/api/ratings/cases")["cases"] if c["channel"] == "kiosk"]


def row(app, name="ticket_done"):
    return screen(app, name).ids.rating


def choices(app, name="ticket_done") -> list:
    return list(reversed(row(app, name).ids.choices.children))  # in the order shown


def level_button(app, level, name="ticket_done"):
    return next(b for b in choices(app, name) if b.level == level)


def reasons(app, name="ticket_done"):
    """The reasons' window a 差评 opens, and its buttons in the order shown (重新评价 last)."""
    popup = row(app, name).reasons
    return popup, list(reversed(popup.ids.choices.children))


def said(app, text: str) -> bool:
    """Whether the prompt was spoken (in 长辈模式, like the done screen's own); no espeak-ng: yes."""
    return not app.speaker.available or pump_until(
        lambda: text in [t for _lang, t, _wav in app.speaker.spoken], timeout=15)


def test_a_bad_rating_and_its_reason_open_a_kiosk_case(app, server):
    take_ticket(app, "A")
    assert row(app).ids.prompt.text == "请为本次自助服务评价"
    assert [b.text for b in choices(app)] == ["非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    assert row(app).shown and row(app).to_window(*row(app).pos)[1] >= 0  # on screen, above the buttons' row
    tap(level_button(app, 2))
    popup, buttons = reasons(app)
    assert app.rating.state == "reasons" and popup.parent is not None
    assert popup.ids.title.text == "请选择不满意的原因"
    hall_reasons = requests.get(server.url + "/api/ratings/reasons", timeout=5).json()["reasons"]
    assert [b.text for b in buttons] == [r["zh"] for r in hall_reasons] + ["重新评价"]  # the hall's
    assert not contrast_problems(popup, window_image())
    screenshot("rating-reasons")
    assert kiosk_ratings(server) == 0  # a 差评 is not sent before its reason
    tap(buttons[1])
    assert popup.parent is None and row(app).ids.prompt.text == "感谢您的评价！" and not choices(app)
    assert pump_until(lambda: kiosk_ratings(server) == 1, timeout=10)
    (case,) = kiosk_cases(server)
    assert case["level"] == 2 and case["reasons"] == [hall_reasons[1]["zh"]] and case["state"] == "open"
    assert app.manager.current == "ticket_done"  # the done screen stays as it was
    pump(5)
    assert app.rating.state == "thanks"


def test_each_session_rates_once_under_its_own_id(app, server):
    before = kiosk_ratings(server)
    take_ticket(app, "B")
    tap(level_button(app, 5))
    first = app.rating.session
    assert first and len(first) >= 16
    assert pump_until(lambda: kiosk_ratings(server) == before + 1, timeout=10)
    tap(screen(app, "ticket_done").ids.done_button)  # 完成: the session ends, its id is forgotten
    assert app.manager.current == "home" and app.rating.session is None and app.rating.state == ""
    take_ticket(app, "B")
    assert [b.level for b in choices(app)] == [5, 4, 3, 2, 1]  # offered again, to the next citizen
    tap(level_button(app, 4))
    assert app.rating.session != first
    assert pump_until(lambda: kiosk_ratings(server) == before + 2, timeout=10)
    # the same session, another done screen: it stays rated
    app.rating.rate(3)
    pump(20)
    assert app.rating.state == "thanks" and kiosk_ratings(server) == before + 2


def test_a_printed_guide_offers_the_rating_and_the_session_keeps_it(app, server, printer_sim):
    before = kiosk_ratings(server)
    tap(screen(app, "home").ids.guide_tile)
    for key in "sfz":
        tap(screen(app, "guide").ids.keyboard.keys[key])
    tap(screen(app, "guide").result_buttons()[0])
    detail = screen(app, "detail")
    assert not row(app, "detail").shown  # nothing printed yet: nothing to rate
    tap(detail.ids.print_button)
    assert pump_until(lambda: not app.printing, timeout=10)
    pump(3)
    assert row(app, "detail").shown and row(app, "detail").ids.prompt.text == "请为本次自助服务评价"
    tap(level_button(app, 3, "detail"))
    assert pump_until(lambda: kiosk_ratings(server) == before + 1, timeout=10)
    tap(detail.ids.ticket_button)  # then a ticket, in the same session
    assert pump_until(lambda: app.manager.current == "ticket_confirm", timeout=10)
    tap(screen(app, "ticket_confirm").ids.confirm_button)
    assert pump_until(lambda: app.manager.current == "ticket_done" and not app.tickets.busy, timeout=10)
    pump(3)
    assert row(app).ids.prompt.text == "感谢您的评价！" and not choices(app)


def test_nobody_taps_nothing_is_sent_and_the_screen_goes_home(app, server):
    before = kiosk_ratings(server)
    take_ticket(app, "C")
    screen(app, "ticket_done").left = 1
    assert pump_until(lambda: app.manager.current == "home", timeout=3)
    pump(10)
    assert kiosk_ratings(server) == before and app.rating.session is None


def test_a_hall_out_of_reach_costs_a_small_line_and_nothing_else(app, server):
    before = kiosk_ratings(server)
    take_ticket(app, "A")
    real, app.server.base_url = app.server.base_url, f"http://127.0.0.1:{free_port()}"
    cached, app.rating.reasons = list(app.rating.reasons), []
    pump(3)  # the row redrawn
    try:
        tap(level_button(app, 1))  # the hall cannot say its reasons: the built-in ones
        popup, buttons = reasons(app)
        assert [b.text for b in buttons][:2] == ["等候时间过长", "服务态度不好"]
        tap(buttons[0])
        assert pump_until(lambda: app.rating.state == "failed", timeout=15)
        assert row(app).ids.prompt.text == "评价未能提交" and row(app).quiet
        assert not contrast_problems(app.root, window_image())  # small, grey, still readable
        assert app.manager.current == "ticket_done" and screen(app, "ticket_done").ids.number.text
    finally:
        app.server.base_url = real
        app.rating.reasons = cached
    tap(screen(app, "ticket_done").ids.done_button)
    assert app.manager.current == "home" and app.rating.state == ""
    assert kiosk_ratings(server) == before


def test_english(app, server):
    app.lang = "en"
    take_ticket(app, "D")
    assert row(app).ids.prompt.text == "Please rate this self-service visit"
    assert [b.text for b in choices(app)][::4] == ["Very satisfied", "Very dissatisfied"]
    tap(level_button(app, 2))
    popup, buttons = reasons(app)
    assert popup.ids.title.text == "What went wrong?"
    assert buttons[0].text == "Waited too long" and buttons[-1].text == "Rate again"
    tap(buttons[-1])  # back to the five levels, nothing sent
    assert popup.parent is None and [b.level for b in choices(app)] == [5, 4, 3, 2, 1]
    assert not contrast_problems(app.root, window_image())


def test_elder_mode_sizes_and_speech(app, printer_sim):
    """In 长辈模式 on the test's 1280×800 window the done screens' own lines leave no room
    (the row is not offered there, pushing nothing off screen); a printed guide's row is."""
    tap(screen(app, "home").ids.elder_toggle)
    app.speaker.spoken.clear()
    take_ticket(app, "D")
    assert not row(app).shown and not elder_size_problems(screen(app, "ticket_done"))
    tap(screen(app, "ticket_done").ids.done_button)  # home, still in 长辈模式
    tap(screen(app, "home").ids.guide_tile)
    for key in "sfz":
        tap(screen(app, "guide").ids.keyboard.keys[key])
    tap(screen(app, "guide").result_buttons()[0])
    tap(screen(app, "detail").ids.print_button)
    assert pump_until(lambda: not app.printing, timeout=10)
    pump(3)
    assert app.elder and row(app, "detail").shown
    assert not elder_size_problems(row(app, "detail"))
    tap(level_button(app, 1, "detail"))
    popup, buttons = reasons(app, "detail")
    assert not elder_size_problems(popup) and not contrast_problems(popup, window_image())
    assert said(app, "请选择不满意的原因。")
    screenshot("rating-reasons-elder")
    tap(buttons[2])
    assert row(app, "detail").ids.prompt.text == "感谢您的评价！"
    assert said(app, "感谢您的评价。")
