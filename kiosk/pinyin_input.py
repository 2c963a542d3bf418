"""Typing Chinese on the kiosk's keyboard: pinyin letters in, characters to choose out.

No input-method library fits a Kivy kiosk (the desktop ones need a window system; the
Python ones are engines for whole sentences with large models), so this is the smallest
useful one, built from pypinyin's own dictionaries (already a dependency): every
character's readings (`pinyin_dict`) give the characters of each syllable, and how often a
character is read that way in pypinyin's ~400,000 phrases (`phrases_dict`) ranks them, so
"wang" offers 王 first and "zhang" 长 章 张. For a name's first character common surnames
come first. One syllable at a time: a citizen types `li`, touches 李, types `ming`,
touches 明.

The index takes about half a second to build; `warm_up()` builds it on a worker thread
when 申报 opens (not at start-up, where it would compete with the first screen), and
`candidates()` waits for it if called sooner.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import Counter, defaultdict

# The commonest surnames, most common first (公安部 户籍人口统计, rounded): preferred for
# the first character of a name.
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
            "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严"
            "覃武戴莫孔向汤")
_U = str.maketrans({c: "v" for c in "üǖǘǚǜ"})  # typed as v, as every pinyin keyboard does

_lock = threading.Lock()
_index: dict[str, list[str]] | None = None


def plain(reading: str) -> str:
    """A tone-marked reading as it is typed: "lǜ" -> "lv", "zhāng" -> "zhang"."""
    reading = reading.translate(_U)
    return "".join(c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c))


def _build() -> dict[str, list[str]]:
    from pypinyin import phrases_dict, pinyin_dict

    uses: Counter[tuple[str, str]] = Counter()
    for phrase, readings in phrases_dict.phrases_dict.items():
        if len(phrase) == len(readings):
            for char, heard in zip(phrase, readings):  # each character's readings, the usual one first
                uses[(char, plain(heard[0]))] += 1
    chars: dict[str, set[str]] = defaultdict(set)
    for code, joined in pinyin_dict.pinyin_dict.items():
        char = chr(code)
        if "\u4e00" <= char <= "\u9fff":  # the basic block: what GB18030 slips and the fonts show
            for reading in joined.split(","):
                chars[plain(reading)].add(char)
    return {syllable: sorted(found, key=lambda c: (-uses[(c, syllable)], ord(c)))  # sorted() runs at once
            for syllable, found in chars.items()}


def index() -> dict[str, list[str]]:
    global _index
    with _lock:
        if _index is None:
            _index = _build()
        return _index


def warm_up() -> None:
    """Build the index on a daemon thread, once (the kiosk calls this when 申报 opens)."""
    if _index is None:
        threading.Thread(target=index, name="pinyin-index", daemon=True).start()


def candidates(letters: str, *, surname: bool = False, limit: int = 40) -> list[str]:
    """The characters read as `letters` (one syllable), likeliest first; when no syllable is
    exactly that, those of the syllables it begins ("zh" -> 张 中 …). `surname`: common
    surnames first (the first character of a name)."""
    letters = letters.lower().translate(_U)
    if not letters.isascii() or not letters.isalpha():
        return []
    table = index()
    found = list(table.get(letters, ()))
    if not found:
        seen: set[str] = set()
        longer = sorted((s for s in table if s.startswith(letters)), key=lambda s: (len(s), s))
        for position in range(8):  # the best few of each longer syllable, round by round
            for syllable in longer:
                chars = table[syllable]
                if position < len(chars) and chars[position] not in seen:
                    seen.add(chars[position])
                    found.append(chars[position])
    if surname:
        rank = {c: i for i, c in enumerate(SURNAMES)}
        found.sort(key=lambda c: rank.get(c, len(SURNAMES)))
    return found[:limit]


def chinese(text: str) -> bool:
    """Whether text has any Chinese character (a field typed with this input, not the keys)."""
    return any("\u4e00" <= c <= "\u9fff" for c in text)
