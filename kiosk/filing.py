"""Filing an application at the kiosk, without a window: which items this kiosk can take,
the form prefilled from the ID card (or typed, without one), what each key does to a
field, the values as the server wants them, and the masked summary the citizen reviews.

Every field of a form can be filled here: from the card, by choosing or ticking, with the
keys (digits, letters), and free Chinese text (an employer, an address, a name typed
without a card) with pinyin (kiosk.pinyin_input): letters compose a syllable, a touch on a
character adds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiosq.base.privacy import mask_field_value
from kiosq.content.model import CARD_FIELDS, Form, FormField, ItemGuide, check_values

KEYED = ("number", "date", "phone", "id_number")  # typed on the keypad
CHOSEN = ("choice", "checkbox")
_ASCII_PATTERN = re.compile(r"^\^?[\[\]0-9A-Za-z\-_{},?+*.\\d]*\$?$")  # digits/letters only, e.g. ^[0-9]{16,19}$


def keyable(field: FormField) -> bool:
    """Whether the kiosk can fill the field: every type can be (kept for forms to come)."""
    return field.type in KEYED or field.type in CHOSEN or field.type == "text"


def uses_pinyin(field: FormField) -> bool:
    """A field typed in Chinese: free text, no pattern of digits and letters."""
    return field.type == "text" and not (field.pattern and _ASCII_PATTERN.fullmatch(field.pattern))


CONTACT = FormField(name="contact_phone", type="phone", label="联系电话", label_en="Contact phone", required=True,
                    hint="办结时短信通知您", hint_en="We text you when it is done")


def contact_field(item: ItemGuide) -> FormField:
    """Where the applicant's phone comes from: the form's own phone field, else one the
    kiosk adds (the server needs a phone to tell the citizen when it is done)."""
    return next((f for f in item.form.fields if f.type == "phone"), CONTACT) if item.form else CONTACT


def kiosk_fields(item: ItemGuide) -> list[FormField]:
    """The fields the kiosk shows, in form order: every field it can fill (and a contact
    phone when the form has none)."""
    if item.form is None:
        return []
    fields = [f for f in item.form.fields if keyable(f)]
    return fields if contact_field(item) is not CONTACT else fields + [CONTACT]


def fileable_here(item: ItemGuide) -> bool:
    """An item with a form whose required fields the kiosk can all fill."""
    return item.form is not None and all(keyable(f) for f in item.form.fields if f.required)


def prefill(item: ItemGuide, card: dict[str, str]) -> dict[str, object]:
    """The form's values taken from the ID card (`Identity.as_dict()`), by field name."""
    values: dict[str, object] = {}
    for field in kiosk_fields(item):
        if field.prefill in CARD_FIELDS and card.get(field.prefill):
            values[field.name] = card[field.prefill]
    return values


def key_into(field: FormField, text: str, key: str) -> str:
    """The field's typed text after one key: a digit or letter, backspace, clear."""
    if key == "backspace":
        return text[:-1]
    if key == "clear":
        return ""
    if len(key) != 1:
        return text
    limit = {"date": 8, "phone": 13, "id_number": 18, "number": 12}.get(field.type, field.max_length or 40)
    if len(text) >= limit:
        return text
    if field.type == "id_number":
        return text + key.upper() if key.isdigit() or (key.upper() == "X" and len(text) == 17) else text
    if field.type in ("date", "phone"):
        return text + key if key.isdigit() else text
    if field.type == "number":
        return text + key if key.isdigit() or (key == "." and "." not in text) else text
    return text + key


def shown(field: FormField, text: str) -> str:
    """Typed text as the field shows it while typing (a date as YYYY-MM-DD so far)."""
    if field.type == "date":
        parts = [text[:4], text[4:6], text[6:8]]
        return "-".join(p for p in parts if p)
    return text


def value_of(field: FormField, raw: object) -> object:
    """The value to send for what was typed or chosen ("" and None: not given)."""
    if raw is None or raw == "":
        return None
    if field.type == "date" and isinstance(raw, str) and re.fullmatch(r"[0-9]{8}", raw):
        return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
    if field.type == "number" and isinstance(raw, str):
        try:
            number = float(raw)
        except ValueError:
            return raw
        return int(number) if number.is_integer() else number
    if field.type == "id_number" and isinstance(raw, str):
        return raw.upper()
    return raw


def values_for_server(item: ItemGuide, entered: dict[str, object]) -> dict[str, object]:
    """The form's values as POST /api/applications wants them (only fields given)."""
    out = {}
    for field in kiosk_fields(item):
        if field is CONTACT:
            continue
        value = value_of(field, entered.get(field.name))
        if value is not None and value is not False:
            out[field.name] = value
    return out


def problems(item: ItemGuide, entered: dict[str, object]) -> dict[str, str]:
    """What must be fixed before review, by field name (content.model.check_values' words;
    the kiosk's own contact phone checked the same way)."""
    found = check_values(item, values_for_server(item, entered))
    if contact_field(item) is CONTACT:
        phone = value_of(CONTACT, entered.get(CONTACT.name))
        if phone is None:
            found[CONTACT.name] = "required"
        else:
            probe = ItemGuide.model_construct(code=item.code, form=Form.model_construct(fields=[CONTACT]))
            found.update(check_values(probe, {CONTACT.name: phone}))
    return found


def applicant(item: ItemGuide, card: dict[str, str] | None, entered: dict[str, object]) -> dict[str, str]:
    """The applicant as the server wants it: from the card, or (no card) from the fields
    the card would have filled, typed; with the contact phone."""
    phone = value_of(contact_field(item), entered.get(contact_field(item).name)) or ""
    if card is not None:
        return {"id_number": card["id_number"], "name": card["name"], "phone": str(phone),
                "address": card.get("address", ""), "source": "card"}
    typed = {f.prefill: str(value_of(f, entered.get(f.name)) or "") for f in kiosk_fields(item) if f.prefill}
    return {"id_number": typed.get("id_number", ""), "name": typed.get("name", ""), "phone": str(phone),
            "address": typed.get("address", ""), "source": "typed"}


@dataclass(frozen=True)
class Line:
    label: str
    value: str


def masked(field: FormField, value: object, lang: str) -> str:
    """A value as the review screen shows it: personal data masked, choices by label."""
    if value is None or value == "":
        return "—"
    if field.type == "checkbox":
        return "✓" if value else "—"
    if field.type == "choice":
        choice = next((c for c in field.choices or () if c.value == value), None)
        return (choice.label_en if lang == "en" else choice.label) if choice else str(value)
    return mask_field_value(field, str(value))


def review_lines(item: ItemGuide, entered: dict[str, object], lang: str) -> list[Line]:
    """One line per field the kiosk filled, masked."""
    values = dict(values_for_server(item, entered))
    values[CONTACT.name] = value_of(CONTACT, entered.get(CONTACT.name))
    return [Line(f.label_en if lang == "en" else f.label, masked(f, values.get(f.name), lang))
            for f in kiosk_fields(item)]

