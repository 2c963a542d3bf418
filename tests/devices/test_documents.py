"""A4 guides and receipts: a PDF with the Chinese font embedded, text that reads back,
boxes to tick, a QR code that is the payload's, and printing through CUPS's `lp`.

Reading a PDF back needs poppler-utils (pdftotext, pdftoppm): apt-get install poppler-utils.
"""

import re
import shutil
import stat
import subprocess
import zlib
from datetime import date, datetime

import pytest
import qrcode
from PIL import Image

from kiosq.content.catalog import SAMPLE, load_files
from kiosq.content.document import Check, Document, Section, as_text, guide_document
from kiosq.devices.documents import (
    CupsError,
    FontMissingError,
    Receipt,
    guide_pdf,
    mask_id_number,
    mask_name,
    print_pdf,
    receipt_pdf,
    wrap_lines,
)

HALL = "杭州市民中心 24 小时自助服务区"
PRINTED_AT = datetime(2026, 11, 23, 10, 5)
RECEIPT = {"tracking_no": "SQ20261123-0042", "item": "住房公积金租房提取", "applicant_name": "王小明",
           "id_number": "110101199003071234", "filed_at": datetime(2026, 11, 23, 10, 2),
           "promised_date": date(2026, 11, 30), "follow_url": "https://hall.example.cn/a/SQ20261123-0042",
           "status": "received"}  # as the API answers: keys the receipt does not print are ignored

# The Makefile installs poppler-utils; its absence is a failure here, not a skip.
poppler = pytest.mark.usefixtures("poppler_installed")


@pytest.fixture
def poppler_installed():
    missing = [tool for tool in ("pdftotext", "pdftoppm") if shutil.which(tool) is None]
    assert not missing, f"{', '.join(missing)} missing: apt-get install poppler-utils (make test does it)"


@pytest.fixture(scope="module")
def items():
    return load_files(SAMPLE)


@pytest.fixture(scope="module")
def longest(items):
    """The sample item with the most to print (往来港澳通行证及签注签发: long fee lines)."""
    return guide_document(max(items, key=lambda item: len(as_text(guide_document(item)))))


@pytest.fixture(scope="module")
def longest_pdf(longest):
    return guide_pdf(longest, HALL, PRINTED_AT)


def pdf_text(pdf: bytes, tmp_path, *options: str) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", *options, str(path), "-"], capture_output=True, text=True, check=True).stdout


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def page_streams(pdf: bytes) -> list[str]:
    """The decompressed page content streams (the ones that draw text)."""
    streams = []
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            data = zlib.decompress(raw)
        except zlib.error:
            continue
        if b" Tf " in data:
            streams.append(data.decode("latin-1"))
    return streams


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def test_a_guide_is_a_pdf_with_the_chinese_font_embedded(longest_pdf):
    assert longest_pdf.startswith(b"%PDF-")
    assert b"/FontFile2" in longest_pdf
    assert re.search(rb"/BaseFont /[A-Z]{6}\+WenQuanYiMicroHei\b", longest_pdf)  # a subset, not the 5 MB file
    assert len(longest_pdf) < 200_000


def test_the_longest_sample_guide_takes_two_pages_and_the_shortest_one(items, longest_pdf):
    assert page_count(longest_pdf) == 2
    shortest = guide_document(min(items, key=lambda item: len(as_text(guide_document(item)))))
    assert page_count(guide_pdf(shortest, HALL, PRINTED_AT)) == 1


@poppler
def test_every_page_ends_in_the_hall_the_print_time_and_its_number(longest_pdf, tmp_path):
    pages = pdf_text(longest_pdf, tmp_path).split("\f")[:-1]
    assert len(pages) == 2
    for number, page in enumerate(pages, 1):
        assert squeezed(f"{HALL} 打印时间 2026-11-23 10:05") in squeezed(page)
        assert squeezed(page).endswith(f"第{number}/2页")


