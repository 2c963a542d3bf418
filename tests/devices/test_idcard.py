"""ID card reader: frames, the card's fields, and a CardReader/CardPoller talking to the
simulator over a real pty — with corrupt, short and garbled replies and an unplugged reader."""

import contextlib
import dataclasses
import io
import logging
import os
import queue
import threading
import time
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosq.base.idnumber import id_check_digit, id_number_problem, id_number_valid
from kiosq.devices.idcard import (
    FIND,
    NATIONS,
    NO_CARD,
    OK,
    PREAMBLE,
    READ_BASE,
    READ_FAILED,
    SELECT,
    SEXES,
    STATUS,
    STATUS_TEXT,
    CardDataError,
    CardPoller,
    CardRead,
    CardReader,
    CardRemoved,
    CardUnreadable,
    ChecksumError,
    FrameDecoder,
    FrameError,
    Identity,
    Placement,
    ReaderBack,
    ReaderLost,
    ReaderProblem,
    ReaderStatusError,
    ReaderTimeout,
    ReaderUnavailable,
    build_command,
    build_reply,
    parse_base_info,
    parse_frame,
    parse_identity,
    parse_reply,
)
from kiosq.devices.sim import idcard as sim_module
from kiosq.devices.sim.idcard import (
    NOISE,
    TEST_IDENTITIES,
    SimulatedCardReader,
    encode_base_info,
    encode_text,
    fictitious_photo,
)
from kiosq.devices.uri import DeviceURIError

ONE, TWO, THREE = TEST_IDENTITIES
WAIT = 10.0  # generous bound for anything a thread should do "soon"; never a timed assertion


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


# --- frames -------------------------------------------------------------------------------------

def test_commands_are_the_documented_bytes():
    assert build_command(FIND) == bytes.fromhex("AA AA AA 96 69 00 03 20 01 22")
    assert build_command(STATUS) == bytes.fromhex("AA AA AA 96 69 00 03 11 FF ED")
    assert build_command(SELECT) == bytes.fromhex("AA AA AA 96 69 00 03 20 02 21")
    assert build_command(READ_BASE) == bytes.fromhex("AA AA AA 96 69 00 03 30 01 32")


def test_a_reply_parses_into_status_and_data():
    frame = build_reply(0x9F, bytes(4))
    assert frame == bytes.fromhex("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")
    reply = parse_reply(frame)
    assert (reply.sw1, reply.sw2, reply.status, reply.data, reply.meaning) == (0, 0, 0x9F, bytes(4), "card found")
    assert parse_reply(build_reply(READ_FAILED)).meaning == STATUS_TEXT[0x41]
    assert parse_reply(build_reply(0x77)).meaning == "unknown status 0x77"


@pytest.mark.parametrize("frame, message", [
    (b"", "preamble"),
    (bytes.fromhex("AA AA AA 96 68 00 03 20 01 22"), "preamble"),
    (bytes.fromhex("AA AA AA 96 69 00"), "short frame"),
    (bytes.fromhex("AA AA AA 96 69 00 02 20 22"), "bad frame length 2"),
    (bytes.fromhex("AA AA AA 96 69 FF FF 20 01 22"), "bad frame length 65535"),
    (bytes.fromhex("AA AA AA 96 69 00 03 20 01"), "got 9"),
    (bytes.fromhex("AA AA AA 96 69 00 03 20 01 22 00"), "got 11"),
    (bytes.fromhex("AA AA AA 96 69 00 03 20 01 23"), "bad checksum: frame says 0x23, its bytes give 0x22"),
])
def test_bad_frames_raise_frame_error(frame, message):
    with pytest.raises(FrameError, match=message):
        parse_frame(frame)


def test_a_reply_needs_three_status_bytes():
    with pytest.raises(FrameError, match="no SW1 SW2 SW3"):
        parse_reply(build_command(FIND))


def test_decoder_joins_pieces_and_skips_noise_before_the_preamble():
    frame = build_reply(OK, encode_base_info(ONE))
    decoder = FrameDecoder()
    got = []
    for byte in b"\x00\x55\xaa" + frame + frame[:9]:
        decoder.feed(bytes([byte]))
        if (f := decoder.pop()) is not None:
            got.append(f)
    assert got == [frame] and decoder.skipped == 3 and decoder.pending == 9
    assert decoder.expected() == len(frame)


