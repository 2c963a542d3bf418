"""Item guides (办事指南) and the forms of items that can be filed at a terminal.

The model of docs/catalog-format.md, checked with pydantic. Every problem is reported as
one line that names the item's code and the field: `GA-HJ-001: materials[2].kind: …`.
`check_values` checks what a citizen typed against an item's form.
"""

import math
import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

# Re-exported (`as`): the server checks an applicant's ID number with this name.
from kiosq.base.idnumber import id_number_valid as id_number_valid

FORMAT = 1
ITEM_TYPES = ("行政许可", "行政确认", "行政给付", "行政征收", "行政裁决", "行政奖励", "其他行政权力", "公共服务")
ONLINE_LEVELS = ("零上门", "最多跑一次", "一次上门", "两次上门")
CARD_FIELDS = ("name", "sex", "nation", "birth", "address", "id_number")  # what an ID card gives a form

Text = Annotated[str, Field(min_length=1)]
PHONE = re.compile(r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$")


class CatalogError(Exception):
    """A catalog that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Material(_Strict):
    name: Text
    kind: Literal["original", "copy", "original_and_copy"]
    count: Annotated[int, Field(ge=1, le=99)]
    required: bool
    note: str


class Fee(_Strict):
    name: Text
    amount: Annotated[str, Field(pattern=r"^[0-9]{1,7}\.[0-9]{2}$")]
    basis: Text

    @property
    def yuan(self) -> Decimal:
        return Decimal(self.amount)


class Choice(_Strict):
    value: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]
    label: Text
    label_en: Text


class FormField(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    type: Literal["text", "number", "date", "choice", "phone", "id_number", "checkbox"]
    label: Text
    label_en: Text
    required: bool = False
    hint: str = ""
    hint_en: str = ""
    prefill: Literal["name", "sex", "nation", "birth", "address", "id_number"] | None = None
    min_length: Annotated[int, Field(ge=0)] | None = None
    max_length: Annotated[int, Field(ge=1)] | None = None
    pattern: str | None = None
    min: float | date | None = None
    max: float | date | None = None
    choices: list[Choice] | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _limits_fit_the_type(self) -> "FormField":
        allowed = {"text": {"min_length", "max_length", "pattern"}, "number": {"min", "max"},
                   "date": {"min", "max"}, "choice": {"choices"}}.get(self.type, set())
        for limit in ("min_length", "max_length", "pattern", "min", "max", "choices"):
            if getattr(self, limit) is not None and limit not in allowed:
                raise ValueError(f"{limit} does not apply to a {self.type} field")
        if self.type == "choice" and (not self.choices or len(self.choices) < 2):
            raise ValueError("a choice field needs at least two choices")
        if self.choices and len({c.value for c in self.choices}) != len(self.choices):
            raise ValueError("two choices have the same value")
        kind = date if self.type == "date" else float
        for limit in ("min", "max"):
            value = getattr(self, limit)
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"{limit} of a {self.type} field must be a {'date' if kind is date else 'number'}")
        if self.min is not None and self.max is not None and self.min > self.max:  # type: ignore[operator]  # one kind: checked above
            raise ValueError("min is above max")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ValueError("min_length is above max_length")
        return self


class Form(_Strict):
    fields: Annotated[list[FormField], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> "Form":
        names = [f.name for f in self.fields]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"field names used twice: {', '.join(twice)}")
        return self


class ItemGuide(_Strict):
    code: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{0,5}(-[A-Z0-9]{1,6}){1,3}$")]
    name: Text
    name_en: Text
    department: Text
    category: Text
    type: Literal[ITEM_TYPES]  # type: ignore[valid-type]
    basis: Annotated[list[Text], Field(min_length=1)]
    conditions: Text
    materials: Annotated[list[Material], Field(min_length=1)]
    steps: Annotated[list[Text], Field(min_length=1)]
    legal_days: Annotated[int, Field(ge=0, le=3650)]
    promised_days: Annotated[int, Field(ge=0, le=3650)]
    fees: list[Fee]
    location: Text
    phone: Annotated[str, Field(pattern=r"^[0-9][0-9 -]{2,30}$")]
    online_level: Literal[ONLINE_LEVELS]  # type: ignore[valid-type]
    service: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,16}$")]
    keywords: list[Text]
    form: Form | None

    @model_validator(mode="after")
    def _promise_within_the_law(self) -> "ItemGuide":
        if self.promised_days > self.legal_days:
            raise ValueError(f"promised_days ({self.promised_days}) is longer than legal_days ({self.legal_days}); "
                             "a hall promises at most what the law allows")
        return self

    @property
    def fileable(self) -> bool:
        return self.form is not None

    @property
    def free(self) -> bool:
        return not self.fees


def parse_catalog(data: object, source: str = "catalog") -> list[ItemGuide]:
    """Items from one import file's JSON, or CatalogError listing every problem."""
    if not isinstance(data, dict):
        raise CatalogError([f"{source}: the file must hold a JSON object with \"format\" and \"items\""])
    problems = []
    if data.get("format") != FORMAT:
        problems.append(f"{source}: format: must be {FORMAT} (this kiosq reads catalog format {FORMAT}), "
                        f"not {data.get('format')!r}")
    extra = sorted(set(data) - {"format", "items"})
    if extra:
        problems.append(f"{source}: unknown keys at the top: {', '.join(extra)}")
    raw_items = data.get("items")
    if not isinstance(raw_items, list):
        raise CatalogError(problems + [f"{source}: items: must be a list of item guides"])
    items = []
    for i, raw in enumerate(raw_items):
        code = raw.get("code") if isinstance(raw, dict) and isinstance(raw.get("code"), str) else f"items[{i}]"
        try:
            items.append(ItemGuide.model_validate(raw))
        except ValidationError as exc:
            problems += [f"{source}: {code}: {_where(err['loc'])}: {_what(err)}" for err in exc.errors()]
    if problems:
        raise CatalogError(problems)
    return items


def check_catalog(items: list[ItemGuide]) -> None:
    """What no single item can see: codes must be unique across files."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item.code] = seen.get(item.code, 0) + 1
    twice = sorted(code for code, n in seen.items() if n > 1)
    if twice:
        raise CatalogError([f"{code}: code: used by {seen[code]} items; codes must be unique" for code in twice])


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("function-after",) and not str(part).startswith(("literal[", "function-")):
            out += f".{part}" if out else str(part)
    return out or "(item)"


def _what(err: ErrorDetails) -> str:
    if err["type"] == "missing":
        return "required, missing"
    if err["type"] == "extra_forbidden":
        return "unknown key (see docs/catalog-format.md)"
    return err["msg"].removeprefix("Value error, ")


def check_values(item: ItemGuide, values: dict[str, Any]) -> dict[str, str]:
    """Problems with what was typed into an item's form: {field name: what is wrong}."""
    if item.form is None:
        return {"": f"{item.code} cannot be filed at a terminal"}
    problems = {}
    known = {f.name for f in item.form.fields}
    for name in sorted(set(values) - known):
        problems[name] = "not a field of this form"
    for field in item.form.fields:
        value = values.get(field.name)
        if value is None or value == "" or value is False:  # not `in`: 0 == False
            if field.required:
                problems[field.name] = "must be ticked" if field.type == "checkbox" else "required"
            continue
        problem = _check_value(field, value)
        if problem:
            problems[field.name] = problem
    return problems


def _check_value(field: FormField, value: object) -> str | None:
    if field.type == "checkbox":
        return None if isinstance(value, bool) else "must be true or false"
    if field.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        try:
            if not math.isfinite(value):
                return "must be a number"
            if abs(value) > 1e15:
                return "is too large"
        except OverflowError:  # 10**400 cannot even be made a float
            return "is too large"
        if isinstance(field.min, float) and value < field.min:  # a number field's limits are floats
            return f"must be at least {field.min:g}"
        if isinstance(field.max, float) and value > field.max:
            return f"must be at most {field.max:g}"
        return None
    if not isinstance(value, str):
        return "must be text"
    if field.type == "text":
        if field.min_length is not None and len(value) < field.min_length:
            return f"must be at least {field.min_length} characters"
        if field.max_length is not None and len(value) > field.max_length:
            return f"must be at most {field.max_length} characters"
        if field.pattern is not None and not re.fullmatch(field.pattern, value):
            return "does not have the expected form"
        return None
    if field.type == "date":
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return "must be a date, YYYY-MM-DD"
        if isinstance(field.min, date) and day < field.min:
            return f"must be on or after {field.min}"
        if isinstance(field.max, date) and day > field.max:
            return f"must be on or before {field.max}"
        return None
    if field.type == "choice":
        return None if value in {c.value for c in field.choices or ()} else "not one of the choices"
    if field.type == "phone":
        if PHONE.fullmatch(value.replace(" ", "")):
            return None
        return "must be a mobile (11 digits) or a landline with its area code"
    if field.type == "id_number":
        return None if id_number_valid(value.upper()) else "not a valid resident ID number (check its last character)"
    return None
