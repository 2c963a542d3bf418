"""Spoken calls for the hall: a chime, then 「请A零零一号，到三号窗口办理」 (and, if wanted, in English).

Speech is made offline with espeak-ng and kept as one WAV file per announcement in a cache
folder, so each text is synthesised once. The texts and the chime are pure functions;
`Voice` is the part that runs espeak-ng and writes files.
"""

from __future__ import annotations

import array
import functools
import hashlib
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

Lang = Literal["zh", "en"]

ESPEAK = "espeak-ng"
SAMPLE_RATE = 22050  # what espeak-ng writes; in a call, the chime is made at the rate of its speech
FORMAT_VERSION = 1  # part of every cache key: bump it when the texts, chime or pauses change
CHIME_SECONDS = 0.6
GAP_AFTER_CHIME = 0.1  # seconds of silence between the chime and the speech
PAUSE_BEFORE_ENGLISH = 0.3  # espeak-ng already ends each text with ~0.4 s of silence
SYNTH_TIMEOUT = 10.0  # seconds; a call is synthesised in a few hundredths
STALE_TEMP_SECONDS = 600  # temp files older than this were left by a crash
TOUCH_AFTER_SECONDS = 3600  # a cached file's time marks its last use to the hour: fewer writes, steady ETags

# Ticket numbers as the hall file makes them: up to 3 letters (the prefix) and up to 5 digits.
_NUMBER = re.compile(r"([A-Z]{0,3})([0-9]{1,5})")
_MAX_WINDOW = 999
_ZH_DIGITS = "零一二三四五六七八九"


class VoiceError(Exception):
    """An announcement cannot be made; the message says what failed."""


class VoiceUnavailable(VoiceError):
    """espeak-ng, or a voice it needs, is not installed; the message says what to install."""


class Audio(NamedTuple):
    """16-bit mono PCM."""

    rate: int
    frames: bytes

    @property
    def seconds(self) -> float:
        return len(self.frames) / 2 / self.rate


# -- texts ---------------------------------------------------------------------------

def chinese_number(n: int) -> str:
    """1-999 as said aloud: 3 → 三, 12 → 十二, 101 → 一百零一."""
    if not 1 <= n <= 999:
        raise ValueError(f"{n} is outside 1-999")
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    said = f"{_ZH_DIGITS[hundreds]}百" if hundreds else ""
    if tens:
        said += ("" if tens == 1 and not hundreds else _ZH_DIGITS[tens]) + "十"
    elif hundreds and ones:
        said += "零"
    return said + (_ZH_DIGITS[ones] if ones else "")


def _split_number(number: str) -> tuple[str, str]:
    match = _NUMBER.fullmatch(number)
    if match is None:
        raise ValueError(f"ticket number {number!r} is not 0-3 capital letters and 1-5 digits, such as 'A001'")
    return match.group(1), match.group(2)


def announcement_text(number: str, window: int, lang: Lang) -> str:
    """What is said when ticket `number` ("A001") is called to `window` (1-999).

    Written for espeak-ng's ears, not for reading (`espeak-ng -q -x` shows the phonemes):
    - zh: a letter glued to a digit is read as pinyin ("A1" → ā), letters glued together as
      an English word ("VIP"), and digits as a quantity ("A123" → A 一百二十三). So letters
      are spaced (each then gets its name: A → ei, B → bi) and digits are spelled one by
      one in Chinese characters: "A123" → "A一二三". The window is a quantity, but we say it
      ourselves too: espeak-ng reads "101" as 一百一, not 一百零一.
    - en: a lone "A" is read as the article ("uh"); a comma after it makes it the letter.
    Raises ValueError for anything but a ticket number and a window.
    """
    letters, digits = _split_number(number)
    if not 1 <= window <= _MAX_WINDOW:
        raise ValueError(f"window {window} is outside 1-{_MAX_WINDOW}")
    if lang == "zh":
        spelled = " ".join(letters) + "".join(_ZH_DIGITS[int(d)] for d in digits)
        return f"请{spelled}号，到{chinese_number(window)}号窗口办理"
    if lang == "en":
        spelled = ", ".join([*letters, " ".join(digits)])
        return f"Number {spelled}, please go to window {window}."
    raise ValueError(f"language {lang!r} is not 'zh' or 'en'")


# -- sound -----------------------------------------------------------------------------

_NOTES = ((0.0, 659.25), (0.22, 523.25))  # (start in s, Hz): 叮 on E5, 咚 on C5, ringing together


def _bell(t: float, freq: float) -> float:
    """One struck note: a 5 ms attack, then an exponential decay, with a soft octave overtone."""
    if t < 0:
        return 0.0
    tone = math.sin(2 * math.pi * freq * t) + 0.25 * math.sin(4 * math.pi * freq * t)
    return min(1.0, t / 0.005) * math.exp(-t / 0.15) * tone