@poppler
def test_the_guide_reads_back_title_sections_and_checklist(longest, longest_pdf, tmp_path):
    text = squeezed(pdf_text(longest_pdf, tmp_path))
    assert text.startswith(squeezed(longest.title + longest.subtitle + "事项编码" + longest.code))
    for section in longest.sections:
        assert squeezed(section.heading) in text
        for line in section.lines:
            assert squeezed(line) in text  # wrapped over lines, but nothing lost
        for check in section.checklist:
            assert squeezed(check.text) in text and squeezed(check.note) in text


def test_each_material_gets_a_box_to_tick(longest, longest_pdf):
    checks = sum(len(section.checklist) for section in longest.sections)
    boxes = sum(len(re.findall(r"[\d.]+ [\d.]+ [\d.]+ -[\d.]+ re S", stream)) for stream in page_streams(longest_pdf))
    assert checks == 5 and boxes == checks


@poppler
def test_a_duck_typed_document_in_english(tmp_path):
    doc = Document("Renewal of resident ID card", "Item guide · Public Security Bureau", "GA-SFZ-001",
                   [Section("What to bring", checklist=[Check("Household register (original, 1 copy)", "")])],
                   lang="en")
    text = pdf_text(guide_pdf(doc, "Hangzhou Citizen Centre", PRINTED_AT), tmp_path, "-layout")
    assert "Renewal of resident ID card" in text and "Household register (original, 1 copy)" in text
    assert "Item code GA-SFZ-001" in text and "Page 1 / 1" in text


@poppler
def test_page_one_renders_with_ink_where_the_title_is(longest_pdf, tmp_path):
    (tmp_path / "guide.pdf").write_bytes(longest_pdf)
    subprocess.run(["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-png", str(tmp_path / "guide.pdf"),
                    str(tmp_path / "page")], check=True)
    with Image.open(tmp_path / "page-1.png") as png:
        page = png.convert("L")
    assert page.size == (414, 585)  # A4 at 50 dpi
    title = page.crop((39, 30, 300, 60))  # 20 mm from the left, just under the top margin
    assert title.getextrema()[0] < 80  # black strokes: the glyphs were drawn, not left out


def test_a_missing_font_says_which_package_to_install(longest, tmp_path):
    with pytest.raises(FontMissingError, match="apt-get install fonts-wqy-microhei"):
        guide_pdf(longest, HALL, PRINTED_AT, font=tmp_path / "none.ttc")


@pytest.mark.parametrize("text, lines", [
    ("一二三四五六七八九十，十一", ["一二三四五六七八九", "十，十一"]),  # no line starts with "，"
    ("一二三四五六七八九（十）", ["一二三四五六七八九", "（十）"]),  # none ends with "（"
    ("一二三四五六七八九十十一", ["一二三四五六七八九十", "十一"]),  # any two characters may part
    ("promised 7 working days", ["promised 7", "working", "days"]),  # English words stay whole
    ("https://hall.example.cn/a/1", ["https://ha", "ll.example", ".cn/a/1"]),  # wider than a line: cut
    ("", [""]),
])
def test_lines_break_the_chinese_way(text, lines):
    assert wrap_lines(text, 10, len) == lines


@pytest.mark.parametrize("name, masked", [("王小明", "王*明"), ("欧阳小明", "欧**明"), ("王明", "王*"), ("王", "王*")])
def test_names_are_masked(name, masked):
    assert mask_name(name) == masked


def test_id_numbers_keep_the_first_three_and_the_last_four():
    assert mask_id_number("110101199003071234") == "110***********1234"
    assert mask_id_number("11010119900307123X") == "110***********123X"
    assert mask_id_number("1234567") == "*******"