def test_decoder_resynchronises_after_a_false_preamble():
    frame = build_reply(0x9F, bytes(4))
    decoder = FrameDecoder()
    decoder.feed(NOISE + frame)
    with pytest.raises(ChecksumError):
        decoder.pop()
    assert decoder.pop() == frame
    assert decoder.pop() is None and decoder.pending == 0


def test_decoder_salvages_a_frame_behind_noise_that_claims_a_long_length():
    frame = build_reply(0x9F, bytes(4))
    decoder = FrameDecoder()
    decoder.feed(PREAMBLE + b"\x04\x00" + frame)  # "1,024 bytes follow": a lie
    assert decoder.pop() is None
    assert decoder.salvage() == frame


# --- ID numbers and fields -----------------------------------------------------------------------

@pytest.mark.parametrize("number", [
    "11010519491231002X",    # the example in GB 11643-1999 itself
    "999901199001010010", "999902198506150029", "99990319601231019X",  # the simulator's fictitious cards
])
def test_valid_id_numbers(number):
    assert id_check_digit(number[:17]) == number[17]
    assert id_number_valid(number) and id_number_problem(number) is None


def test_every_field_of_a_card_is_parsed():
    identity = parse_base_info(encode_base_info(THREE))
    assert (identity.name, identity.sex, identity.sex_code, identity.nation, identity.nation_code) == \
        ("测试三", "男", "1", "回", "03")
    assert identity.birth == date(1960, 12, 31)
    assert identity.address == "虚构省示例市演示区测试大道一百二十三号虚构花园小区四号楼五单元六零一室"
    assert identity.id_number == "99990319601231019X"
    assert identity.authority == "示例市公安局演示分局"
    assert identity.valid_from == date(2010, 12, 31)
    assert identity.valid_to is None and identity.long_term
    assert identity.photo == fictitious_photo("99990319601231019X") and len(identity.photo) == 1024
    assert identity.as_dict()["valid_to"] == "长期" and identity.as_dict()["birth"] == "1960-12-31"
    two = parse_base_info(encode_base_info(TWO))
    assert (two.sex, two.nation, two.valid_to, two.long_term) == ("女", "蒙古", date(2036, 6, 15), False)
    assert "photo_wlt_base64" in two.as_dict(include_photo=True) and "photo_wlt_base64" not in two.as_dict()


def test_the_text_block_layout_is_utf16_padded_with_spaces():
    text = encode_text(ONE)
    assert len(text) == 256
    assert text[:30] == "测试一".encode("utf-16-le") + " ".encode("utf-16-le") * 12
    assert text[30:32] == b"1\x00" and text[32:36] == "01".encode("utf-16-le")


def test_nation_and_sex_tables():
    assert [code for code in NATIONS][:56] == [f"{n:02d}" for n in range(1, 57)]
    assert len(NATIONS) == 58 and NATIONS["97"] == "其他" and NATIONS["98"] == "外国血统中国籍人士"
    assert (NATIONS["01"], NATIONS["05"], NATIONS["29"], NATIONS["56"]) == ("汉", "维吾尔", "柯尔克孜", "基诺")
    assert len(set(NATIONS.values())) == 58
    assert SEXES == {"0": "未知", "1": "男", "2": "女", "9": "未说明"}
    for code, sex in SEXES.items():
        assert parse_identity(encode_text(dataclasses.replace(ONE, sex_code=code))).sex == sex


def _with(identity: Identity, **changes) -> bytes:
    return encode_text(dataclasses.replace(identity, **changes))


@pytest.mark.parametrize("text, field", [
    (_with(ONE, sex_code="3"), "sex field"),
    (_with(ONE, nation_code="57"), "nation field"),
    (_with(ONE, nation_code="00"), "nation field"),
    (_with(ONE, id_number="999901199001010011"), "check digit is wrong"),
    (_with(ONE, id_number="999901199001010"), "17 digits"),
    (_with(ONE, birth=date(1990, 1, 2)), "disagree on the birth date"),
    (_with(ONE, name=""), "name field is empty"),
    (_with(ONE, address=" "), "address field is empty"),
    (_with(ONE, valid_to=date(2019, 1, 1)), "ends before it begins"),
    (encode_text(ONE)[:36] + "19901301".encode("utf-16-le") + encode_text(ONE)[52:], "birth field is not a date"),
    (encode_text(ONE)[:-36] + "\ud800".encode("utf-16-le", "surrogatepass") * 18, "reserved field is not UCS-2"),
    (encode_text(ONE)[:255], "255 bytes, not 256"),
])
def test_bad_fields_are_errors_that_name_the_field_not_its_value(text, field):
    with pytest.raises(CardDataError, match=field) as caught:
        parse_identity(text)
    for secret in ("测试一", "999901199001010", "虚构省"):
        assert secret not in str(caught.value)


