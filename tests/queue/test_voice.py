"""Voice announcements with the real espeak-ng: what is said, how espeak-ng reads it, the
chime, the cached WAV files, and what happens when espeak-ng is missing or fails.

espeak-ng must be installed (CI does: apt-get install espeak-ng sox); these tests fail
without it rather than skip. Stand-in executables on PATH count or break espeak-ng runs.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kiosq.queue.voice import (
    CHIME_SECONDS,
    GAP_AFTER_CHIME,
    SAMPLE_RATE,
    Voice,
    VoiceError,
    VoiceOptions,
    VoiceUnavailable,
    announcement_text,
    chime_frames,
    chime_wav,
    chinese_number,
    read_wav,
)


@pytest.fixture(scope="module")
def espeak() -> str:
    path = shutil.which("espeak-ng")
    assert path, "espeak-ng is not installed: apt-get install -y --no-install-recommends espeak-ng sox"
    return path


def stand_in(bin_dir: Path, body: str) -> None:
    """An `espeak-ng` in bin_dir that runs the shell `body` (with "$@" as espeak-ng's arguments)."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "espeak-ng"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


@pytest.fixture
def counted(tmp_path, monkeypatch, espeak) -> Path:
    """PATH leads to a wrapper that logs each run, then execs the real espeak-ng; returns the log."""
    log = tmp_path / "runs.log"
    log.touch()
    stand_in(tmp_path / "bin", f'echo "$*" >> {log}\nexec {espeak} "$@"')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{Path(espeak).parent}")
    return log


def runs(log: Path) -> list[str]:
    return log.read_text().splitlines()


def read(path: Path):
    """The WAV file's parameters and its frames."""
    with wave.open(str(path), "rb") as wav:
        return wav.getparams(), wav.readframes(wav.getnframes())


def seconds(path: Path) -> float:
    return read_wav(path).seconds


def syllables(espeak: str, voice: str, text: str) -> list[list[str]]:
    """espeak-ng's phonemes for `text`, one list per spoken clause, without stress marks."""
    out = subprocess.run([espeak, "-q", "-x", "-v", voice, text], capture_output=True, text=True,
                         check=True).stdout
    return [[s for s in re.split(r"[_|!\s]+", re.sub(r"[',]", "", line)) if s] for line in out.splitlines()]


# -- texts -----------------------------------------------------------------------------

def test_chinese_call_spells_the_number_and_says_the_window():
    assert announcement_text("A001", 3, "zh") == "请A零零一号，到三号窗口办理"
    assert announcement_text("B0120", 12, "zh") == "请B零一二零号，到十二号窗口办理"
    assert announcement_text("VIP7", 101, "zh") == "请V I P七号，到一百零一号窗口办理"


def test_english_call_names_letters_and_digits():
    assert announcement_text("A001", 3, "en") == "Number A, 0 0 1, please go to window 3."
    assert announcement_text("VIP7", 12, "en") == "Number V, I, P, 7, please go to window 12."


@pytest.mark.parametrize("n, said", [(1, "一"), (2, "二"), (10, "十"), (12, "十二"), (20, "二十"), (21, "二十一"),
                                     (100, "一百"), (101, "一百零一"), (110, "一百一十"), (999, "九百九十九")])
def test_window_numbers_in_chinese(n, said):
    assert chinese_number(n) == said


@pytest.mark.parametrize("number, window, lang", [
    ("a001", 3, "zh"), ("A", 3, "zh"), ("ABCD1", 3, "zh"), ("A123456", 3, "zh"), ("A-01", 3, "zh"),
    ("A001 ", 3, "zh"), ("A001", 0, "zh"), ("A001", 1000, "zh"), ("A001", 3, "fr")])
def test_only_ticket_numbers_and_windows_are_spoken(number, window, lang):
    with pytest.raises(ValueError):
        announcement_text(number, window, lang)


def test_espeak_reads_the_chinese_digits_one_by_one(espeak):
    number, window = syllables(espeak, "cmn-latn-pinyin", announcement_text("A123", 101, "zh"))
    # 请 A 一 二 三 号: not A 一百二十三 (what it makes of "A123").
    assert number == ["tS;hi21N", "ei51", "ji55", "@r51", "sa55n", "XAu51"]
    # 到 一百零一 号窗口办理: not 一百一 (what it makes of "101").
    assert window[:5] == ["tAu51", "ji55", "pai21", "li35N", "ji55"]
    assert syllables(espeak, "cmn-latn-pinyin", announcement_text("A001", 3, "zh"))[0][1:5] == \
        ["ei51", "li35N", "li35N", "ji55"]


def test_espeak_reads_the_english_letter_and_digits(espeak):
    said = " ".join(sum(syllables(espeak, "en", announcement_text("A123", 3, "en")), []))
    assert said.startswith("nVmb3r- eI w0n tu: Tri:")  # the letter A, not the article "a"; not "a hundred..."


# -- the chime ---------------------------------------------------------------------------

def test_chime_is_a_short_clean_tone_at_espeaks_rate():
    with wave.open(io.BytesIO(chime_wav()), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SAMPLE_RATE)
        assert wav.getnframes() == round(CHIME_SECONDS * SAMPLE_RATE)
        samples = memoryview(wav.readframes(wav.getnframes())).cast("h")
    assert 8000 < max(abs(s) for s in samples) < 32767  # clearly audible, never clipped
    assert abs(samples[0]) < 200 and abs(samples[-1]) < 200  # starts and ends without a click


# -- announcements -----------------------------------------------------------------------

def test_announcement_is_chime_then_chinese_speech(tmp_path, espeak):
    path = Voice(tmp_path / "cache").announcement("A001", 3)
    params, frames = read(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, SAMPLE_RATE)
    assert 1.5 < params.nframes / params.framerate < 8
    chime = chime_frames(SAMPLE_RATE)
    assert frames.startswith(chime)
    speech = memoryview(frames[len(chime) + 2 * round(GAP_AFTER_CHIME * SAMPLE_RATE):]).cast("h")
    assert max(abs(s) for s in speech) > 5000
    if shutil.which("soxi"):  # a second opinion on the header
        soxi = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
        assert float(soxi.stdout) == pytest.approx(params.nframes / params.framerate, abs=0.001)


def test_english_follows_the_chinese_call(tmp_path, espeak):
    chinese = Voice(tmp_path / "cache").announcement("A001", 3)
    both = Voice(tmp_path / "cache", VoiceOptions(english=True)).announcement("A001", 3)
    assert both != chinese
    assert seconds(chinese) + 1.5 < seconds(both) < 16
    assert read(both)[1].startswith(read(chinese)[1])  # the same Chinese call first


def test_each_text_is_synthesised_once(tmp_path, counted):
    voice = Voice(tmp_path / "cache")
    first = voice.announcement("A001", 3)
    made = len(runs(counted))
    assert made == 2  # one check of the voice, one synthesis
    assert voice.announcement("A001", 3) == first
    assert Voice(tmp_path / "cache").announcement("A001", 3) == first  # also after a restart
    assert len(runs(counted)) == made
    other = voice.announcement("A001", 4)
    assert other != first and len(runs(counted)) == made + 1
    assert sorted((tmp_path / "cache").iterdir()) == sorted([first, other])


def test_voice_and_speed_are_part_of_the_cache_key(tmp_path, espeak):
    slow = Voice(tmp_path / "cache", VoiceOptions(speed=120)).announcement("A001", 3)
    fast = Voice(tmp_path / "cache", VoiceOptions(speed=200)).announcement("A001", 3)
    assert slow != fast and seconds(slow) > seconds(fast) + 0.5


def test_concurrent_requests_get_one_intact_file(tmp_path, counted):
    voices = [Voice(tmp_path / "cache"), Voice(tmp_path / "cache")]  # two processes' worth
    start = threading.Barrier(8)

    def call(i: int) -> Path:
        start.wait()
        return voices[i % 2].announcement("C042", 7)

    with ThreadPoolExecutor(8) as pool:
        paths = set(pool.map(call, range(8)))
    assert len(paths) == 1
    path = paths.pop()
    params, frames = read(path)
    assert len(frames) == 2 * params.nframes and path.stat().st_size == 44 + len(frames)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temp files left
    assert sum("-w" in r for r in runs(counted)) <= 2  # at most once per Voice


def test_least_recently_used_files_are_pruned(tmp_path, espeak):
    voice = Voice(tmp_path / "cache", VoiceOptions(cache_files=2))
    a1, a2 = voice.announcement("A001", 1), voice.announcement("A002", 1)
    now = time.time()
    os.utime(a1, (now - 3 * 3600, now - 3 * 3600))  # made three hours ago,
    os.utime(a2, (now - 2 * 3600, now - 2 * 3600))  # this one two hours ago,
    assert voice.announcement("A001", 1) == a1  # but this one used again just now
    a3 = voice.announcement("A003", 1)
    assert sorted((tmp_path / "cache").iterdir()) == sorted([a1, a3])


# -- when espeak-ng cannot speak -----------------------------------------------------------

def test_unavailable_without_espeak(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    voice = Voice(tmp_path / "cache")
    assert not voice.available
    assert voice.reason == "espeak-ng is not installed: apt-get install espeak-ng"
    with pytest.raises(VoiceUnavailable, match="apt-get install espeak-ng"):
        voice.announcement("A001", 3)
    with pytest.raises(ValueError):  # a bad request is still a bad request
        voice.announcement("A00x", 3)


def test_unavailable_without_the_pinyin_voice(tmp_path, espeak):
    voice = Voice(tmp_path / "cache", VoiceOptions(zh_voice="cmn-no-such-voice"))
    assert not voice.available
    assert "no voice 'cmn-no-such-voice'" in voice.reason and "espeak-ng --voices" in voice.reason
    with pytest.raises(VoiceUnavailable, match="cmn-no-such-voice"):
        voice.announcement("A001", 3)
    assert Voice(tmp_path / "cache").available and Voice(tmp_path / "cache").reason == ""


def test_failed_synthesis_names_the_command_and_its_message(tmp_path, monkeypatch, espeak):
    # The voice check (espeak-ng --voices) runs the real one; writing the file fails.
    stand_in(tmp_path / "bin", f'case "$*" in *-w*) echo "cannot write: disk full" >&2; exit 3;; esac\n'
                               f'exec {espeak} "$@"')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{Path(espeak).parent}")
    voice = Voice(tmp_path / "cache")
    assert voice.available
    with pytest.raises(VoiceError) as failed:
        voice.announcement("A001", 3)
    message = str(failed.value)
    assert "-v cmn-latn-pinyin -s 150 -w" in message and "请A零零一号" in message
    assert "exit status 3" in message and "cannot write: disk full" in message
    assert list((tmp_path / "cache").glob("*")) == []


def test_a_hung_espeak_times_out(tmp_path, monkeypatch, espeak):
    stand_in(tmp_path / "bin", f'case "$*" in *-w*) exec sleep 30;; esac\nexec {espeak} "$@"')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{Path(espeak).parent}")
    started = time.monotonic()
    with pytest.raises(VoiceError, match=r"did not finish within 0\.5 s"):
        Voice(tmp_path / "cache", timeout=0.5).announcement("A001", 3)
    assert time.monotonic() - started < 5