@poppler
def test_a_receipt_masks_the_applicant(tmp_path):
    pdf = receipt_pdf(RECEIPT, HALL, PRINTED_AT)
    assert pdf.startswith(b"%PDF-") and b"/FontFile2" in pdf and page_count(pdf) == 1
    text = squeezed(pdf_text(pdf, tmp_path))
    for shown in ("受理回执", "受理编号SQ20261123-0042", "办理事项住房公积金租房提取", "申请人王*明",
                  "证件号码110***********1234", "申请时间2026-11-23 10:02", "承诺办结2026-11-30",
                  "https://hall.example.cn/a/SQ20261123-0042", "第1/1页"):
        assert squeezed(shown) in text
    assert "王小明" not in text and "19900307" not in text
    assert receipt_pdf(Receipt(**{k: v for k, v in RECEIPT.items() if k != "status"}), HALL, PRINTED_AT) == pdf


def test_the_receipts_qr_code_is_the_follow_url():
    code = qrcode.QRCode(border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(RECEIPT["follow_url"])
    code.make(fit=True)
    expected = code.get_matrix()
    module = 40 / 25.4 * 72 / len(expected)  # the code is 40 mm wide, quiet zone included
    fills = [tuple(map(float, m)) for stream in page_streams(receipt_pdf(RECEIPT, HALL, PRINTED_AT))
             for m in re.findall(r"([\d.]+) ([\d.]+) ([\d.]+) -([\d.]+) re f", stream)]
    left, top = min(x for x, _, _, _ in fills), max(y for _, y, _, _ in fills)  # the finder's corner: module 4, 4
    drawn = [[False] * len(expected) for _ in expected]
    for x, y, width, _ in fills:
        row, col = round((top - y) / module) + 4, round((x - left) / module) + 4
        for c in range(col, col + round(width / module)):
            drawn[row][c] = True
    assert drawn == expected


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    """A PATH with nothing on it but what the test puts there."""
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", str(path))
    return path


def fake_lp(bin_dir, body: str) -> None:
    lp = bin_dir / "lp"
    lp.write_text("#!/bin/sh\nPATH=/usr/bin:/bin\n" + body)
    lp.chmod(lp.stat().st_mode | stat.S_IXUSR)


def test_printing_without_cups_says_what_to_install(bin_dir):
    with pytest.raises(CupsError, match=r"CUPS is not installed: .*apt-get install cups cups-client.*lpadmin"):
        print_pdf(b"%PDF-1.4", "Hall_A4", "guide")


def test_printing_returns_the_job_id_and_hands_lp_the_pdf(bin_dir, tmp_path, longest_pdf):
    fake_lp(bin_dir, f'echo "$@" > {tmp_path}/args\nfor last; do :; done\ncp "$last" {tmp_path}/received.pdf\n'
                     'echo "request id is A4-17 (1 file(s))"\n')
    assert print_pdf(longest_pdf, "A4", "往来港澳通行证及签注签发") == "A4-17"
    assert (tmp_path / "received.pdf").read_bytes() == longest_pdf
    assert (tmp_path / "args").read_text().startswith("-d A4 -t 往来港澳通行证及签注签发 -o media=A4 ")


def test_a_queue_that_does_not_exist_is_quoted(bin_dir):
    fake_lp(bin_dir, 'echo "lp: Error - The printer or class does not exist." >&2\nexit 1\n')
    with pytest.raises(CupsError, match=r"queue Hall_A4: 'lp: Error - The printer or class does not exist\.'; "
                                        r"add the queue with lpadmin -p Hall_A4"):
        print_pdf(b"%PDF-1.4", "Hall_A4", "guide")


def test_a_stopped_scheduler_says_to_start_cups(bin_dir):
    fake_lp(bin_dir, 'echo "lp: Error - Scheduler not responding." >&2\nexit 1\n')
    with pytest.raises(CupsError, match="Scheduler not responding.*systemctl enable --now cups"):
        print_pdf(b"%PDF-1.4", "Hall_A4", "guide")


def test_lp_that_answers_without_a_job_id_is_an_error(bin_dir):
    fake_lp(bin_dir, 'echo "something else"\n')
    with pytest.raises(CupsError, match="gave no job id: 'something else'"):
        print_pdf(b"%PDF-1.4", "Hall_A4", "guide")