def test_base_info_lengths_must_add_up():
    data = encode_base_info(ONE)
    with pytest.raises(CardDataError, match="do not add up"):
        parse_base_info(data[:-1])
    with pytest.raises(CardDataError, match="no text and photo lengths"):
        parse_base_info(b"\x01")


def test_identity_repr_masks_personal_data():
    for identity in TEST_IDENTITIES:
        shown = " ".join([repr(identity), str(identity), f"{identity}", repr(CardRead(identity)),
                          str([identity])])
        assert "测*" in shown and identity.id_number[:3] + "*" * 11 + identity.id_number[-4:] in shown
        for secret in _secrets(identity):
            assert secret not in shown
    assert repr(ONE) == "Identity(name='测*一', id_number='999***********0010', …)"


def _secrets(identity: Identity) -> list[str]:
    return [identity.name, identity.id_number, identity.id_number[3:14], identity.address, identity.address[:6],
            identity.birth.isoformat(), identity.birth.strftime("%Y%m%d")]


# --- fuzzing ----------------------------------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=timedelta(seconds=1), database=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_frame_parsers_raise_only_frame_error(data):
    for parse in (parse_frame, parse_reply):
        with contextlib.suppress(FrameError):
            parse(data)


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=20), st.booleans())
def test_fuzz_decoder_never_hangs_or_raises_anything_else(chunks, with_frame):
    frame = build_reply(0x9F, bytes(4))
    decoder = FrameDecoder()
    found = []
    for chunk in chunks + ([frame] if with_frame else []):
        decoder.feed(chunk)
        for _ in range(10_000):  # bounded: every error drops a byte, every frame its bytes
            try:
                got = decoder.pop()
            except FrameError:
                continue
            if got is None:
                break
            found.append(parse_reply(got))
        else:
            raise AssertionError("the decoder did not settle")
    assert all(isinstance(r.status, int) for r in found)
    decoder.salvage()  # terminates, raising nothing
    assert decoder.pending == 0


@FUZZ
@given(st.binary(min_size=0, max_size=1400))
def test_fuzz_card_data_raises_only_card_data_error(data):
    for parse in (parse_base_info, parse_identity):
        with contextlib.suppress(CardDataError):
            parse(data)


@FUZZ
@given(st.integers(min_value=0, max_value=2 + 1288 - 1), st.integers(min_value=1, max_value=255))
def test_fuzz_a_flipped_byte_in_a_card_reply_is_caught(position, flip):
    frame = bytearray(build_reply(OK, encode_base_info(ONE)))
    frame[5 + position] ^= flip  # anywhere after the preamble, checksum included
    with pytest.raises(FrameError):
        parse_reply(bytes(frame))


# --- the reader over a real pty ----------------------------------------------------------------------

@pytest.fixture
def sim(tmp_path):
    with SimulatedCardReader(tmp_path / "ttyIDCARD") as device:
        yield device


@pytest.fixture
def reader(sim):
    with CardReader(sim.uri, timeout=0.5) as r:
        yield r


def test_find_select_and_read_a_card(sim, reader):
    reader.status()
    assert reader.find() is False and reader.select() is False
    with pytest.raises(ReaderStatusError, match="read card failed with status 0x41") as caught:
        reader.read()
    assert caught.value.status == READ_FAILED
    for identity in TEST_IDENTITIES:
        sim.place(identity)
        assert reader.find() and reader.select()
        got = reader.read()
        assert got == identity and got.as_dict(include_photo=True) == identity.as_dict(include_photo=True)
    assert reader.read_card() == THREE
    sim.remove()
    assert reader.read_card() is None
    assert sim.count(READ_BASE) == 5


def test_a_corrupt_checksum_is_reported_and_the_next_command_works(sim, reader):
    sim.place(ONE)
    sim.corrupt_next_reply(READ_BASE)
    assert reader.find() and reader.select()
    with pytest.raises(FrameError, match="bad checksum"):
        reader.read()
    assert reader.read_card() == ONE


def test_a_short_reply_is_reported_and_the_next_command_works(sim, reader):
    sim.place(TWO)
    sim.short_next_reply(READ_BASE)
    with pytest.raises(FrameError, match=r"short frame .*: 647 of 1295 bytes came within 0.5 s"):
        reader.read_card()
    sim.short_next_reply(FIND)
    with pytest.raises(FrameError, match="short frame"):
        reader.find()
    assert reader.read_card() == TWO


