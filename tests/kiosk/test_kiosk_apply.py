"""申报 and 进度查询 at the kiosk, as a citizen does them: real touches on the (offscreen)
window, the simulated ID card reader and receipt printer on ptys, a real `kiosq server`."""

from __future__ import annotations

import pytest
import requests

from kiosq.devices.sim.idcard import TEST_IDENTITIES
from tests.kiosk.conftest import pump, pump_until, screenshot, tap, window_image
from tests.kiosk.test_kiosk_ticket import Server

CARD = TEST_IDENTITIES[0]  # 测试一, 999901199001010010
ITEM = "SW-006"  # 开具个人所得税纳税记录: ID card, dates, a choice, a promise, a contact phone


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("kiosq-server"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def card_sim():
    from kiosq.devices.sim.idcard import SimulatedCardReader

    with SimulatedCardReader() as sim:
        yield sim


@pytest.fixture(scope="module")
def kiosk_app(tmp_path_factory, printer_sim, server, card_sim):
    from kiosq.kiosk.settings import KioskConfig
    from tests.kiosk.conftest import running_app

    config = KioskConfig(printer_uri=printer_sim.uri, card_reader_uri=card_sim.uri,
                         data_dir=tmp_path_factory.mktemp("kiosk"), server_url=server.url,
                         terminal_token=server.terminal_token)
    with running_app(config) as app:
        yield app


@pytest.fixture
def fresh(app, card_sim):
    lift(app, card_sim)
    return app


def look(server, number: str, code: str) -> requests.Response:
    """A citizen's lookup on a phone: the number and the receipt's lookup code."""
    return requests.post(f"{server.url}/api/applications/{number}/lookup", json={"code": code}, timeout=5)


def lift(app, card_sim) -> None:
    """Take the card off the reader, and wait until the kiosk's reader has seen it gone (a
    card placed again is then a new placement, read again)."""
    card_sim.remove()
    assert pump_until(lambda: app.cards.present() is None and not app.cards._poller.placement.present, timeout=5)


def screen(app, name):
    return app.manager.get_screen(name)


def texts(app) -> list[str]:
    return [getattr(w, "text", "") for w in app.root.walk()]


def type_on(keyboard, keys: str) -> None:
    for key in keys:
        tap(keyboard.keys[key])


def visible(scroll, widget) -> bool:
    _, sy = scroll.to_window(*scroll.pos)
    _, wy = widget.to_window(*widget.pos)
    return sy <= wy and wy + widget.height <= sy + scroll.height


def scroll_into_view(scroll, content, widget) -> None:
    """Move a scrolled list so the widget's middle is in the middle of the view (a swipe)."""
    _, y = content.to_widget(*widget.to_window(*widget.pos))
    room = content.height - scroll.height
    if room > 0:
        scroll.effect_y.velocity = 0  # a tap's touch may have left the scroll effect moving
        scroll.effect_y.is_manual = False
        scroll.scroll_y = min(1.0, max(0.0, (y + widget.height / 2 - scroll.height / 2) / room))
        scroll._update_effect_y_bounds()  # the effect starts from here, not where it was


def press(page, name: str, index: int = 0) -> None:
    """Scroll the form to a field's control and touch it."""
    scroll = page.ids.scroll
    for _ in range(10):
        pump(3)  # the rows laid out after the last change
        control = page.controls[name][index]
        if visible(scroll, control):
            break
        scroll_into_view(scroll, page.ids.fields, control)
    assert visible(scroll, page.controls[name][index]), f"{name} cannot be scrolled into view"
    tap(page.controls[name][index])


def fill_sw006(app) -> None:
    """The form of SW-006 after the card: dates, a choice, the promise, a phone."""
    page = screen(app, "apply_form")
    keyboard = page.ids.keyboard
    for name, keys in (("period_start", "20250101"), ("period_end", "20251231"), ("contact_phone", "13800138000")):
        press(page, name)
        assert app.apply.focus == name
        type_on(keyboard, keys)
    press(page, "delivery")  # 在本终端打印
    press(page, "promise")
    assert app.apply.entered["delivery"] == "print" and app.apply.entered["promise"] is True


def choose_item(app, code: str) -> None:
    """申报 → the item (scrolled into view first: a swipe)."""
    tap(screen(app, "home").ids.apply_tile)
    assert app.manager.current == "apply"
    tap_item(app, code)


def tap_item(app, code: str) -> None:
    page = screen(app, "apply")
    page.ids.scroll.scroll_to(next(b for b in page.item_buttons() if b.code == code), animate=False)
    pump(3)
    tap(next(b for b in page.item_buttons() if b.code == code))


def file_with_card(app, card_sim) -> None:
    choose_item(app, ITEM)
    assert app.manager.current == "apply_card"
    card_sim.place(CARD)
    assert pump_until(lambda: app.manager.current == "apply_form", timeout=10)
    pump(3)  # laid out


def test_home_has_the_application_tiles_with_a_server(fresh):
    home = screen(fresh, "home").ids
    assert "申报" in home.apply_tile.text and "进度查询" in home.progress_tile.text


def test_every_item_with_a_form_is_offered(fresh):
    tap(screen(fresh, "home").ids.apply_tile)
    codes = [b.code for b in screen(fresh, "apply").item_buttons()]
    assert codes == [item.code for item in fresh.guides.items.values() if item.form is not None]
    assert ITEM in codes and "GJJ-004" in codes  # a rental address in Chinese: typed with pinyin


def type_chinese(app, keyboard, pinyin: str, char: str) -> None:
    """Letters on the keyboard, then the character touched in the row above it (paging with 更多)."""
    type_on(keyboard, pinyin)
    assert app.apply.compose == pinyin
    page = screen(app, "apply_form")
    for _ in range(10):
        wanted = [b for b in page.candidate_buttons() if b.char == char]
        if wanted:
            tap(wanted[0])
            assert app.apply.compose == ""
            return
        more = [w for w in page.ids.candidates.children if getattr(w, "text", "") == app.msg["apply_more"]]
        assert more, f"{char} is not offered for {pinyin}"
        tap(more[0])
    raise AssertionError(f"{char} not found for {pinyin} in 10 pages")


def test_without_a_card_the_identity_is_typed_with_pinyin_and_the_keypad(fresh, server):
    from kiosq.base.idnumber import id_check_digit

    number = "99990119700707001" + id_check_digit("99990119700707001")  # fictitious (area 9999xx)
    choose_item(fresh, ITEM)
    tap(screen(fresh, "apply_card").ids.typed_button)
    assert fresh.manager.current == "apply_form" and fresh.apply.typed
    pump(3)
    page = screen(fresh, "apply_form")
    keyboard = page.ids.keyboard
    press(page, "applicant_name")
    type_chinese(fresh, keyboard, "ce", "测")
    type_chinese(fresh, keyboard, "shi", "试")
    type_chinese(fresh, keyboard, "wu", "五")
    assert fresh.apply.entered["applicant_name"] == "测试五"
    type_on(keyboard, "ce")
    tap(keyboard.keys["backspace"])  # takes back a letter of the pinyin, not a character
    assert fresh.apply.compose == "c" and fresh.apply.entered["applicant_name"] == "测试五"
    tap(keyboard.keys["clear"])
    press(page, "id_number")
    type_on(keyboard, number)
    fill_sw006(fresh)
    tap(screen(fresh, "apply_form").ids.next_button)
    assert fresh.manager.current == "apply_review", dict(fresh.apply.problems)
    shown = "\n".join(texts(fresh))
    assert "测*五" in shown and number not in shown and "999***********" + number[-4:] in shown
    tap(screen(fresh, "apply_review").ids.submit_button)
    assert pump_until(lambda: fresh.manager.current == "apply_done", timeout=15), fresh.apply.error
    got = look(server, fresh.apply.result["number"], fresh.apply.result["lookup_code"])
    assert got.status_code == 200 and got.json()["applicant"]["name"] == "测*五"


def test_a_chinese_field_is_typed_with_pinyin(fresh, card_sim):
    choose_item(fresh, "RS-SY-001")  # 失业保险金申领
    card_sim.place(CARD)
    assert pump_until(lambda: fresh.manager.current == "apply_form", timeout=10)
    pump(3)
    page = screen(fresh, "apply_form")
    press(page, "last_employer")
    for pinyin, char in (("shi", "示"), ("li", "例"), ("gong", "公"), ("si", "司")):
        type_chinese(fresh, page.ids.keyboard, pinyin, char)
    type_on(page.ids.keyboard, "ce")
    tap(page.ids.keyboard.keys["space"])  # a space takes the first character offered
    assert fresh.apply.entered["last_employer"] == "示例公司测"
    assert "last_employer" not in fresh.apply.problems


def test_missing_answers_are_marked_and_block_the_review(fresh, card_sim):
    file_with_card(fresh, card_sim)
    tap(screen(fresh, "apply_form").ids.next_button)
    assert fresh.manager.current == "apply_form"
    assert {"period_start", "period_end", "delivery", "promise", "contact_phone"} <= set(fresh.apply.problems)
    assert "需要填写或更正" in screen(fresh, "apply_form").ids.status.text
    # what the card gave is there, masked, and the full ID number is nowhere on screen
    assert "测*一" in texts(fresh) and not any(CARD.id_number in t for t in texts(fresh))


def test_file_with_the_id_card_get_a_receipt_and_the_server_has_it(fresh, card_sim, printer_sim, server):
    jobs = len(printer_sim.jobs)
    file_with_card(fresh, card_sim)
    fill_sw006(fresh)
    tap(screen(fresh, "apply_form").ids.next_button)
    assert fresh.manager.current == "apply_review", fresh.apply.problems
    shown = "\n".join(texts(fresh))
    assert "999***********0010" in shown and "138****8000" in shown and CARD.id_number not in shown
    screenshot("apply-review")
    tap(screen(fresh, "apply_review").ids.submit_button)
    assert pump_until(lambda: fresh.manager.current == "apply_done", timeout=15), fresh.apply.error
    result = fresh.apply.result
    assert result["delivered"] and result["number"].startswith("SQ")
    assert screen(fresh, "apply_done").ids.number.text == result["number"]
    screenshot("apply-done")
    # the receipt: the tracking number, the masked ID, the lookup code, and the QR with the
    # progress page's address, the code in its fragment
    job = printer_sim.wait_for_jobs(jobs + 1)[-1]
    printed = "\n".join(job.lines)
    assert result["number"] in printed and "999***********0010" in printed and CARD.id_number not in printed
    code = result["lookup_code"]
    assert len(code) == 8 and f"查询密码：{code[:4]}-{code[4:]}" in printed and "身份证号后" not in printed
    assert job.qr_payloads == [f"{server.url}/a/{result['number']}#code={code}"]
    # the server has it, for this person, with that code
    got = look(server, result["number"], code)
    assert got.status_code == 200 and got.json()["item"] == ITEM and got.json()["status"] == "submitted"
    # the outbox's record keeps the server's answer, never the code
    outbox_files = b"".join(p.read_bytes() for p in fresh.apply.outbox.path.parent.glob("outbox*"))
    assert code.encode() not in outbox_files
    # done ends the session: nothing personal stays, nor the code
    tap(screen(fresh, "apply_done").ids.done_button)
    assert fresh.manager.current == "home" and fresh.apply.card is None and not fresh.apply.entered
    assert not fresh.apply.result
    # nor does the maintenance screen's preview of the last slip: a receipt is not kept for it
    from kiosq.kiosk.printing import last_slip
    kept = last_slip() or b""
    assert code.encode() not in kept and result["number"].encode() not in kept


def test_progress_by_number_and_lookup_code(fresh, card_sim, server):
    file_with_card(fresh, card_sim)
    fill_sw006(fresh)
    tap(screen(fresh, "apply_form").ids.next_button)
    tap(screen(fresh, "apply_review").ids.submit_button)
    assert pump_until(lambda: fresh.manager.current == "apply_done", timeout=15)
    number, code = fresh.apply.result["number"], fresh.apply.result["lookup_code"]  # as on the receipt
    fresh.session.wipe()
    lift(fresh, card_sim)
    tap(screen(fresh, "home").ids.progress_tile)
    page = screen(fresh, "progress")
    type_on(page.ids.keyboard, number.lower())
    assert fresh.progress.number == number
    tap(page.ids.code)
    wrong_last = "2" if code[-1] != "2" else "3"
    type_on(page.ids.keyboard, code[:7].lower() + wrong_last)  # one character wrong
    assert fresh.progress.code == code[:7] + wrong_last
    tap(page.ids.search_button)
    assert pump_until(lambda: not fresh.progress.busy, timeout=10)
    assert fresh.manager.current == "progress" and "不对" in page.ids.message.text
    tap(page.ids.keyboard.keys["backspace"])
    type_on(page.ids.keyboard, code[-1].lower())
    tap(page.ids.search_button)
    assert pump_until(lambda: fresh.manager.current == "progress_result", timeout=10), fresh.progress.message
    shown = "\n".join(texts(fresh))
    assert number in shown and "已提交" in shown
    screenshot("progress-result")


def test_progress_by_placing_the_card(fresh, card_sim):
    file_with_card(fresh, card_sim)  # an application of this person's to find
    fill_sw006(fresh)
    tap(screen(fresh, "apply_form").ids.next_button)
    tap(screen(fresh, "apply_review").ids.submit_button)
    assert pump_until(lambda: fresh.manager.current == "apply_done", timeout=15)
    number = fresh.apply.result["number"]
    fresh.session.wipe()
    lift(fresh, card_sim)
    tap(screen(fresh, "home").ids.progress_tile)
    card_sim.place(CARD)
    assert pump_until(lambda: fresh.manager.current == "progress_result", timeout=10), fresh.progress.message
    assert number in [a["tracking_no"] for a in fresh.progress.results]
    assert not any(CARD.id_number in t for t in texts(fresh))


def test_server_away_the_application_waits_in_the_outbox_and_arrives_once(fresh, card_sim, printer_sim, server):
    jobs = len(printer_sim.jobs)
    server.stop()
    try:
        file_with_card(fresh, card_sim)
        fill_sw006(fresh)
        tap(screen(fresh, "apply_form").ids.next_button)
        tap(screen(fresh, "apply_review").ids.submit_button)
        assert pump_until(lambda: fresh.manager.current == "apply_done", timeout=20), fresh.apply.error
        result = fresh.apply.result
        assert not result["delivered"] and result["number"] == result["provisional_no"]
        assert "恢复后自动送达" in screen(fresh, "apply_done").ids.offline.text
        # no code yet: the receipt has none and no QR, and sends the citizen to the ID-card lookup
        job = printer_sim.wait_for_jobs(jobs + 1)[-1]
        assert result["number"] in "\n".join(job.lines) and job.qr_payloads == []
        assert "查询密码" not in "\n".join(job.lines) and "可凭身份证在自助终端查询" in "".join(job.lines)
        assert result["lookup_code"] == "" and result["query_url"] == ""
        assert fresh.apply.outbox.pending_count() >= 1
        assert pump_until(lambda: fresh.apply.outbox_waiting >= 1, timeout=5)  # the maintenance screen's count
        from kiosq.kiosk.screens.maintenance import status_lines

        assert "待发送申请：" in status_lines(fresh)["server"]
        screenshot("apply-done-offline")
    finally:
        server.start()
    fresh.apply.sender.kick()
    assert pump_until(lambda: fresh.apply.outbox.pending_count() == 0 and fresh.apply.outbox_waiting == 0, timeout=30)
    got = requests.get(f"{server.url}/api/applications/{result['provisional_no']}", timeout=5,
                       headers={"Authorization": f"Bearer {server.token('admin', 'boss')}"})
    assert got.status_code == 200 and got.json()["tracking_no"].startswith("SQ")
    # the sender had nobody waiting for this code: it kept it nowhere
    assert not fresh.apply.sender._codes


def test_paper_out_shows_a_qr_to_photograph(fresh, card_sim, printer_sim):
    import zxingcpp

    printer_sim.set_paper("out")
    file_with_card(fresh, card_sim)
    fill_sw006(fresh)
    tap(screen(fresh, "apply_form").ids.next_button)
    tap(screen(fresh, "apply_review").ids.submit_button)
    assert pump_until(lambda: fresh.manager.current == "apply_done", timeout=15)
    assert "回执未能打印" in screen(fresh, "apply_done").ids.receipt.text
    codes = [c.text for c in zxingcpp.read_barcodes(window_image())]
    result = fresh.apply.result
    assert codes == [result["query_url"]] and codes[0].endswith(f"/a/{result['number']}#code={result['lookup_code']}")
    code = result["lookup_code"]
    assert f"查询密码：{code[:4]}-{code[4:]}" in screen(fresh, "apply_done").ids.receipt.text


@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
def test_application_screens_contrast_and_elder_sizes(fresh, card_sim, printer_sim, elder):
    """Every screen of 申报 and 进度查询, as a citizen meets it, in standard and elder mode:
    contrast ≥ 4.5:1 against what is drawn, and in elder mode text ≥ 30 dp, targets ≥ 90 dp."""
    from kiosq.kiosk.accessibility import contrast_problems, elder_size_problems

    printer_sim.set_paper("out")  # the done screen with its QR code and the no-receipt words
    fresh.fleet.monitor.wake()  # the status bar (and the 取号 tile's warning) settle before the first touch
    assert pump_until(lambda: fresh.fleet.printer_state == "out", timeout=10)
    fresh.elder = elder
    pump(3)
    checked = []

    def check(step: str) -> None:
        pump(3)
        assert fresh.manager.current == step
        problems = contrast_problems(fresh.root, window_image())
        if elder:
            problems += elder_size_problems(fresh.manager.current_screen)
        assert not problems, f"{step}: " + "\n".join(map(str, problems))
        checked.append(step)

    tap(screen(fresh, "home").ids.apply_tile)
    check("apply")
    tap_item(fresh, ITEM)
    check("apply_card")
    card_sim.place(CARD)
    assert pump_until(lambda: fresh.manager.current == "apply_form", timeout=10)
    page = screen(fresh, "apply_form")
    check("apply_form")
    fill_sw006(fresh)
    tap(page.ids.next_button)
    check("apply_review")
    tap(screen(fresh, "apply_review").ids.submit_button)
    assert pump_until(lambda: fresh.manager.current == "apply_done", timeout=15)
    check("apply_done")
    fresh.go_home()
    lift(fresh, card_sim)
    tap(screen(fresh, "home").ids.progress_tile)
    type_on(screen(fresh, "progress").ids.keyboard, "sq1")
    check("progress")
    card_sim.place(CARD)
    assert pump_until(lambda: fresh.manager.current == "progress_result", timeout=10)
    check("progress_result")
    assert len(checked) == 7


def test_the_pinyin_row_is_large_and_readable_in_elder_mode(fresh, card_sim):
    from kiosq.kiosk.accessibility import contrast_problems, elder_size_problems

    fresh.elder = True
    pump(2)
    choose_item(fresh, "RS-SY-001")
    card_sim.place(CARD)
    assert pump_until(lambda: fresh.manager.current == "apply_form", timeout=10)
    page = screen(fresh, "apply_form")
    press(page, "last_employer")
    type_on(page.ids.keyboard, "shi")
    pump(3)
    assert page.candidate_buttons()
    problems = contrast_problems(page.ids.candidates, window_image()) + elder_size_problems(page.ids.candidates)
    assert not problems, "\n".join(map(str, problems))


def test_an_idle_form_is_wiped_with_the_card_data(fresh, card_sim):
    """A citizen walks away mid-form: after the prompt's countdown nothing of the card or the
    answers is left, and home is shown."""
    file_with_card(fresh, card_sim)
    page = screen(fresh, "apply_form")
    press(page, "contact_phone")
    type_on(page.ids.keyboard, "138")
    assert fresh.apply.card is not None and fresh.apply.entered.get("contact_phone") == "138"
    fresh.session.idle.timeout, fresh.session.idle.countdown = 0.3, 0.5
    try:
        tap(page.ids.keyboard.keys["0"])  # a touch arms the watcher
        assert pump_until(lambda: fresh.manager.current == "home", timeout=5)
        assert fresh.apply.card is None and not fresh.apply.entered and not fresh.apply.item
        assert not any(CARD.name in t or CARD.id_number in t or "1380" in t for t in texts(fresh))
    finally:
        fresh.session.idle.timeout, fresh.session.idle.countdown = 60.0, 10.0


def test_the_home_button_forgets_the_card_and_the_answers(fresh, card_sim):
    """首页 mid-form gives the application up: nothing of the card or the answers stays in
    memory (the idle wipe would not come: home is not a session)."""
    file_with_card(fresh, card_sim)
    page = screen(fresh, "apply_form")
    press(page, "contact_phone")
    type_on(page.ids.keyboard, "138")
    home_button = next(w for w in page.walk() if getattr(w, "text", "") == fresh.msg["home"])
    tap(home_button)
    assert fresh.manager.current == "home"
    assert fresh.apply.card is None and not fresh.apply.entered and not fresh.apply.item
    assert not fresh.session.in_session()
    assert not any("138" in getattr(w, "text", "") for w in page.walk())  # the hidden form is empty too


def test_a_card_left_on_the_reader_is_not_offered_to_the_next_citizen(fresh, card_sim):
    file_with_card(fresh, card_sim)
    fill_sw006(fresh)
    tap(screen(fresh, "apply_form").ids.next_button)
    tap(screen(fresh, "apply_review").ids.submit_button)
    assert pump_until(lambda: fresh.manager.current == "apply_done", timeout=15)
    tap(screen(fresh, "apply_done").ids.done_button)  # 完成; the card stays on the reader
    assert fresh.manager.current == "home" and card_sim.card is not None
    assert fresh.cards.present() is None
    choose_item(fresh, ITEM)  # the next citizen
    pump(20)
    assert fresh.manager.current == "apply_card" and fresh.apply.card is None  # asked for a card
    lift(fresh, card_sim)
    card_sim.place(CARD)  # placed again: read again
    assert pump_until(lambda: fresh.manager.current == "apply_form", timeout=10)
