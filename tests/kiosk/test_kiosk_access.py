"""Can everyone use it: contrast of every text on every screen, 长辈模式 sizes everywhere a
citizen goes, spoken prompts (real espeak-ng, written to WAV files), every guide within four
taps of home, and the A4 guide."""

from __future__ import annotations

import array
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from kiosq.kiosk.accessibility import contrast, contrast_problems, elder_size_problems
from kiosq.kiosk.maintenance import PinGuard, hash_pin
from tests.kiosk.conftest import pump, pump_until, screenshot, tap, window_image

PIN = "246810"


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="module")
def a4_file(tmp_path_factory):
    return tmp_path_factory.mktemp("a4") / "guide.pdf"


@pytest.fixture(scope="module")
def kiosk_app(tmp_path_factory, printer_sim, speech_dir, a4_file):
    """The whole app with an A4 printer (a file), a maintenance PIN, and spoken prompts
    written to WAV files instead of played."""
    from kiosq.kiosk.settings import KioskConfig
    from kiosq.kiosk.speech import Speaker
    from tests.kiosk.conftest import running_app

    config = KioskConfig(printer_uri=printer_sim.uri, data_dir=tmp_path_factory.mktemp("kiosk"),
                         a4_printer_uri=f"file:{a4_file}", maintenance_pin_hash=hash_pin(PIN))
    with running_app(config, speaker=Speaker(out_dir=speech_dir)) as app:
        yield app


@pytest.fixture
def fresh(app):
    app.maintenance.pin_guard = PinGuard(app.kiosk_config.maintenance_pin_hash)
    app.maintenance.corner_taps.times = []
    app.speaker.spoken.clear()
    return app


def screen(app, name):
    return app.manager.get_screen(name)


def visit(app, name: str) -> None:
    """Bring the app to one of its screens the way a citizen (or IT staff) would."""
    if name == "home":
        return
    tap(screen(app, "home").ids.guide_tile)
    if name == "guide_browse":
        page = screen(app, "guide")
        tap(page.ids.departments.children[-1])  # the first department
        return
    if name == "guide":
        for key in "sfz":
            tap(screen(app, "guide").ids.keyboard.keys[key])
        return
    if name == "detail":
        for key in "sfz":
            tap(screen(app, "guide").ids.keyboard.keys[key])
        tap(screen(app, "guide").result_buttons()[0])
        return
    app.go_home()
    pump(2)
    for _ in range(5):
        tap(screen(app, "home").ids.corner)
    if name == "maintenance":
        for key in PIN:
            tap(screen(app, "maintenance_pin").keys[key])
        tap(screen(app, "maintenance_pin").ids.ok_button)


SCREENS = ("home", "guide", "guide_browse", "detail", "maintenance_pin", "maintenance")


def test_contrast_measure_matches_wcag_examples():
    assert contrast((0, 0, 0), (1, 1, 1)) == pytest.approx(21.0)
    assert contrast((1, 1, 1), (1, 1, 1)) == pytest.approx(1.0)
    assert contrast((0x77 / 255,) * 3, (1, 1, 1)) == pytest.approx(4.48, abs=0.01)  # #777 on white just fails


@pytest.mark.parametrize("variant", ["zh", "en", "elder"])
@pytest.mark.parametrize("name", SCREENS)
def test_every_text_has_contrast_of_at_least_4_5(fresh, name, variant):
    fresh.lang, fresh.elder = ("en" if variant == "en" else "zh"), variant == "elder"
    pump(3)
    visit(fresh, name)
    pump(3)
    assert fresh.manager.current == name.partition("_browse")[0]
    problems = contrast_problems(fresh.root, window_image())
    assert not problems, "\n".join(map(str, problems))


@pytest.mark.parametrize("name", SCREENS)
def test_elder_mode_sizes_on_every_screen(fresh, name):
    tap(screen(fresh, "home").ids.elder_toggle)
    assert fresh.elder
    visit(fresh, name)
    pump(3)
    assert fresh.manager.current == name.partition("_browse")[0]
    problems = elder_size_problems(fresh.manager.current_screen)
    assert not problems, "\n".join(map(str, problems))


def test_the_checks_catch_small_text_and_faint_colours(fresh):
    """The checks above can fail: a label made small and pale is reported by both."""
    tap(screen(fresh, "home").ids.elder_toggle)
    label = screen(fresh, "home").ids.lang_toggle
    label.font_size, label.color = 12, (0.8, 0.8, 0.8, 1)
    try:
        pump(3)
        small = elder_size_problems(screen(fresh, "home"))
        assert any(p.text == "English" and p.what.startswith("text") for p in small)
        assert any(p.text == "English" and "contrast" in p.what for p in contrast_problems(fresh.root, window_image()))
    finally:
        label.color = (1, 1, 1, 1)
        fresh.session.wipe()  # elder mode off: the kv rule sets the font size again
        pump(3)


def _said(app, text: str, timeout: float = 10.0) -> Path:
    assert pump_until(lambda: any(t == text for _, t, _ in app.speaker.spoken), timeout=timeout), \
        f"{text!r} was not spoken; spoken: {[t for _, t, _ in app.speaker.spoken]}"
    return next(w for _, t, w in app.speaker.spoken if t == text)