def test_noise_before_a_reply_is_skipped_and_logged(sim, reader, caplog):
    sim.place(ONE)
    sim.garble_next_reply(READ_BASE)
    with caplog.at_level(logging.INFO, logger="kiosq.devices.idcard"):
        assert reader.read_card() == ONE
    assert "bad checksum" in caplog.text and "skipped 15 stray bytes before the reply" in caplog.text


def test_a_reader_replugged_behind_an_open_port_is_reported_as_gone(sim):
    with CardReader(sim.uri, timeout=0.2) as reader:
        sim.unplug()
        sim.replug()  # a new pty at the same path; this reader still holds the old, dead one
        with pytest.raises(ReaderUnavailable, match="went away"):
            reader.find()
        reader.open()
        assert reader.find() is False


def test_a_false_start_is_waited_out_and_the_reply_behind_it_found(sim, reader, caplog):
    sim.place(ONE)
    sim.false_start_next_reply(FIND)
    with caplog.at_level(logging.WARNING, logger="kiosq.devices.idcard"):
        assert reader.find()
    assert "skipped 7 stray bytes that looked like a frame" in caplog.text
    assert reader.read_card() == ONE


def test_silence_is_a_timeout_that_says_what_to_check():
    master, slave = os.openpty()  # a port with nothing behind it that answers
    try:
        with CardReader(f"serial:{os.ttyname(slave)}", timeout=0.2) as silent, \
                pytest.raises(ReaderTimeout, match="did not answer within 0.2 s; check that it is powered"):
            silent.status()
    finally:
        os.close(master)
        os.close(slave)


def test_a_reader_unplugged_mid_read_is_reported_and_works_again_when_back(sim, reader):
    sim.place(ONE)
    sim.unplug_mid_reply(READ_BASE)
    with pytest.raises(ReaderUnavailable, match=r"ID card reader on .*ttyIDCARD went away .*check its cable"):
        reader.read_card()
    assert not reader.is_open and not sim.plugged
    with pytest.raises(ReaderUnavailable, match="is not open"):
        reader.find()
    with pytest.raises(ReaderUnavailable, match=r"cannot open the ID card reader on .*ttyIDCARD: .*plugged in"):
        reader.open()
    sim.replug()
    reader.open()
    assert reader.read_card() == ONE


def test_uris_that_cannot_be_an_id_card_reader(tmp_path):
    with pytest.raises(DeviceURIError, match="an ID card reader must be on a serial port"):
        CardReader("tcp:10.0.0.5:9100")
    reader = CardReader(f"serial:{tmp_path}/nothing")
    assert reader.baudrate == 115200
    with pytest.raises(ReaderUnavailable, match="cannot open the ID card reader on .*/nothing.*group dialout"):
        reader.open()


# --- polling -----------------------------------------------------------------------------------------------

class Watch:
    """Runs CardPoller.poll() in a thread and hands its events to the test."""

    def __init__(self, poller: CardPoller) -> None:
        self.poller = poller
        self.events: queue.Queue = queue.Queue()
        self.seen: list = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.poller.poll():
                self.events.put(event)
        except Exception as e:  # handed to the test
            self.events.put(e)

    def until(self, kind: type) -> list:
        """Events up to and including the first of `kind`."""
        got = []
        while True:
            event = self.events.get(timeout=WAIT)
            if isinstance(event, Exception):
                raise event
            got.append(event)
            self.seen.append(event)
            if isinstance(event, kind):
                return got

    def drain(self) -> list:
        """Events so far that the test has not taken."""
        got = []
        while not self.events.empty():
            got.append(self.events.get_nowait())
        self.seen += got
        return got

    def stop(self) -> None:
        self.poller.stop()
        self.thread.join(timeout=WAIT)
        assert not self.thread.is_alive()


@pytest.fixture
def watch(sim):
    watches = []

    def start(**options) -> Watch:
        chosen = dict(interval=0.005, backoff=(0.01, 0.05)) | options
        w = Watch(CardPoller(CardReader(sim.uri, timeout=0.3), **chosen))
        watches.append(w)
        return w

    yield start
    for w in watches:
        w.stop()


def polls_later(sim, count: int = 15) -> None:
    """Let the poller ask `count` more times whether a card is there."""
    start = sim.count(FIND)
    wait_for(lambda: sim.count(FIND) >= start + count, f"{count} more polls")