@functools.lru_cache(maxsize=4)
def chime_frames(rate: int = SAMPLE_RATE) -> bytes:
    """The chime (叮咚, CHIME_SECONDS long) as 16-bit mono PCM at `rate`."""
    count = round(CHIME_SECONDS * rate)
    fade = 0.03 * rate  # ends at zero: a cut-off tone clicks
    samples = array.array("h")
    for i in range(count):
        value = sum(_bell(i / rate - start, freq) for start, freq in _NOTES)
        value *= 0.45 * min(1.0, (count - i) / fade)  # quieter than espeak-ng's speech at its peaks
        samples.append(max(-32767, min(32767, round(value * 32767))))
    return samples.tobytes()


def chime_wav(rate: int = SAMPLE_RATE) -> bytes:
    """The chime as a whole WAV file (16-bit mono at `rate`)."""
    return wav_bytes(Audio(rate, chime_frames(rate)))


def silence(seconds: float, rate: int) -> bytes:
    return bytes(2 * round(seconds * rate))


def wav_bytes(audio: Audio) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(audio.rate)
        wav.writeframes(audio.frames)
    return out.getvalue()


def read_wav(path: Path) -> Audio:
    """A 16-bit mono PCM WAV file; wave.Error or ValueError if it is anything else."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{wav.getnchannels()} channel(s) of {8 * wav.getsampwidth()} bits, "
                             f"not 16-bit mono")
        return Audio(wav.getframerate(), wav.readframes(wav.getnframes()))


def cache_key(parts: Sequence[tuple[str, str]], speed: int) -> str:
    """The cache file name (without .wav) of an announcement made of (voice, text) parts."""
    spec = {"format": FORMAT_VERSION, "parts": [list(p) for p in parts], "speed": speed}
    return hashlib.sha256(json.dumps(spec, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write through a temp file and os.replace, so that readers see the whole file or none;
    fsync first, so that a power cut never leaves an empty file under the final name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- espeak-ng and the cache -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class VoiceOptions:
    """How calls sound. Voices and speed are part of each cache key: changing them makes new files."""

    zh_voice: str = "cmn-latn-pinyin"  # not "cmn": it reads 请 as English "king three" (qing3)
    en_voice: str = "en"
    speed: int = 150  # words per minute (espeak-ng -s, 80-450)
    english: bool = False  # follow each Chinese call with an English one
    cache_files: int = 2000  # ~0.5 GB (a call is 0.25 MB, 0.45 MB with English); the least recently used go

    def __post_init__(self) -> None:
        if not 80 <= self.speed <= 450:
            raise ValueError(f"speed {self.speed} is outside espeak-ng's 80-450 words per minute")
        if self.cache_files < 1:
            raise ValueError("cache_files must be at least 1")


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise VoiceError(f"{shlex.join(cmd)} did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise VoiceError(f"cannot run {shlex.join(cmd)}: {exc.strerror or exc}") from None


def voice_names(listing: str) -> set[str]:
    """The names `espeak-ng -v` takes, lower case, from the table `espeak-ng --voices` prints:
    language, voice name, file (with and without its folder), and the other languages."""
    names: set[str] = set()
    for line in listing.splitlines()[1:]:
        columns = line.split()
        if len(columns) >= 5:
            names.update([columns[1], columns[3], columns[4], columns[4].rsplit("/", 1)[-1]])
            names.update(re.findall(r"\(([^ )]+) \d+\)", line))  # "(en 2)": also answers to "en"
    return {name.lower() for name in names}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed meanwhile by another process's pruning
        return 0.0


class Voice:
    """Announcements as cached WAV files: chime, Chinese call, and optionally the English one.

    Safe to use from several threads and processes on one cache folder: each file is
    written whole under a temporary name and then renamed into place.
    """

    def __init__(self, cache_dir: Path, options: VoiceOptions = VoiceOptions(),
                 timeout: float = SYNTH_TIMEOUT) -> None:
        self.cache_dir = Path(cache_dir)
        self.options = options
        self.timeout = timeout
        self._lock = threading.Lock()  # one synthesis at a time: a second request for it waits for the file
        self._status: tuple[str | None, str] | None = None  # (espeak-ng's path, why not), found once

    @property
    def available(self) -> bool:
        return self._check()[0] is not None

    @property
    def reason(self) -> str:
        """Why announcements cannot be made, with what to install; "" when they can."""
        return self._check()[1]

    def parts(self, number: str, window: int) -> list[tuple[str, str]]:
        """The (voice, text) pairs spoken for a call, in order."""
        parts = [(self.options.zh_voice, announcement_text(number, window, "zh"))]
        if self.options.english:
            parts.append((self.options.en_voice, announcement_text(number, window, "en")))
        return parts

    def announcement(self, number: str, window: int) -> Path:
        """The WAV file announcing ticket `number` at `window`, made on first use.

        Raises ValueError for a bad number or window, VoiceUnavailable when espeak-ng or a
        voice is missing, and VoiceError when espeak-ng fails. Blocks while synthesising
        (tens of milliseconds): call it from a worker thread in async code.
        """
        parts = self.parts(number, window)
        path = self.cache_dir / f"{cache_key(parts, self.options.speed)}.wav"
        if self._touch(path):
            return path
        espeak = self._espeak()
        with self._lock:
            if not path.exists():
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                write_atomically(path, wav_bytes(self._render(espeak, parts)))
                self._prune()
        return path

    # -- inside ----------------------------------------------------------------------

    def _check(self) -> tuple[str | None, str]:
        if self._status is None:
            voices = [self.options.zh_voice] + ([self.options.en_voice] if self.options.english else [])
            self._status = self._find_espeak(voices)
        return self._status

    def _find_espeak(self, voices: list[str]) -> tuple[str | None, str]:
        espeak = shutil.which(ESPEAK)
        if espeak is None:
            return None, f"{ESPEAK} is not installed: apt-get install espeak-ng"
        listing = _run([espeak, "--voices"], self.timeout)
        if listing.returncode != 0:
            return None, f"{espeak} --voices failed: {listing.stderr.strip() or 'no message'}"
        # Checked against the list, not by trying: espeak-ng quietly falls back to the
        # nearest language, so "cmn-latn-pinyin" would become plain "cmn" where it is missing.
        installed = voice_names(listing.stdout)
        missing = [v for v in voices if v.lower() not in installed]
        if missing:
            return None, (f"{espeak} has no voice {', '.join(map(repr, missing))} (`espeak-ng --voices` "
                          f"lists those it has): install a newer espeak-ng-data (Debian 12's has it)")
        return espeak, ""

    def _espeak(self) -> str:
        espeak, reason = self._check()
        if espeak is None:
            raise VoiceUnavailable(reason)
        return espeak

    def _render(self, espeak: str, parts: list[tuple[str, str]]) -> Audio:
        """Chime, speech, and before each further part a short pause, at espeak-ng's rate."""
        with tempfile.TemporaryDirectory(prefix="kiosq-voice-") as tmp:
            speech = [self._synthesize(espeak, voice, text, Path(tmp) / f"{i}.wav")
                      for i, (voice, text) in enumerate(parts)]
        rate = speech[0].rate
        if any(s.rate != rate for s in speech):
            raise VoiceError(f"espeak-ng wrote the parts of one call at different rates "
                             f"({', '.join(f'{s.rate} Hz' for s in speech)}); they cannot be joined")
        pieces = [chime_frames(rate), silence(GAP_AFTER_CHIME, rate), speech[0].frames]
        for more in speech[1:]:
            pieces += [silence(PAUSE_BEFORE_ENGLISH, rate), more.frames]
        return Audio(rate, b"".join(pieces))

    def _synthesize(self, espeak: str, voice: str, text: str, out: Path) -> Audio:
        cmd = [espeak, "-v", voice, "-s", str(self.options.speed), "-w", str(out), text]
        done = _run(cmd, self.timeout)
        if done.returncode != 0:
            raise VoiceError(f"{shlex.join(cmd)} failed (exit status {done.returncode}): "
                             f"{done.stderr.strip() or 'no message'}")
        try:
            return read_wav(out)
        except (OSError, EOFError, wave.Error, ValueError) as exc:
            raise VoiceError(f"{shlex.join(cmd)} wrote no usable WAV file: {exc}") from None

    @staticmethod
    def _touch(path: Path) -> bool:
        """Mark a cached file as used now (for pruning); False if it is not there."""
        try:
            if time.time() - path.stat().st_mtime > TOUCH_AFTER_SECONDS:
                os.utime(path)
            return True
        except FileNotFoundError:
            return False

    def _prune(self) -> None:
        """Keep at most `cache_files` announcements (the most recently used) and no stale temp files."""
        files = sorted(self.cache_dir.glob("*.wav"), key=_mtime, reverse=True)
        for old in files[self.options.cache_files:]:
            old.unlink(missing_ok=True)
        for tmp in self.cache_dir.glob(".*.tmp"):
            if _mtime(tmp) < time.time() - STALE_TEMP_SECONDS:
                tmp.unlink(missing_ok=True)
