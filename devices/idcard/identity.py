"""The card's text block (pure): its layout, the sex and nationality codes, and
`Identity`, what a card says, decoded and checked (never logged, its repr masked).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date

from kiosq.base.idnumber import id_number_problem
from kiosq.base.privacy import mask_id_number, mask_name
from kiosq.devices.idcard.protocol import CardDataError

# The 256-byte text block of "read base info": (field, bytes), UCS-2 little-endian,
# padded with spaces.
TEXT_LAYOUT: tuple[tuple[str, int], ...] = (
    ("name", 30), ("sex", 2), ("nation", 4), ("birth", 16), ("address", 70), ("id_number", 36),
    ("authority", 30), ("valid_from", 16), ("valid_to", 16), ("reserved", 36),
)
TEXT_SIZE = 256
PHOTO_SIZE = 1024
LONG_TERM = "长期"

# GB/T 2261.1 sex codes.
SEXES: dict[str, str] = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}

# GB 3304 nationality codes, as printed on the card (without 族).
NATIONS: dict[str, str] = {
    "01": "汉", "02": "蒙古", "03": "回", "04": "藏", "05": "维吾尔", "06": "苗", "07": "彝", "08": "壮",
    "09": "布依", "10": "朝鲜", "11": "满", "12": "侗", "13": "瑶", "14": "白", "15": "土家", "16": "哈尼",
    "17": "哈萨克", "18": "傣", "19": "黎", "20": "傈僳", "21": "佤", "22": "畲", "23": "高山", "24": "拉祜",
    "25": "水", "26": "东乡", "27": "纳西", "28": "景颇", "29": "柯尔克孜", "30": "土", "31": "达斡尔",
    "32": "仫佬", "33": "羌", "34": "布朗", "35": "撒拉", "36": "毛南", "37": "仡佬", "38": "锡伯",
    "39": "阿昌", "40": "普米", "41": "塔吉克", "42": "怒", "43": "乌孜别克", "44": "俄罗斯", "45": "鄂温克",
    "46": "德昂", "47": "保安", "48": "裕固", "49": "京", "50": "塔塔尔", "51": "独龙", "52": "鄂伦春",
    "53": "赫哲", "54": "门巴", "55": "珞巴", "56": "基诺", "97": "其他", "98": "外国血统中国籍人士",
}


@dataclass(frozen=True, repr=False)
class Identity:
    """What a resident ID card says. `valid_to` None means 长期 (valid for life).

    repr() and str() mask the name and ID number and leave out everything else personal,
    so an Identity can be printed or logged by mistake without leaking it.
    """

    name: str
    sex: str            # 男, 女, 未知 or 未说明
    nation: str         # 汉, 蒙古, …, as printed on the card
    birth: date
    address: str
    id_number: str
    authority: str      # the issuing public security bureau
    valid_from: date
    valid_to: date | None
    photo: bytes = b""  # the 1,024-byte WLT image exactly as read (a licensed decoder turns it into a picture)
    sex_code: str = ""
    nation_code: str = ""

    @property
    def long_term(self) -> bool:
        return self.valid_to is None

    def __repr__(self) -> str:
        return f"Identity(name={mask_name(self.name)!r}, id_number={mask_id_number(self.id_number)!r}, …)"

    __str__ = __repr__

    def as_dict(self, include_photo: bool = False) -> dict[str, str]:
        """Plain strings for forms and JSON (`birth` as YYYY-MM-DD, `valid_to` may be 长期)."""
        data = {
            "name": self.name, "sex": self.sex, "nation": self.nation, "birth": self.birth.isoformat(),
            "address": self.address, "id_number": self.id_number, "authority": self.authority,
            "valid_from": self.valid_from.isoformat(),
            "valid_to": LONG_TERM if self.valid_to is None else self.valid_to.isoformat(),
        }
        if include_photo:
            data["photo_wlt_base64"] = base64.b64encode(self.photo).decode("ascii")
        return data


def split_text(text: bytes) -> dict[str, str]:
    """The 256-byte text block as field -> string, padding removed. Raises CardDataError."""
    if len(text) != TEXT_SIZE:
        raise CardDataError(f"the card's text block is {len(text)} bytes, not {TEXT_SIZE}")
    fields, at = {}, 0
    for name, size in TEXT_LAYOUT:
        raw = text[at:at + size]
        at += size
        try:
            fields[name] = raw.decode("utf-16-le").rstrip(" \x00")
        except UnicodeDecodeError:
            raise CardDataError(f"the card's {name} field is not UCS-2 text") from None
    return fields


def _parse_date(text: str) -> date | None:
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _required_date(fields: dict[str, str], name: str) -> date:
    value = _parse_date(fields[name])
    if value is None:
        raise CardDataError(f"the card's {name} field is not a date (YYYYMMDD)")
    return value


def _required_text(fields: dict[str, str], name: str) -> str:
    value = fields[name].strip()
    if not value:
        raise CardDataError(f"the card's {name} field is empty")
    return value


def parse_identity(text: bytes, photo: bytes = b"") -> Identity:
    """An Identity from the card's text block (and WLT photo). Raises CardDataError.

    The ID number's check digit is verified, and its birth date must match the card's.
    """
    fields = split_text(text)
    sex_code, nation_code = fields["sex"], fields["nation"]
    if sex_code not in SEXES:
        raise CardDataError("the card's sex field is not a GB/T 2261.1 code (0, 1, 2 or 9)")
    if nation_code not in NATIONS:
        raise CardDataError("the card's nation field is not a GB 3304 code (01-56, 97, 98)")
    birth = _required_date(fields, "birth")
    id_number = fields["id_number"]
    problem = id_number_problem(id_number)
    if problem:
        raise CardDataError(f"the card's {problem}")
    if id_number[6:14] != fields["birth"]:
        raise CardDataError("the card's ID number and birth field disagree on the birth date")
    valid_from = _required_date(fields, "valid_from")
    valid_to = None if fields["valid_to"] == LONG_TERM else _required_date(fields, "valid_to")
    if valid_to is not None and valid_to < valid_from:
        raise CardDataError("the card's validity ends before it begins")
    return Identity(
        name=_required_text(fields, "name"), sex=SEXES[sex_code], nation=NATIONS[nation_code], birth=birth,
        address=_required_text(fields, "address"), id_number=id_number,
        authority=_required_text(fields, "authority"), valid_from=valid_from, valid_to=valid_to,
        photo=bytes(photo), sex_code=sex_code, nation_code=nation_code,
    )


def parse_base_info(data: bytes) -> Identity:
    """The data of a `30 01` reply: text length, photo length (2 bytes each, big-endian),
    the text block and the photo. Raises CardDataError."""
    if len(data) < 4:
        raise CardDataError("the base-info reply has no text and photo lengths")
    text_len, photo_len = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big")
    if text_len != TEXT_SIZE or len(data) != 4 + text_len + photo_len:
        raise CardDataError(f"the base-info reply's lengths do not add up (text {text_len}, photo {photo_len}, "
                            f"{len(data) - 4} bytes present)")
    return parse_identity(data[4:4 + text_len], data[4 + text_len:])