def test_one_card_read_per_placement_and_one_removal(sim, watch):
    w = watch()
    polls_later(sim)
    assert w.drain() == []
    sim.place(ONE)
    assert w.until(CardRead) == [CardRead(ONE)]
    polls_later(sim)
    assert w.drain() == []  # still on the reader: no second read
    assert sim.count(READ_BASE) == 1
    sim.remove()
    assert w.until(CardRemoved) == [CardRemoved()]
    polls_later(sim)
    sim.place(TWO)
    assert w.until(CardRead) == [CardRead(TWO)]
    sim.remove()
    assert w.until(CardRemoved) == [CardRemoved()]
    polls_later(sim)
    assert w.drain() == []


def test_a_reader_that_misses_a_card_right_after_reading_it_reports_no_removal(tmp_path):
    with SimulatedCardReader(tmp_path / "quirky", miss_after_read=True) as sim:
        w = Watch(CardPoller(CardReader(sim.uri, timeout=0.3), interval=0.005))
        try:
            sim.place(ONE)
            assert w.until(CardRead) == [CardRead(ONE)]
            polls_later(sim)
            assert w.drain() == [] and sim.count(READ_BASE) == 1
            sim.remove()
            assert w.until(CardRemoved) == [CardRemoved()]
        finally:
            w.stop()


def test_garbled_replies_are_reported_and_the_card_is_read_once(sim, watch):
    w = watch()
    sim.corrupt_next_reply(READ_BASE)
    sim.place(ONE)
    events = w.until(CardRead)
    assert [type(e) for e in events] == [ReaderProblem, CardRead] and "bad checksum" in events[0].reason
    sim.remove()
    w.until(CardRemoved)
    sim.short_next_reply(READ_BASE)
    sim.place(TWO)
    events = w.until(CardRead)
    assert [type(e) for e in events] == [ReaderProblem, CardRead] and "short frame" in events[0].reason
    sim.corrupt_next_reply(FIND)  # trouble while the card just sits there
    sim.short_next_reply(FIND)
    events = w.until(ReaderProblem) + w.until(ReaderProblem)
    assert "bad checksum" in events[0].reason and "short frame" in events[1].reason
    sim.garble_next_reply()
    polls_later(sim)
    assert w.drain() == [] and sim.count(READ_BASE) == 4  # two failed, two read; noise alone is skipped


def test_a_card_that_keeps_failing_is_reported_unreadable_once(sim, watch):
    w = watch(max_attempts=2)
    for _ in range(2):
        sim.corrupt_next_reply(READ_BASE)
    sim.place(ONE)
    events = w.until(CardUnreadable)
    assert [type(e) for e in events] == [ReaderProblem, ReaderProblem, CardUnreadable]
    polls_later(sim)
    assert w.drain() == []
    sim.remove()
    assert w.until(CardRemoved) == [CardRemoved()]
    sim.place(ONE)  # placed again: read afresh
    assert w.until(CardRead) == [CardRead(ONE)]


def test_a_card_with_a_bad_check_digit_is_unreadable_at_once(sim, watch):
    w = watch()
    sim.place(dataclasses.replace(ONE, id_number="999901199001010011"))
    events = w.until(CardUnreadable)
    assert [type(e) for e in events] == [ReaderProblem, CardUnreadable]
    assert "check digit is wrong" in events[1].reason and "999901" not in events[1].reason
    polls_later(sim)
    assert w.drain() == [] and sim.count(READ_BASE) == 1


def test_unplugged_mid_read_is_reported_and_the_card_read_when_back(sim, watch):
    w = watch()
    sim.unplug_mid_reply(READ_BASE)
    sim.place(ONE)
    events = w.until(ReaderLost)
    assert [type(e) for e in events] == [ReaderLost] and "went away" in events[0].reason
    sim.replug()
    assert [type(e) for e in w.until(CardRead)] == [ReaderBack, CardRead]
    assert w.seen[-1] == CardRead(ONE)


def test_back_after_an_outage_with_the_same_card_or_another(sim, watch):
    w = watch()
    sim.place(ONE)
    w.until(CardRead)
    sim.unplug()
    w.until(ReaderLost)
    sim.replug()
    w.until(ReaderBack)
    polls_later(sim)
    assert w.drain() == [] and sim.count(READ_BASE) == 2  # re-read to check, same card: nothing to say
    sim.unplug()
    w.until(ReaderLost)
    sim.place(TWO)  # swapped while the reader was away
    sim.replug()
    assert w.until(CardRead) == [ReaderBack(), CardRemoved(), CardRead(TWO)]
    sim.unplug()
    w.until(ReaderLost)
    sim.remove()
    sim.replug()
    assert w.until(CardRemoved) == [ReaderBack(), CardRemoved()]


