"""The decoder: our slips and python-escpos' own output back to lines, QR codes and cuts;
unknown and truncated commands; random bytes never raise; the PNG preview shows Chinese."""

from datetime import datetime

import pytest
from escpos.printer import Dummy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

import kiosq.devices.escpos_preview as escpos_preview
from kiosq.devices.escpos_decode import (
    Barcode,
    Cut,
    Image,
    Line,
    QRCode,
    decode,
    qr_payloads,
    split_jobs,
    text_lines,
)
from kiosq.devices.escpos_preview import preview_png
from kiosq.devices.escpos_tokens import tokenize
from kiosq.devices.receipts import PAPER_80, QueueTicket, SlipBuilder, ticket_slip
from kiosq.devices.slip_text import render_text

TICKET = QueueTicket(hall="杭州市民中心", number="B007", service="公积金业务", ahead=2, eta_minutes=6,
                     issued_at=datetime(2026, 11, 23, 9, 41), follow_url="https://hall.example/t/b007")
ESC, GS, FS = b"\x1b", b"\x1d", b"\x1c"


def lines(data: bytes) -> list[Line]:
    return [e for e in decode(data) if isinstance(e, Line)]


def test_styles_sizes_and_alignment():
    data = (ESC + b"@" + ESC + b"a\x01" + ESC + b"E\x01" + GS + b"!\x11" + b"BIG\n" + ESC + b"E\x00" + GS + b"!\x00"
            + ESC + b"a\x02" + b"right\n" + ESC + b"!\x30" + b"wide tall\n")
    big, right, both = lines(data)
    assert (big.text, big.align, big.bold, big.width, big.height, big.columns) == ("BIG", "center", True, 2, 2, 6)
    assert (right.text, right.align, right.bold) == ("right", "right", False)
    assert (both.width, both.height) == (2, 2)


def test_chinese_mode_decodes_gb18030_and_counts_two_columns_per_hanzi():
    data = FS + b"&" + "号码 A1".encode("gb18030") + FS + b"." + b"\n"
    (line,) = lines(data)
    assert line.text == "号码 A1" and line.columns == 7


def test_styles_change_within_a_line():
    data = ESC + b"E\x01" + b"bold" + ESC + b"E\x00" + b" plain\n"
    (line,) = lines(data)
    assert [(s.text, s.bold) for s in line.spans] == [("bold", True), (" plain", False)]
    assert not line.bold


def test_alignment_counts_from_the_start_of_a_line():
    (line,) = lines(b"left " + ESC + b"a\x01" + b"still left\n")
    assert line.align == "left"


def test_python_escpos_output_decodes():
    printer = Dummy()
    printer.set(align="center", bold=True, double_height=True, double_width=True)
    printer.text("Hello\n")
    printer.set_with_default()
    printer.text("plain\n")
    printer.qr("payload-1", native=True)
    printer.cut()
    elements = decode(printer.output)
    hello, plain = lines(printer.output)[:2]
    assert (hello.text, hello.align, hello.bold, hello.width, hello.height) == ("Hello", "center", True, 2, 2)
    assert (plain.text, plain.bold, plain.align) == ("plain", False, "left")
    assert qr_payloads(elements) == ["payload-1"] and elements[-1] == Cut(partial=False)


def test_feeds_images_and_barcodes():
    image = GS + b"v0\x00" + b"\x02\x00\x03\x00" + b"\xff\x00\x0f\xf0\x00\x00"
    barcode = GS + b"k\x04CODE39\x00" + GS + b"k\x49\x05AB123"
    elements = decode(b"x\n" + ESC + b"d\x03" + image + barcode + GS + b"V\x41\x05")
    assert text_lines(elements) == ["x", "", "", ""]  # ESC d 3 after a line feed: three blank lines
    assert elements[4] == Image(16, 3, b"\xff\x00\x0f\xf0\x00\x00", "left")
    assert [e.data for e in elements if isinstance(e, Barcode)] == ["CODE39", "AB123"]
    assert elements[-1] == Cut(partial=False)


def test_unknown_commands_are_skipped():
    data = ESC + b"\x7f" + b"after\n" + GS + b"\x01" + b"x\n" + b"\x07bell\n" + GS + b"(Z\x02\x00ab" + b"ok\n"
    assert text_lines(decode(data)) == ["after", "x", "bell", "ok"]


def test_esc_at_clears_the_buffer_and_styles():
    data = ESC + b"E\x01" + b"lost" + ESC + b"@" + b"kept\n"
    (line,) = lines(data)
    assert (line.text, line.bold) == ("kept", False)


def test_text_without_a_final_line_feed_is_shown():
    assert text_lines(decode(b"one\ntwo")) == ["one", "two"]


