"""How personal data is shown on screens and paper: masked, the same way everywhere.

An ID number keeps its first 3 and last 4 characters (110***********1234: enough to tell
two cards apart, not enough to use); a name keeps its first and last character (王*明,
欧阳小明 -> 欧**明; a two-character name keeps the first: 王*).
"""


def mask_id_number(id_number: str) -> str:
    number = "".join(id_number.split()).upper()
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def mask_name(name: str) -> str:
    name = name.strip()
    if len(name) > 2:
        return name[0] + "*" * (len(name) - 2) + name[-1]
    return name[:1] + "*" * (len(name) > 0)