def test_a_reader_absent_at_start_is_reported_and_found_when_plugged(sim, watch):
    sim.unplug()
    w = watch()
    events = w.until(ReaderLost)
    assert "cannot open the ID card reader" in events[0].reason
    sim.place(THREE)
    sim.replug()
    assert w.until(CardRead) == [ReaderBack(), CardRead(THREE)]


def test_a_reader_that_stays_away_is_a_clear_error(sim, watch):
    w = watch(give_up_after=0.2)
    sim.unplug()
    w.until(ReaderLost)
    error = w.events.get(timeout=WAIT)
    assert isinstance(error, ReaderUnavailable)
    assert "has been away for 0.2 s; check its cable and power" in str(error) and "ttyIDCARD" in str(error)
    w.thread.join(timeout=WAIT)
    assert not w.poller.reader.is_open


def test_placement_bookkeeping_without_a_reader():
    p = Placement(removed_after=2, max_attempts=2)
    assert p.found(True) == [] and p.wants_read()
    assert p.read(ONE) == [CardRead(ONE)] and not p.wants_read()
    assert p.found(False) == []            # one miss is not a removal
    assert p.found(True) == []
    assert p.found(False) == [] and p.found(False) == [CardRemoved()]
    assert p.failed("x") == [ReaderProblem("x")]
    assert p.failed("y") == [ReaderProblem("y"), CardUnreadable("y")] and not p.wants_read()
    p.lost()
    assert p.wants_read()
    assert p.read(TWO) == [CardRemoved(), CardRead(TWO)]


def test_no_personal_data_in_logs_or_events(sim, watch, caplog):
    caplog.set_level(logging.DEBUG)
    w = watch()
    for identity in TEST_IDENTITIES:
        sim.corrupt_next_reply(READ_BASE)
        sim.garble_next_reply(READ_BASE)
        sim.place(identity)
        w.until(CardRead)
        sim.remove()
        w.until(CardRemoved)
    sim.place(dataclasses.replace(ONE, id_number="999901199001010011"))
    w.until(CardUnreadable)
    sim.remove()
    w.until(CardRemoved)
    sim.unplug_mid_reply(READ_BASE)
    sim.place(TWO)
    w.until(ReaderLost)
    sim.replug()
    w.until(CardRead)
    shown = caplog.text + "\n".join(map(str, w.seen)) + "\n".join(map(repr, w.seen))
    assert "card read" in caplog.text and "bad checksum" in caplog.text and "went away" in caplog.text
    for identity in TEST_IDENTITIES:
        for secret in _secrets(identity) + [identity.authority]:
            assert secret not in shown


def test_the_simulator_takes_text_commands(sim):
    assert sim.command("place 2") == "placed test card 2" and sim.card == TWO
    assert sim.command("state").endswith("a card on the reader")
    assert sim.command("corrupt read") == "corrupt armed for the next read reply"
    assert sim.command("false-start") == "false-start armed for the next reply"
    assert sim.command("remove") == "card removed" and sim.card is None
    assert sim.command("place 9").startswith("cannot do 'place 9'")
    assert sim.command("unplug") == "unplugged" and sim.command("state").startswith("unplugged")
    assert sim.command("replug").startswith("plugged in at ")
    assert "commands:" in sim.command("help")


def test_a_command_with_a_bad_checksum_gets_status_0x10(sim):
    with CardReader(sim.uri, timeout=0.5) as reader:
        reader._port.write(build_command(FIND)[:-1] + b"\x00")
        frame = reader._receive(reader._port)
    assert parse_reply(frame).status == 0x10
    assert parse_reply(build_reply(NO_CARD)).meaning == "no card on the reader"


def test_the_simulator_runs_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("place 3\nstate\nquit\nremove\n"))
    assert sim_module.main(["--link", str(tmp_path / "ttyCLI")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"ID card reader simulator at serial:{tmp_path}/ttyCLI?baudrate=115200; type help"
    assert out[1:] == ["placed test card 3", f"at {tmp_path}/ttyCLI; a card on the reader"]
    assert not (tmp_path / "ttyCLI").exists()  # unplugged on the way out
