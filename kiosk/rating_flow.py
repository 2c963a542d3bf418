"""好差评 at the kiosk: the one-tap rating of the self-service session, offered on the done
screens (a ticket, a printed guide, a filed application) and sent as channel `kiosk`
(POST /api/kiosk/rating) under a random id that lives as long as the session. Optional and
never in the way: nobody taps, nothing is sent; a failure says so in small words at most."""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

from kivy.event import EventDispatcher
from kivy.properties import ListProperty, NumericProperty, StringProperty

from kiosq.kiosk.background import in_background
from kiosq.kiosk.hall_client import HallClient, ServerError, ServerRefused

if TYPE_CHECKING:
    from kiosq.kiosk.app import KiosqApp

log = logging.getLogger(__name__)

LEVELS = (5, 4, 3, 2, 1)  # as the rating devices show them: 非常满意 first
BAD = (1, 2)  # 差评: a reason is asked for
# The server's default reasons (queue/config.py), for when the hall cannot be asked.
FALLBACK_REASONS = (
    {"zh": "等候时间过长", "en": "Waited too long"},
    {"zh": "服务态度不好", "en": "Unfriendly service"},
    {"zh": "办事效率低", "en": "Slow service"},
    {"zh": "一次性告知不清", "en": "Not told everything at once"},
    {"zh": "要求提供额外材料", "en": "Asked for extra documents"},
    {"zh": "设施不便", "en": "Poor facilities"},
)


def fetch_reasons(server: HallClient) -> list[dict[str, str]] | None:
    """The hall's preset reasons of a 差评 ({zh, en}), None if the server cannot say."""
    try:
        answer = server.rating_reasons()
    except ServerError as exc:
        log.warning("rating reasons not loaded: %s", exc)
        return None
    reasons = answer.get("reasons") if isinstance(answer, dict) else None
    if not isinstance(reasons, list):
        return None
    found = [{"zh": r["zh"], "en": str(r.get("en") or r["zh"])} for r in reasons
             if isinstance(r, dict) and isinstance(r.get("zh"), str) and r["zh"]]
    return found or None


def send_rating(server: HallClient, session: str, level: int, reasons: list[str]) -> bool:
    """POST the session's rating; whether the hall has it (409 already_rated: it has)."""
    try:
        server.rate_session(session, level, reasons)
    except ServerRefused as exc:
        if exc.code == "already_rated":
            return True
        log.warning("kiosk rating refused: HTTP %s %s", exc.status, exc.code)
        return False
    except ServerError as exc:
        log.warning("kiosk rating not sent: %s", exc)
        return False
    return True


class RatingFlow(EventDispatcher):
    """`state`: "" (the five levels offered), "reasons" (a 差评 tapped: which reason?),
    "thanks" (rated: for the rest of the session) or "failed" (it could not be sent).
    `reasons` are the hall's, fetched once and kept (they are the hall's, not the citizen's)."""

    state = StringProperty("")
    level = NumericProperty(0)
    reasons = ListProperty()

    def __init__(self, app: KiosqApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.session: str | None = None  # the session's random id, made when it first rates
        self._loading = False

    def load_reasons(self) -> None:
        """Ask the hall for its reasons once, on a worker thread (again only if it failed)."""
        server = self.app.server
        if server is None or self.reasons or self._loading:
            return
        self._loading = True
        in_background(lambda: fetch_reasons(server), self._reasons_loaded, "rating-reasons")

    def _reasons_loaded(self, reasons: list[dict[str, str]] | None) -> None:
        self._loading = False
        if reasons:
            self.reasons = reasons

    def shown_reasons(self) -> list[dict[str, str]]:
        return list(self.reasons) or list(FALLBACK_REASONS)

    def rate(self, level: int) -> None:
        """A level tapped: 3 to 5 is sent at once; 1 or 2 asks for a reason first."""
        if self.state not in ("", "reasons") or self.app.server is None or level not in LEVELS:
            return
        if level in BAD:
            self.level, self.state = level, "reasons"
            self.load_reasons()
            self.app.say(self.app.msg["say_rating_reasons"])
            return
        self._send(level, [])

    def give_reason(self, reason: str) -> None:
        """A reason tapped for the 差评 chosen: sent."""
        if self.state == "reasons" and reason:
            self._send(int(self.level), [reason])

    def change_level(self) -> None:
        """Back from the reasons to the five levels (a 差评 tapped by mistake)."""
        if self.state == "reasons":
            self.level, self.state = 0, ""

    def _send(self, level: int, reasons: list[str]) -> None:
        server = self.app.server
        assert server is not None
        if self.session is None:
            self.session = secrets.token_urlsafe(16)
        session = self.session
        self.level, self.state = level, "thanks"
        self.app.say(self.app.msg["say_rating_thanks"])
        in_background(lambda: send_rating(server, session, level, reasons),
                      lambda sent: self._sent(session, sent), "rating-send")

    def _sent(self, session: str, sent: bool) -> None:
        if session != self.session:
            return  # the session ended meanwhile: nobody is there to tell
        if not sent:
            self.state = "failed"

    def forget(self) -> None:
        """The session's end: its id and its rating are gone; the next citizen may rate."""
        self.session = None
        self.level, self.state = 0, ""
