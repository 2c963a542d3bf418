"""Looking up an application's progress at the kiosk (进度查询): by its number and the lookup
code (查询密码) on the receipt, or by the ID card itself. State in Kivy
properties the progress screens bind to (`app.progress.x`); lookups run off the UI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, ListProperty, StringProperty

from kiosq.kiosk.background import in_background
from kiosq.kiosk.hall_client import ServerError, ServerRefused

if TYPE_CHECKING:
    from kiosq.kiosk.app import KiosqApp

NUMBER_MAX, CODE_MAX = 40, 8  # a lookup code: 8 letters and digits (dashes not typed)


class ProgressFlow(EventDispatcher):
    """The two typed inputs and which is being typed ("number" or "code"), the lookup in
    flight, what the screen says, and the applications found (personal: wiped with the
    session)."""

    number = StringProperty("")
    code = StringProperty("")
    focus = StringProperty("number")
    busy = BooleanProperty(False)
    message = StringProperty("")
    results = ListProperty()

    def __init__(self, app: KiosqApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app

    def open(self) -> None:
        self.number = self.code = self.message = ""
        self.focus, self.results = "number", []
        self.app.card_state = "waiting" if self.app.cards is not None else "no_reader"
        self.app.show("progress")

    def key(self, key: str) -> None:
        """A key on the screen's keyboard, into the focused input."""
        name = "code" if self.focus == "code" else "number"
        text = getattr(self, name)
        if key == "backspace":
            text = text[:-1]
        elif key == "clear":
            text = ""
        elif len(key) == 1 and (key.isalnum() or (key == "-" and name == "number")):
            limit = CODE_MAX if name == "code" else NUMBER_MAX
            if len(text) < limit:
                text += key.upper()
        elif key == "space":
            return
        setattr(self, name, text)
        if name == "number" and len(text) and self.message:
            self.message = ""

    def search(self) -> None:
        """Look the typed number up, with the lookup code."""
        server = self.app.server
        if server is None or self.busy:
            return
        number, code = self.number.strip(), self.code.strip()
        if not number or len(code) != CODE_MAX:
            self.message = self.app.msg["progress_wrong"]
            return
        self._lookup(lambda: [server.application(number, code)])

    def by_card(self, id_number: str) -> None:
        """Look up the applications of the card placed on the reader."""
        server = self.app.server
        if server is None or self.busy:
            return
        self._lookup(lambda: server.lookup_by_id(id_number))

    def _lookup(self, call: Callable[[], list[dict[str, Any]]]) -> None:
        self.busy, self.message = True, self.app.msg["progress_searching"]
        in_background(lambda: lookup(call), self._found, "progress")

    def _found(self, found: dict[str, Any]) -> None:
        self.busy = False
        if self.app.manager.current != "progress":
            return  # the citizen left (or the session was wiped)
        if "error" in found:
            kind, minutes = found["error"], found.get("minutes", 1)
            self.message = self.app.msg[kind].format(n=minutes)
            return
        self.message = "" if found["applications"] else self.app.msg["progress_none"]
        if found["applications"]:
            self.results = found["applications"]
            self.code = ""
            self.app.show("progress_result")

    def in_session(self) -> bool:
        return bool(self.results)

    def forget(self) -> None:
        """What was typed and found: gone."""
        self.number = self.code = self.message = ""
        self.results = []


def lookup(call: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """On a worker: a progress lookup; {"applications": [...]} or {"error": message key}."""
    try:
        return {"applications": list(call())}
    except ServerRefused as exc:  # 403 no match, 422 not a valid number, 429 too many tries
        if exc.status == 429:
            minutes = max(1, round((exc.retry_after or 60) / 60))
            return {"error": "progress_throttled", "minutes": minutes}
        return {"error": "progress_wrong"}
    except ServerError:
        return {"error": "progress_unreachable"}
