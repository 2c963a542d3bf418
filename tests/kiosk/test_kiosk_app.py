"""The kiosk as a citizen uses it: real touches on a real (offscreen) window."""

from __future__ import annotations

import pytest
from kivy.metrics import dp
from kivy.uix.button import Button
from kivy.uix.label import Label

from tests.kiosk.conftest import pump, pump_until, screenshot, tap


def home(app):
    return app.manager.get_screen("home")


def type_keys(app, keys: str) -> None:
    keyboard = app.manager.get_screen("guide").ids.keyboard
    for key in keys:
        tap(keyboard.keys[key])


def search_sfz(app) -> list:
    tap(home(app).ids.guide_tile)
    assert app.manager.current == "guide"
    type_keys(app, "sfz")
    return app.manager.get_screen("guide").result_buttons()


def open_first_result(app):
    first = search_sfz(app)[0]
    tap(first)
    assert app.manager.current == "detail"
    return app.guides.item(first.code)


def test_home_has_the_guide_tile_and_the_toggles_only(app):
    ids = home(app).ids
    assert "办事指南" in ids.guide_tile.text
    assert ids.lang_toggle.text == "English" and ids.elder_toggle.text == "长辈模式"
    buttons = [w for w in home(app).walk() if isinstance(w, Button)]
    assert len(buttons) == 3  # 取号, 申报 and 进度查询 come with their flows
    screenshot("home-zh")


def test_typing_sfz_on_the_keyboard_finds_the_id_card_and_opens_it(app):
    results = search_sfz(app)
    assert app.query == "sfz"
    assert results and "居民身份证" in results[0].text
    screenshot("search-sfz")
    tap(results[0])
    assert app.manager.current == "detail"
    item = app.guides.item(results[0].code)
    assert app.manager.get_screen("detail").ids.title.text == item.name
    body = app.manager.get_screen("detail").ids.body.text
    assert "申请材料" in body and item.location in body
    screenshot("detail")


def test_backspace_and_clear_update_the_results(app):
    tap(home(app).ids.guide_tile)
    type_keys(app, "sfzx")
    keyboard = app.manager.get_screen("guide").ids.keyboard
    tap(keyboard.keys["backspace"])
    assert app.query == "sfz"
    tap(keyboard.keys["clear"])
    assert app.query == "" and app.manager.get_screen("guide").result_buttons() == []


def test_browsing_a_department_and_category(app):
    tap(home(app).ids.guide_tile)
    guide = app.manager.get_screen("guide")
    department = app.guides.departments()[0]
    tap(next(b for b in guide.ids.departments.children if b.text == department))
    category = app.guides.categories(department)[0]
    tap(next(b for b in guide.ids.departments.children if b.text == category and b.level == 1))
    shown = [b.code for b in guide.result_buttons()]
    assert shown == [e.code for e in app.guides.browse(department, category)] and shown


def test_print_sends_the_guide_slip_to_the_printer(app, printer_sim):
    item = open_first_result(app)
    before = len(printer_sim.jobs)
    tap(app.manager.get_screen("detail").ids.print_button)
    assert pump_until(lambda: not app.printing)
    jobs = printer_sim.wait_for_jobs(before + 1)
    assert jobs[-1].printed and any(item.name in line for line in jobs[-1].lines)
    assert app.manager.get_screen("detail").ids.print_status.text == "已打印，请在出纸口取走凭条。"


def test_paper_out_is_said_plainly_and_nothing_is_printed(app, printer_sim):
    open_first_result(app)
    printer_sim.set_paper("out")
    before = len(printer_sim.jobs)
    tap(app.manager.get_screen("detail").ids.print_button)
    assert pump_until(lambda: not app.printing)
    assert "缺纸" in app.manager.get_screen("detail").ids.print_status.text
    assert len(printer_sim.jobs) == before
    screenshot("detail-paper-out")


def test_idle_session_is_wiped_after_the_countdown(app):
    search_sfz(app)
    app.session.idle.timeout, app.session.idle.countdown = 0.3, 0.5
    try:
        tap(app.manager.get_screen("guide").ids.keyboard.keys["1"])  # a touch arms the watcher
        assert pump_until(lambda: app.session.prompt is not None and app.session.prompt.parent is not None, timeout=3)
        assert app.session.prompt.ids.countdown.text.startswith("1 秒后")
        assert pump_until(lambda: app.manager.current == "home", timeout=3)
        assert app.query == "" and app.history == [] and app.session.prompt.parent is None
    finally:
        app.session.idle.timeout, app.session.idle.countdown = 60.0, 10.0


def test_a_touch_answers_the_idle_prompt(app):
    search_sfz(app)
    app.session.idle.timeout, app.session.idle.countdown = 0.3, 5.0
    try:
        tap(app.manager.get_screen("guide").ids.keyboard.keys["1"])
        assert pump_until(lambda: app.session.prompt is not None and app.session.prompt.parent is not None, timeout=3)
        pump(10)  # let the prompt finish opening (it animates) before touching it
        tap(app.session.prompt.children[0].children[0])  # 继续使用
        # Closing animates too: wait for it, on a busy machine it takes more frames.
        assert pump_until(lambda: app.session.prompt.parent is None, timeout=3)
        assert app.manager.current == "guide" and app.query == "sfz1"
    finally:
        app.session.idle.timeout, app.session.idle.countdown = 60.0, 10.0
        app.session.idle.touched()


def _texts_and_targets(screen):
    labels = [w for w in screen.walk() if isinstance(w, Label) and w.text]
    buttons = [w for w in screen.walk() if isinstance(w, Button)]
    return labels, buttons


@pytest.mark.parametrize("where", ["home", "guide", "detail"])
def test_elder_mode_text_at_least_30dp_and_targets_at_least_90dp(app, where):
    tap(home(app).ids.elder_toggle)
    assert app.elder and home(app).ids.elder_toggle.text == "标准模式"
    if where != "home":
        open_first_result(app)
        if where == "guide":
            app.back()
    pump(3)
    labels, buttons = _texts_and_targets(app.manager.current_screen)
    assert app.manager.current == where and labels and buttons
    assert min(w.font_size for w in labels) >= dp(30)
    assert min(w.height for w in buttons) >= dp(90) - 0.5
    assert min(w.width for w in buttons) >= dp(90) - 0.5
    screenshot(f"{where}-elder")


def test_language_switch_shows_english(app):
    tap(home(app).ids.lang_toggle)
    assert app.lang == "en"
    assert "Service Guides" in home(app).ids.guide_tile.text and home(app).ids.lang_toggle.text == "中文"
    screenshot("home-en")
    item = open_first_result(app)
    assert app.manager.get_screen("detail").ids.title.text == item.name_en
    assert app.manager.get_screen("detail").ids.print_button.text == "Print this guide"
    assert app.manager.get_screen("guide").ids.keyboard.keys["backspace"].text == "Delete"


def test_both_languages_have_every_message():
    from kiosq.kiosk.messages import messages

    assert messages("zh").keys() == messages("en").keys()