def test_every_truncation_of_a_slip_decodes_to_a_prefix_of_it():
    data = ticket_slip(TICKET)
    full = text_lines(decode(data))
    for end in range(len(data)):
        tokens, complete = tokenize(data[:end])
        assert complete <= end
        partial = text_lines(decode(data[:end]))
        assert partial[:-1] == full[:max(0, len(partial) - 1)]  # all but the line being written


def test_tokenizing_in_chunks_gives_the_same_tokens():
    data = ticket_slip(TICKET) * 2
    whole, _ = tokenize(data)
    chunked, start = [], 0
    for end in range(0, len(data) + 7, 7):
        found, start = tokenize(data[:end], start)
        chunked += found
    assert [(t.name, t.args) for t in merge_text(chunked)] == [(t.name, t.args) for t in merge_text(whole)]


def merge_text(tokens):
    """Text runs split by a chunk boundary, joined (the commands must be identical)."""
    merged = []
    for t in tokens:
        if merged and t.name == "text" and merged[-1].name == "text" and merged[-1].end == t.start:
            merged[-1] = type(t)("text", merged[-1].start, t.end, merged[-1].args + t.args)
        else:
            merged.append(t)
    return merged


def test_split_jobs_at_cuts():
    data = ticket_slip(TICKET) + ticket_slip(TICKET) + b"unfinished"
    jobs = split_jobs(decode(data))
    assert len(jobs) == 3 and all(isinstance(job[-1], Cut) for job in jobs[:2])
    assert text_lines(jobs[2]) == ["unfinished"]


# --- fuzzing ---------------------------------------------------------------------------

PIECES = [ESC, GS, FS, b"\x10\x04", b"\x10\x14", b"\n", GS + b"(k", GS + b"v0", GS + b"k", GS + b"V", ESC + b"&",
          ESC + b"*", FS + b"q", GS + b"8L", ESC + b"D", b"\x1c&", "中文".encode("gb18030"), b"\x81\x30", b"\xff"]
escpos_like = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=6)), max_size=40).map(b"".join)


@settings(max_examples=400, deadline=1000, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=300), escpos_like))
def test_random_bytes_never_raise(data):
    tokens, complete = tokenize(data)
    assert all(a.end == b.start for a, b in zip(tokens, tokens[1:]))
    assert (tokens[-1].end if tokens else 0) == complete
    elements = decode(data)
    for element in elements:
        assert isinstance(element, (Line, QRCode, Image, Barcode, Cut))


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=escpos_like)
def test_random_bytes_can_be_previewed(data, tmp_path_factory):
    path = preview_png(decode(data), tmp_path_factory.mktemp("fuzz") / "p.png")
    assert path.stat().st_size > 0


# --- the preview -----------------------------------------------------------------------

def test_chinese_is_drawn_with_real_glyphs_not_tofu():
    missing = render_text("\U000f0000").tobytes()  # a character no font has: the tofu box
    for ch in "号码业务候窗□":
        assert render_text(ch).tobytes() != missing, ch


def test_preview_of_a_ticket(tmp_path):
    path = preview_png(decode(ticket_slip(TICKET)), tmp_path / "ticket.png")
    with PILImage.open(path) as img:
        assert img.width == 384 + 24 and img.height > 500
        assert img.convert("L").getextrema()[0] == 0  # ink


def test_preview_width_follows_the_paper(tmp_path):
    path = preview_png(decode(ticket_slip(TICKET, PAPER_80)), tmp_path / "ticket.png", PAPER_80.dots)
    with PILImage.open(path) as img:
        assert img.width == 576 + 24


def test_preview_without_the_qrcode_package_draws_a_box(tmp_path, monkeypatch):
    qr_only = decode(SlipBuilder().qr("https://hall.example/t/1").build())
    with_code = preview_png(qr_only, tmp_path / "code.png")
    monkeypatch.setattr(escpos_preview, "_qrcode", None)
    boxed = preview_png(qr_only, tmp_path / "box.png")
    with PILImage.open(with_code) as a, PILImage.open(boxed) as b:
        assert a.tobytes() != b.tobytes()
        assert b.height >= 29 * 6


@pytest.mark.parametrize("scale, size", [(0, (16, 3)), (3, (32, 6))])
def test_preview_draws_raster_images_at_their_scale(tmp_path, scale, size):
    data = GS + b"v0" + bytes([scale]) + b"\x02\x00\x03\x00" + b"\xff\xff" * 3
    path = preview_png(decode(data), tmp_path / "img.png", 64)
    with PILImage.open(path) as img:
        box = img.convert("L").point(lambda v: 255 if v < 128 else 0).getbbox()
        assert (box[2] - box[0], box[3] - box[1]) == size
