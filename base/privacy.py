"""How personal data is shown on screens and paper: masked, the same way everywhere.

An ID number keeps its first 3 and last 4 characters (110***********1234: enough to tell
two cards apart, not enough to use); a name keeps its first and last character (王*明,
欧阳小明 -> 欧**明; a two-character name keeps the first: 王*); a phone its first 3 and
last 4 digits (138****5678); free text (an address, a birth date) its first 6 characters.
`mask_field_value` picks the mask for a form field's value: the one rule for the kiosk's
review screen and the server's lists.

Keys that seal personal data are written with `write_secret_file` (created once, never
replaced), the one way the server and the terminal make them; secrets that are rewritten
(a terminal's token, its config with the PIN hash) with `replace_secret_file`.
"""

import os
import re
import unicodedata
from pathlib import Path
from typing import Protocol


def mask_id_number(id_number: str) -> str:
    return _keep_ends("".join(id_number.split()).upper())


def mask_name(name: str) -> str:
    name = name.strip()
    if len(name) > 2:
        return name[0] + "*" * (len(name) - 2) + name[-1]
    return name[:1] + "*" * (len(name) > 0)


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678; a landline keeps its area code and last 4 digits."""
    return _keep_ends("".join(phone.split()))


def _keep_ends(text: str) -> str:
    """The first 3 and last 4 characters, stars between; all stars for 7 or fewer."""
    if len(text) <= 7:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


def mask_text(text: str) -> str:
    """Free text (an address, a birth date): the first 6 characters, the rest hidden."""
    text = text.strip()
    return text[:6] + "*" * min(6, max(0, len(text) - 6))


# Numbers a clerk may type into a note (补正, 驳回): each with no letter or digit right before
# or after. Matched on the note's ASCII fold (_fold), so that full-width digits count too.
_SEP = r"[ \-]?"  # one space or dash, as people write them between groups


def _spaced(*digits: str) -> str:
    """The pattern of `digits` (one digit each) with one space or dash allowed between any two."""
    return _SEP.join(digits)


_D = r"\d"
_ID18 = _spaced("[1-9]", *[_D] * 5, f"(?:1{_SEP}9|2{_SEP}0)", _D, _D,  # area, century
                f"(?:0{_SEP}[1-9]|1{_SEP}[0-2])", f"(?:0{_SEP}[1-9]|[12]{_SEP}{_D}|3{_SEP}[01])",  # month, day
                *[_D] * 3, r"[\dXx]")
_CARD = (r"[1-9]\d{15,18}"  # 16-19 digits in one run, or grouped: 4-4-4-4 (then 1-3 more), 6-10 to 6-13
         r"|[1-9]\d{3}(?:[ \-]\d{4}){3}(?:[ \-]?\d{1,3})?"
         r"|[1-9]\d{5}[ \-]\d{10,13}")
_NUMBERS = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    r"(?P<id18>" + _ID18 + r")"  # 居民身份证
    r"|(?P<card>" + _CARD + r")"  # bank cards
    r"|(?P<id15>[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3})"  # first-generation IDs
    r"|(?P<mobile>(?:(?:\+|00)86" + _SEP + r")?1[3-9]\d" + _SEP + r"\d{4}" + _SEP + r"\d{4})"  # 手机
    r"|(?P<landline>(?:\(0\d{2,3}\) ?|0\d{2,3}" + _SEP + r")[1-9]\d{2,3}" + _SEP + r"\d{4})"  # 固话, area code
    r")(?![0-9A-Za-z])", re.ASCII)


def _fold(text: str) -> str:
    """`text` with each character whose NFKC form is one ASCII character replaced by it (１
    -> 1, Ｘ -> X, the full-width space, dash and brackets), the rest as it is: the same
    length, so that a match in it is at the same place in `text`."""
    def one(c: str) -> str:
        n = unicodedata.normalize("NFKC", c)
        return n if len(n) == 1 and n.isascii() else c
    return text if text.isascii() else "".join(map(one, text))


def mask_numbers_in_text(text: str) -> str:
    """Free text a person typed (a staff note) with the ID numbers, bank-card numbers and
    phone numbers in it masked the way they are everywhere: an ID number and a phone keep
    their first 3 and last 4 characters, a card its last 4 digits. Dates, amounts, tracking
    and ticket numbers and other short numbers stay as they are. Numbers typed in full-width
    digits are found too (matched on the NFKC form); a masked number is written in ASCII,
    and the rest of the note stays as typed (full-width punctuation included)."""
    folded, out, at = _fold(text), [], 0
    for m in _NUMBERS.finditer(folded):
        out += [text[at:m.start()], _masked(m)]
        at = m.end()
    return "".join(out) + text[at:]


def _masked(m: re.Match[str]) -> str:
    digits = re.sub(r"[^0-9X]", "", m.group(0).upper())
    if m.group("card"):
        return "*" * (len(digits) - 4) + digits[-4:]
    if m.group("mobile"):
        return mask_phone(digits[-11:])
    return _keep_ends(digits)


class FormFieldShape(Protocol):
    """What masking needs to know of a form field (kiosq.content.model.FormField has it;
    base does not import content)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def prefill(self) -> str | None: ...

    @property
    def pattern(self) -> str | None: ...


def mask_field_value(field: FormFieldShape, value: str) -> str:
    """A form field's value as screens, lists and paper show it: personal data (the ID
    number, phone, name, address, birth date) masked; a text with a pattern (an account
    number and the like) down to its last 4 characters; anything else as it is."""
    if field.type == "id_number" or field.prefill == "id_number":
        return mask_id_number(value)
    if field.type == "phone":
        return mask_phone(value)
    if field.prefill == "name":
        return mask_name(value)
    if field.prefill in ("address", "birth") or "address" in field.name:
        return mask_text(value)
    if field.type == "text" and field.pattern:
        return "*" * max(0, len(value) - 4) + value[-4:]
    return value


def write_secret_file(path: Path, data: bytes) -> bool:
    """Create `path` holding `data`, mode 0600 from the first byte; False (and nothing
    written) when it exists already. Written whole under a temporary name and linked into
    place: link() fails if the file exists, so two processes starting at once cannot both
    make a key, and nobody reads a half-written one. Raises OSError."""
    import threading

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    _fsync_folder(path)
    return True


def replace_secret_file(path: Path, data: bytes) -> None:
    """Write `path` (made or replaced) holding `data`, mode 0600 from the first byte whatever
    the umask, atomically: a temporary file beside it, fsynced, renamed over the old one,
    and the folder fsynced. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.write(fd, data)
            os.fchmod(fd, 0o600)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path)


def _fsync_folder(path: Path) -> None:
    """Make the folder's entry for `path` durable (a rename or link is not, until then)."""
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
