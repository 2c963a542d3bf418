"""Slips decoded back from their bytes: the text, the QR payload, the cut, nothing wider than
the paper, Chinese as GB18030 in Chinese mode; wrapping by display width; the ID mask."""

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosq.base.privacy import mask_id_number as mask_id
from kiosq.content.catalog import SAMPLE, load_files
from kiosq.content.document import guide_document
from kiosq.devices.escpos_decode import (
    Cut,
    Image,
    Line,
    QRCode,
    decode,
    qr_payloads,
    text_lines,
)
from kiosq.devices.escpos_tokens import tokenize
from kiosq.devices.receipts import (
    PAPER_58,
    PAPER_80,
    ApplicationFiled,
    QueueTicket,
    SlipBuilder,
    application_receipt,
    guide_slip,
    paper,
    ticket_slip,
)
from kiosq.devices.slip_text import PrinterFont, char_width, display_width, hanging, wrap

PAPERS = [PAPER_58, PAPER_80]
TICKET = QueueTicket(hall="杭州市上城区市民中心 24小时自助服务区", number="A012", service="户籍业务", ahead=5,
                     eta_minutes=15, issued_at=datetime(2026, 11, 23, 10, 2), follow_url="https://hall.example/t/8f3a2c")
FILED = ApplicationFiled(hall="杭州市上城区市民中心", tracking_no="SQ20261123000042", item="住房公积金租房提取",
                         id_number="110105194912311234", filed_at=datetime(2026, 11, 23, 10, 15),
                         promised_date=date(2026, 11, 30), server_url="https://hall.example/",
                         lookup_code="K7MW2QXR", applicant="张三")


@pytest.fixture(scope="module")
def items():
    return load_files(SAMPLE)


def check_slip(data: bytes, paper_size) -> list:
    """What every slip must be: decodable, one cut at the very end, no line wider than the
    paper, and every non-ASCII byte sent in Chinese mode."""
    elements = decode(data)
    assert isinstance(elements[-1], Cut) and sum(isinstance(e, Cut) for e in elements) == 1
    assert tokenize(data)[1] == len(data)  # nothing left cut short
    too_wide = [(e.text, e.columns) for e in elements if isinstance(e, Line) and e.columns > paper_size.columns]
    assert not too_wide
    assert_chinese_mode_for_non_ascii(data)
    return elements


def assert_chinese_mode_for_non_ascii(data: bytes) -> None:
    chinese = False
    for token in tokenize(data)[0]:
        if token.name in ("FS &", "FS ."):
            chinese = token.name == "FS &"
        elif token.name == "text" and not token.args.isascii():
            assert chinese, f"{token.args!r} sent outside FS & … FS ."
            token.args.decode("gb18030")  # strict: valid GB18030


# --- widths and wrapping ---------------------------------------------------------------

@pytest.mark.parametrize("ch, width", [("A", 1), (" ", 1), ("中", 2), ("，", 2), ("Ａ", 2), ("·", 2), ("①", 2),
                                       ("\u0301", 0), ("ｶ", 1), ("ǹ", 2)])
def test_char_width(ch, width):
    assert char_width(ch) == width


def test_wrap_never_splits_a_hanzi_even_with_an_odd_number_of_columns():
    text = "具有本市户籍的中国公民年满十六周岁"
    lines = wrap(text, 9)
    assert "".join(lines) == text
    assert all(display_width(line) == 8 for line in lines[:-1])


def test_wrap_for_58_and_80_mm():
    text = ("在本区登记常住户口、年满十六周岁的中国公民，应当申请领取居民身份证；"
            "未满十六周岁的，可以由监护人代为申请领取。")
    narrow, wide = wrap(text, PAPER_58.columns), wrap(text, PAPER_80.columns)
    assert max(map(display_width, narrow)) <= 32 and max(map(display_width, wide)) <= 48
    assert len(wide) < len(narrow)
    assert "".join(narrow) == "".join(wide) == text


def test_wrap_keeps_words_and_numbers_whole_and_breaks_at_spaces():
    lines = wrap("Renewal of a resident ID card at window 12, floor 1", 16)
    assert lines == ["Renewal of a", "resident ID card", "at window 12,", "floor 1"]
    assert wrap("取号业务 A0123456789", 14) == ["取号业务", "A0123456789"]


def test_wrap_does_not_start_a_line_with_closing_punctuation():
    lines = wrap("一二三四五六七，八九", 14)
    assert lines == ["一二三四五六", "七，八九"]


def test_wrap_splits_a_word_longer_than_the_line_and_keeps_blank_lines_inside():
    assert wrap("x" * 10, 4) == ["xxxx", "xxxx", "xx"]
    assert wrap("甲\n\n乙\n", 10) == ["甲", "", "乙"]
    assert wrap("", 10) == []


