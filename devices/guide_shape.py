"""The shape of an item guide as the devices print it (a slip, an A4 page): what
kiosq.content.document.Document has, written as protocols because devices does not import
content. Members are read-only, so the frozen dataclass matches."""

from collections.abc import Sequence
from typing import Protocol


class GuideCheck(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def note(self) -> str: ...


class GuideSection(Protocol):
    @property
    def heading(self) -> str: ...
    @property
    def lines(self) -> Sequence[str]: ...
    @property
    def checklist(self) -> Sequence[GuideCheck]: ...


class GuideDocument(Protocol):
    """kiosq.content.document.Document, as guide_slip() and guide_pdf() read it."""

    @property
    def title(self) -> str: ...
    @property
    def subtitle(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def sections(self) -> Sequence[GuideSection]: ...
    @property
    def lang(self) -> str: ...

