"""Spoken prompts for 长辈模式: each screen says what to do, in Mandarin or English, with
espeak-ng (offline).

A prompt is spoken on a worker thread; a new prompt cuts the one still being spoken (the
citizen has moved on), unlike the hall's calls, which are queued. With `out_dir`, prompts
are written there as WAV files instead of being played (tests, and terminals without a
sound card can be checked that way). Prompts are the screen's own words, never a
citizen's data: callers pass message texts and ticket numbers only.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections import deque
from pathlib import Path

ESPEAK = "espeak-ng"
VOICES = {"zh": "cmn-latn-pinyin", "en": "en"}  # plain `cmn` reads many Hanzi as pinyin in English
RATE = {"zh": 150, "en": 150}
SYNTH_TIMEOUT = 30.0  # seconds; a prompt plays in a few seconds
_ZH_DIGITS = "零一二三四五六七八九"

log = logging.getLogger(__name__)


def spell_number(number: str, lang: str) -> str:
    """A ticket number as it is read out: letters one by one, then each digit
    ("A001" → "A 零零一", in English "A, 0 0 1")."""
    letters = [c for c in number if c.isalpha()]
    digits = [c for c in number if c.isdigit()]
    if lang == "zh":
        return " ".join(letters) + " " + "".join(_ZH_DIGITS[int(d)] for d in digits)
    return ", ".join([*letters, " ".join(digits)])


class Speaker:
    """Says one prompt at a time. `available` is False (and `reason` says why) when
    espeak-ng is missing; say() is then a no-op that costs nothing."""

    def __init__(self, out_dir: Path | None = None, espeak: str = ESPEAK) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else None
        path = shutil.which(espeak)
        self.available = path is not None
        self.reason = "" if path else f"{espeak} is not installed (apt-get install espeak-ng)"
        self._espeak = path or espeak
        self._wanted: tuple[str, str] | None = None
        self._current: subprocess.Popen | None = None
        self._lock = threading.Condition()
        self._closed = False
        self._count = 0
        self.spoken: deque[tuple[str, str, Path | None]] = deque(maxlen=50)  # (lang, text, wav) said so far
        self._thread: threading.Thread | None = None
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if not self.available:
            log.warning("no spoken prompts: %s", self.reason)

    def say(self, text: str, lang: str = "zh") -> None:
        """Speak text soon, cutting whatever is being said; returns at once."""
        if not self.available or not text.strip():
            return
        with self._lock:
            if self._closed:
                return
            self._wanted = (lang if lang in VOICES else "zh", text)
            self._kill_current()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="speech", daemon=True)
                self._thread.start()
            self._lock.notify()

    def stop(self) -> None:
        """Silence: drop the prompt waiting and cut the one playing."""
        with self._lock:
            self._wanted = None
            self._kill_current()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wanted = None
            self._kill_current()
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _kill_current(self) -> None:
        if self._current is not None and self._current.poll() is None:
            self._current.kill()

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._wanted is None and not self._closed:
                    self._lock.wait()
                if self._closed or self._wanted is None:
                    return
                lang, text = self._wanted
                self._wanted = None
                wav = None
                args = [self._espeak, "-v", VOICES[lang], "-s", str(RATE[lang])]
                if self.out_dir is not None:
                    self._count += 1
                    wav = self.out_dir / f"prompt-{self._count:04d}.wav"
                    args += ["-w", str(wav)]
                try:
                    self._current = subprocess.Popen(args + ["--", text], stdin=subprocess.DEVNULL,
                                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                except OSError as exc:
                    log.warning("spoken prompt failed: %s", exc)
                    continue
                process = self._current
            try:
                _, err = process.communicate(timeout=SYNTH_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                log.warning("a spoken prompt took over %.0f s and was cut", SYNTH_TIMEOUT)
                continue
            if process.returncode == 0:
                self.spoken.append((lang, text, wav))
            elif process.returncode > 0:  # negative: cut by a newer prompt
                log.warning("espeak-ng failed (%s): %s", process.returncode,
                            err.decode(errors="replace").strip()[:200])