def test_wrap_drops_control_characters():
    assert wrap("张\x1b@三\r", 10) == ["张@三"]  # ESC gone: "@" is only a character now


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(st.sampled_from("中文字，。、ab1 -（）·é"), max_size=80), columns=st.integers(2, 48))
def test_wrap_fits_and_loses_nothing(text, columns):
    lines = wrap(text, columns)
    assert all(display_width(line) <= columns for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_hanging_indents_under_the_text():
    lines = hanging("受理编号：", "SQ20261123000042XYZ", 20)
    assert lines == ["受理编号：SQ20261123", "          000042XYZ"]


def test_paper_by_width():
    assert paper(58) is PAPER_58 and paper(80).columns == 48
    with pytest.raises(ValueError, match="58 or 80"):
        paper(76)


# --- the ID mask -----------------------------------------------------------------------

@pytest.mark.parametrize("number, masked", [
    ("110105194912311234", "110***********1234"),
    ("11010519491231002x", "110***********002X"),
    (" 110105 19491231 1234 ", "110***********1234"),
    ("110105491231123", "110********1123"),  # 15-digit first-generation number
    ("12345678", "123*5678"),
    ("1234567", "*******"),
    ("", ""),
])
def test_mask_id_keeps_the_first_3_and_last_4(number, masked):
    assert mask_id(number) == masked


# --- the slips -------------------------------------------------------------------------

@pytest.mark.parametrize("size", PAPERS, ids=["58mm", "80mm"])
def test_ticket_slip(size):
    data = ticket_slip(TICKET, size)
    elements = check_slip(data, size)
    lines = [e for e in elements if isinstance(e, Line)]
    texts = text_lines(elements)
    assert "".join(texts[:2]).startswith("杭州市上城区市民中心")
    number = next(line for line in lines if line.text == "A012")
    assert (number.width, number.height, number.bold, number.align) == (2, 2, True, "center")
    assert {"户籍业务", "您前面还有 5 人", "预计等候约 15 分钟", "取号时间 2026-11-23 10:02"} <= set(texts)
    assert qr_payloads(elements) == ["https://hall.example/t/8f3a2c"]
    assert any("过号请重新取号" in t for t in texts)
    assert b"\x1c&" + "户籍业务".encode("gb18030") + b"\x1c." in data
    assert data.startswith(b"\x1b@")


def test_ticket_slip_in_english_and_when_nobody_is_ahead():
    from dataclasses import replace

    texts = text_lines(decode(ticket_slip(replace(TICKET, hall="Civic Centre", ahead=0), lang="en")))
    assert "You are next: watch the display" in texts and not any("Estimated" in t for t in texts)
    assert "Issued 2026-11-23 10:02" in texts


@pytest.mark.parametrize("size", PAPERS, ids=["58mm", "80mm"])
def test_application_receipt_masks_the_id(size):
    data = application_receipt(FILED, size)
    elements = check_slip(data, size)
    text = "\n".join(text_lines(elements))
    assert "证件号码：110***********1234" in text
    assert b"110105194912311234" not in data and b"19491231" not in data
    assert "受理编号：SQ20261123000042" in text.replace("\n          ", "")
    assert "办理事项：住房公积金租房提取" in text and "承诺办结：2026-11-30" in text
    assert "提交时间：2026-11-23 10:15" in text
    # The lookup code, printed and in the QR's fragment (never its query): the page reads it.
    assert "查询密码：K7MW-2QXR" in text and "扫码或凭受理编号和查询密码查询办理进度。" in text.replace("\n", "")
    assert qr_payloads(elements) == ["https://hall.example/a/SQ20261123000042#code=K7MW2QXR"]
    assert "身份证号后" not in text
    tracking = next(e for e in elements if isinstance(e, Line) and "SQ2026" in e.text)
    assert tracking.bold


def test_a_receipt_without_a_code_sends_the_citizen_to_the_kiosk():
    """Filed while the server was away: the code is not known yet, so no code and no QR;
    the ID card finds the application at a kiosk once the outbox has sent it."""
    from dataclasses import replace

    elements = check_slip(application_receipt(replace(FILED, tracking_no="P-T01-000042", lookup_code=None)), PAPER_58)
    text = "\n".join(text_lines(elements))
    assert qr_payloads(elements) == [] and "查询密码" not in text
    assert "可凭身份证在自助终端查询办理进度。" in text.replace("\n", "")
    english = "\n".join(text_lines(decode(application_receipt(FILED, lang="en"))))
    assert "Lookup code: K7MW-2QXR" in english and "last 4" not in english


@pytest.mark.parametrize("size", PAPERS, ids=["58mm", "80mm"])
def test_guide_slip_has_every_section_and_a_checklist(items, size):
    item = items[0]
    doc = guide_document(item)
    elements = check_slip(guide_slip(doc, size, printed_at=datetime(2026, 11, 23, 10, 20)), size)
    text = "\n".join(text_lines(elements))
    flat = text.replace("\n", "").replace(" ", "")
    assert doc.title in flat and doc.code in text
    for section in doc.sections:
        assert f"【{section.heading}】" in text
    materials = next(s for s in doc.sections if s.checklist)
    for check in materials.checklist:
        assert f"□{check.text}".replace(" ", "") in flat
    assert item.phone in text and "承诺时限" in text and item.location.split()[0] in text
    assert "打印时间 2026-11-23 10:20" in text
    boxes = [line for line in text_lines(elements) if line.startswith("□ ")]
    assert len(boxes) == len(materials.checklist)


def test_guide_slip_in_english(items):
    doc = guide_document(items[0], "en")
    elements = check_slip(guide_slip(doc), PAPER_58)
    text = "\n".join(text_lines(elements))
    assert "[What to bring]" in text and "[Enquiries]" in text


def test_every_sample_guide_fits_both_papers(items):
    for item in items:
        for size in PAPERS:
            check_slip(guide_slip(guide_document(item), size), size)


# --- characters the printer cannot print -----------------------------------------------

def images(data: bytes) -> list[Image]:
    return [e for e in decode(data) if isinstance(e, Image)]


def test_a_character_beyond_two_byte_gb18030_is_drawn_not_sent_as_text():
    from dataclasses import replace

    data = application_receipt(replace(FILED, item="𠮷"))  # U+20BB7: four bytes in GB18030
    assert "𠮷".encode("gb18030") not in data
    (drawn,) = images(data)
    assert drawn.height == 24 and any(drawn.rows)  # a line of ink instead of the text
    assert not any("𠮷" in line for line in text_lines(decode(data)))


def test_the_applicant_is_masked_on_the_slip():
    from dataclasses import replace

    data = application_receipt(replace(FILED, applicant="王小明"))
    assert "王小明".encode("gb18030") not in data and "王*明".encode("gb18030") in data
    check_slip(data, PAPER_58)


def test_characters_the_printer_lacks_are_drawn():
    gb2312 = SlipBuilder(font=PrinterFont(charset="gb2312")).line("王堃").build()  # 堃 is GBK, not GB2312
    assert len(images(gb2312)) == 1
    assert not images(SlipBuilder().line("王堃").build())
    lacking = SlipBuilder(font=PrinterFont(missing=frozenset("喆"))).line("李喆", bold=True, width=2).build()
    (drawn,) = images(lacking)
    assert drawn.width == 4 * 2 * 12


def test_the_checklist_box_is_printable_gb2312():
    assert PrinterFont(charset="gb2312").prints("□") and not PrinterFont().prints("☐")


# --- the builder refuses what would not print -------------------------------------------

def test_a_line_wider_than_the_paper_is_refused():
    with pytest.raises(ValueError, match="wider than the 32 columns of 58 mm"):
        SlipBuilder().line("中" * 17)
    SlipBuilder(PAPER_80).line("中" * 24)


def test_a_qr_payload_too_long_is_refused():
    with pytest.raises(ValueError, match="holds 1 to 2331 bytes"):
        SlipBuilder().qr("x" * 3000)


def test_control_characters_in_data_do_not_become_commands():
    from dataclasses import replace

    data = ticket_slip(replace(TICKET, service="户籍\x1b@\x1dV\x00业务"))
    assert data.count(b"\x1b@") == 1 and data.count(b"\x1dV") == 1
    assert "户籍@V业务" in text_lines(decode(data))


def test_styles_are_sent_only_when_they_change():
    data = SlipBuilder().init().line("a", bold=True).line("b", bold=True).line("c").build()
    assert data.count(b"\x1bE\x01") == 1 and data.count(b"\x1bE\x00") == 1
    assert [e.bold for e in decode(data) if isinstance(e, Line)] == [True, True, False]


def test_qr_settings_reach_the_printer():
    (qr,) = [e for e in decode(SlipBuilder(PAPER_80).qr("https://x.example/1", level="H").build())
             if isinstance(e, QRCode)]
    assert (qr.payload, qr.module, qr.level, qr.align) == ("https://x.example/1", 8, "H", "center")


def test_the_yen_sign_prints_as_text():
    data = SlipBuilder(PAPER_58).init().line("工本费 ¥20.00").build()
    assert "￥".encode("gb18030") in data and images(data) == []
