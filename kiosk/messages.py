"""Every string the kiosk shows, from messages/<lang>.json; both files hold the same keys."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

FOLDER = Path(__file__).parent / "messages"


@cache
def messages(lang: str) -> dict[str, str]:
    return json.loads((FOLDER / f"{lang}.json").read_text(encoding="utf-8"))


def text(lang: str, key: str, **values: object) -> str:
    template = messages(lang)[key]
    return template.format(**values) if values else template
