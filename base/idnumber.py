"""The resident ID number (居民身份证号码, GB 11643): 17 digits, the holder's birth date in
characters 7-14, and an ISO 7064 MOD 11-2 check character last — one check for the card
reader, the forms and the server.
"""

from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The GB 11643 (ISO 7064 MOD 11-2) check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("an ID number's check digit is computed from exactly 17 digits")
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def id_number_problem(id_number: str) -> str | None:
    """Why `id_number` is not a valid 18-character resident ID number, or None if it is.

    Checks the form (17 ASCII digits and a digit or X), the birth date inside it, and the
    check digit. The reason never repeats the number.
    """
    if len(id_number) != 18 or not id_number.isascii() or not id_number[:17].isdigit() \
            or id_number[17] not in "0123456789X":
        return "ID number is not 17 digits followed by a digit or X"
    if not _is_date(id_number[6:14]):
        return "ID number does not hold a valid birth date"
    if id_check_digit(id_number[:17]) != id_number[17]:
        return "ID number's check digit is wrong (GB 11643 mod 11-2)"
    return None


def id_number_valid(id_number: str) -> bool:
    return id_number_problem(id_number) is None


def _is_date(yyyymmdd: str) -> bool:
    try:
        date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return True