def _loudness(wav_path: Path) -> float:
    with wave.open(str(wav_path)) as wav:
        assert wav.getsampwidth() == 2
        samples = array.array("h", wav.readframes(wav.getnframes()))
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make installs it)")
def test_elder_mode_speaks_each_screen_and_can_be_switched_off(fresh):
    home = screen(fresh, "home")
    assert home.ids.speech_toggle.parent is None  # no voice switch outside 长辈模式
    tap(home.ids.elder_toggle)
    wav = _said(fresh, fresh.msg["say_home"])
    assert wav.stat().st_size > 10_000 and _loudness(wav) > 200  # speech, not silence
    assert home.ids.speech_toggle.parent is not None and home.ids.speech_toggle.text == "语音提示：开"
    tap(home.ids.guide_tile)
    _said(fresh, fresh.msg["say_guide"])
    for key in "sfz":
        tap(screen(fresh, "guide").ids.keyboard.keys[key])
    first = screen(fresh, "guide").result_buttons()[0]
    tap(first)
    item = fresh.guides.item(first.code)
    _said(fresh, f"{item.name}。可以打印这份办事指南，或者为它取号。")
    # switched off: nothing more is said
    fresh.go_home()
    pump(2)
    tap(home.ids.speech_toggle)
    assert not fresh.speech_on and home.ids.speech_toggle.text == "语音提示：关"
    count = len(fresh.speaker.spoken)
    tap(home.ids.guide_tile)
    pump(30)
    assert len(fresh.speaker.spoken) == count
    # the wipe brings the default back: voice on, elder mode off, silence outside it
    fresh.session.wipe()
    pump(3)
    assert fresh.speech_on and not fresh.elder and home.ids.speech_toggle.parent is None


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make installs it)")
def test_english_prompts_use_the_english_voice(fresh):
    tap(screen(fresh, "home").ids.lang_toggle)
    tap(screen(fresh, "home").ids.elder_toggle)
    _said(fresh, fresh.msg["say_home"])
    assert fresh.speaker.spoken[-1][0] == "en" and fresh.msg["say_home"].startswith("Hello")


def _visible_in(scroll, button) -> bool:
    sx, sy = scroll.to_window(*scroll.pos)
    bx, by = button.to_window(*button.pos)
    return sy - 1 <= by and by + button.height <= sy + scroll.height + 1


def _reach(app, code: str) -> int:
    """Open one item from home by browsing, counting taps; a list longer than the screen is
    scrolled first (a swipe, not a tap). The number of taps."""
    item = app.guides.item(code)
    page = app.screen("guide")  # loaded on first use
    taps = 0

    def press(scroll, button) -> None:
        nonlocal taps
        if scroll is not None and not _visible_in(scroll, button):
            scroll.scroll_to(button, padding=0, animate=False)
            pump(3)
            assert _visible_in(scroll, button), f"{button.text} cannot be scrolled into view"
        taps += 1
        tap(button)

    def line(text: str, level: int):
        return next(b for b in page.ids.departments.children if b.text == text and b.level == level)

    press(None, screen(app, "home").ids.guide_tile)
    press(page.ids.departments_scroll, line(item.department, 0))
    if len(page.result_buttons()) > 8:  # a long department: its category first
        press(page.ids.departments_scroll, line(item.category, 1))
    press(page.ids.results_scroll, next(b for b in page.result_buttons() if b.code == code))
    assert app.manager.current == "detail" and app.item_code == code
    return taps


@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
def test_every_guide_is_at_most_four_taps_from_home(fresh, elder):
    taps = {}
    for code in fresh.guides.items:
        fresh.session.wipe()
        fresh.elder = elder
        pump(2)
        taps[code] = _reach(fresh, code)
    assert max(taps.values()) <= 4, {c: n for c, n in taps.items() if n > 4}
    assert min(taps.values()) == 3  # most items: 办事指南 → department → item


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_the_a4_guide_prints_to_the_a4_printer(fresh, a4_file):
    visit(fresh, "detail")
    page = screen(fresh, "detail")
    assert page.ids.a4_button.parent is not None
    a4_file.unlink(missing_ok=True)
    tap(page.ids.a4_button)
    assert pump_until(lambda: not fresh.printing, timeout=20)
    assert fresh.print_message == fresh.msg["print_a4_done"] and not fresh.print_failed
    text = subprocess.run(["pdftotext", str(a4_file), "-"], capture_output=True, text=True, check=True).stdout
    item = fresh.guides.item(fresh.item_code)
    assert item.name in text and item.code in text
    screenshot("detail-a4-printed")


def test_an_a4_printer_that_cannot_print_says_so(fresh, a4_file):
    from dataclasses import replace

    real = fresh.kiosk_config
    fresh.kiosk_config = replace(real, a4_printer_uri=f"file:{a4_file.parent / 'missing' / 'x.pdf'}")
    try:
        visit(fresh, "detail")
        tap(screen(fresh, "detail").ids.a4_button)
        assert pump_until(lambda: not fresh.printing, timeout=20)
        assert fresh.print_failed and fresh.print_message == fresh.msg["print_a4_failed"]
    finally:
        fresh.kiosk_config = real


def test_no_server_no_ticket_button_on_the_guide(fresh):
    visit(fresh, "detail")
    texts = [getattr(w, "text", "") for w in screen(fresh, "detail").walk()]
    assert fresh.msg["print_a4"] in texts and fresh.msg["detail_take_ticket"] not in texts
