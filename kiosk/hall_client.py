"""The kiosk's client for the hall server, over HTTP only (the kiosk never imports
kiosq.queue): services with their waiting counts, taking a ticket, filing an application,
looking applications up and rating the self-service session.

Every request has a timeout, and every failure is a `ServerError` whose text says what
went wrong: `ServerUnreachable` (no answer: the network or the server is down) or
`ServerRefused` (a 4xx, with the server's own `detail` passed through).

A ticket is asked for with an Idempotency-Key that the caller creates once per confirm
(`new_key()`) and sends again on every retry of that confirm: the server answers a repeated
key with the same ticket, so a retry never issues a second one. Applications work the same
way, with the key kept in the terminal's outbox (kiosk/outbox.py).

Requests about applications carry personal data (an ID number, a name, a phone) and lookup
codes: none of it goes into an exception's text or a log line.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote

import requests

TIMEOUT = 3.0  # seconds, per request: a citizen is standing at the screen
RETRIES = 1  # a ticket request that got no answer is sent once more with the same key


class ServerError(Exception):
    """The hall server could not do what was asked; str() says why, in plain words."""


class ServerUnreachable(ServerError):
    """No answer: the server is down, the network is away, or it answered too late."""


class ServerUntrusted(ServerUnreachable):
    """An https server whose certificate is not signed by the hall CA this terminal pinned
    (an impostor, or a hall that made a new CA), or no hall CA pinned at all: nothing is
    sent to it. A kind of unreachable: flows and the outbox treat it so."""


def verify_for(base_url: str, ca_file: Path | None) -> str | bool:
    """What requests verifies an https server against: the pinned hall CA, never the
    system's (certifi) and never nothing. Plain http (loopback, a demo): True, unused."""
    if not base_url.startswith("https://"):
        return True
    if ca_file is None or not Path(ca_file).is_file():
        return str(NO_CA)
    return str(ca_file)


NO_CA = Path("/nonexistent/kiosq-no-hall-ca-pinned.pem")  # requests fails on it: never falls back to certifi


class ServerRefused(ServerError):
    """The server answered with an error; `code` and `detail` are its own words."""

    retry_after: int | None = None  # seconds, from a 429's Retry-After header

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail or code or f"HTTP {status}")
        self.status, self.code, self.detail = status, code, detail


class Hours(TypedDict, total=False):
    """The hall's opening hours now: local times with their offset (None: not today)."""

    open: bool
    opens_at: str | None
    closes_at: str | None


class Hall(Hours, total=False):
    """GET /api/health: the hall, its business day and its opening hours now."""

    ok: bool
    hall: str
    business_day: str
    schema_version: int
    last_event_id: int


class Ticket(TypedDict, total=False):
    """POST /api/tickets: the ticket issued."""

    id: str
    number: str
    service: str
    ahead: int
    position: int | None
    eta_minutes: int | None
    issued_at: str
    follow_url: str


class HeartbeatReply(TypedDict, total=False):
    """POST /api/terminals/heartbeat: what the server tells a terminal back."""

    server_time: str
    terminal: str
    content: dict[str, Any] | None  # the published bundle's manifest
    hours: Hours
    heartbeat_seconds: float


def new_key() -> str:
    """A fresh Idempotency-Key, for one confirmed ticket (and all retries of it)."""
    return str(uuid.uuid4())


class HallClient:
    """The hall server at `base_url`, as a terminal holding `token`. Safe to use from
    worker threads (one session, requests' connection pool)."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = TIMEOUT,
                 ca_file: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.ca_file = ca_file
        self._session = requests.Session()
        self._session.verify = verify_for(self.base_url, ca_file)
        self._session.trust_env = False  # no REQUESTS_CA_BUNDLE or proxy from the environment

    def close(self) -> None:
        self._session.close()

    def _untrusted(self) -> ServerUntrusted:
        if self._session.verify == str(NO_CA):
            return ServerUntrusted(f"no hall CA is pinned for {self.base_url}: enroll this terminal with "
                                   "`kiosq enroll CODE --server URL --ca-fingerprint SHA256:…`; nothing was sent")
        return ServerUntrusted(f"refused the server at {self.base_url}: its certificate is not signed by the hall CA "
                               f"this terminal pinned ({self.ca_file}); it may be an impostor, or the hall made a "
                               "new CA (enroll again); nothing was sent")

    def hall(self) -> Hall:
        """GET /api/health: the hall's name and business day."""
        return self._request("GET", "/api/health")

    def services(self) -> list[dict[str, Any]]:
        """GET /api/services: code, name, name_en, waiting, eta_minutes, open_windows..."""
        return self._request("GET", "/api/services")

    def windows(self) -> list[dict[str, Any]]:
        """GET /api/windows: number, name, name_en, services, state."""
        return self._request("GET", "/api/windows")

    def take_ticket(self, service: str, key: str) -> Ticket:
        """POST /api/tickets for `service` with Idempotency-Key `key`; the ticket
        {id, number, service, ahead, position, eta_minutes, issued_at, follow_url, ...}.
        A request that got no answer is retried with the same key."""
        headers = {"Idempotency-Key": key}
        for attempt in range(RETRIES + 1):
            try:
                return self._request("POST", "/api/tickets", json={"service": service}, headers=headers)
            except ServerUnreachable:
                if attempt == RETRIES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        """GET /api/tickets/{id}: status and position."""
        return self._request("GET", f"/api/tickets/{ticket_id}")

    def heartbeat(self, body: dict[str, Any]) -> HeartbeatReply:
        """POST /api/terminals/heartbeat: this terminal's state (kiosk/heartbeat.py). The
        answer: {server_time, terminal, content: published bundle | None, hours: {open,
        opens_at, closes_at}, heartbeat_seconds}. A revoked token: ServerRefused 401."""
        return self._request("POST", "/api/terminals/heartbeat", json=body)

    def file_application(self, item: str, applicant: dict[str, Any], values: dict[str, Any], key: str,
                         provisional_no: str | None = None) -> dict[str, Any]:
        """POST /api/applications with Idempotency-Key `key`: file an application for item
        code `item`. `applicant` is {id_number, name, phone, source: "card"|"typed",
        address?}; `values` the form's values by field name; `provisional_no` the number a
        receipt already carries, if any. The same key (or provisional number) with the same
        body returns the same application. Returns the server's 201 body {tracking_no,
        status, promised_date, legal_date, submitted_at, item, item_name, department,
        provisional_no, lookup_code}: the lookup code for the receipt, never to be stored.
        Sent once: kiosk/outbox.py's Sender does the retrying."""
        body: dict[str, Any] = {"item": item, "applicant": applicant, "values": values}
        if provisional_no is not None:
            body["provisional_no"] = provisional_no
        return self._request("POST", "/api/applications", json=body, headers={"Idempotency-Key": key})

    def lookup_by_id(self, id_number: str) -> list[dict[str, Any]]:
        """POST /api/applications/lookup: the applications of the person with this ID
        number (read from the card), newest first, each as GET application() shows it.
        A 429 (too many lookups at this terminal) is a ServerRefused with `retry_after`."""
        return self._request("POST", "/api/applications/lookup", json={"id_number": id_number})["applications"]

    def application(self, number: str, code: str) -> dict[str, Any]:
        """POST /api/applications/{number}/lookup {code}: one application's status and
        history by its tracking number (or the provisional number on an offline receipt) and
        the lookup code on the receipt. A wrong code or an unknown number: ServerRefused 403
        (code "no_match"); too many wrong tries: ServerRefused 429 with `retry_after` seconds."""
        return self._request("POST", f"/api/applications/{quote(number, safe='')}/lookup", json={"code": code})

    def rating_reasons(self) -> dict[str, Any]:
        """GET /api/ratings/reasons (public): {levels: [{level, name, name_en, bad}],
        reasons: [{zh, en}]}, the hall's preset reasons of a 差评."""
        return self._request("GET", "/api/ratings/reasons")

    def rate_session(self, session: str, level: int, reasons: list[str]) -> dict[str, Any]:
        """POST /api/kiosk/rating: the self-service session `session` (the kiosk's random id
        of it) rated `level` 1..5 with `reasons`; once per session (ServerRefused 409
        `already_rated`), and a 差评 (1, 2) needs a reason (422 `reason_required`)."""
        return self._request("POST", "/api/kiosk/rating", json={"session": session, "level": level,
                                                                "reasons": reasons})

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.base_url + path
        try:
            resp = self._session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise ServerUnreachable(f"the hall server at {self.base_url} did not answer within "
                                    f"{self.timeout:g} s") from exc
        except requests.exceptions.SSLError:
            raise self._untrusted() from None
        except requests.RequestException as exc:
            raise ServerUnreachable(f"cannot reach the hall server at {self.base_url}") from exc
        except OSError:  # requests' own, before connecting: the pinned CA file is not there
            raise self._untrusted() from None
        if resp.status_code >= 400:
            code, detail = "", ""
            try:
                body = resp.json()
                code, detail = str(body.get("error", "")), str(body.get("detail", ""))
            except (ValueError, AttributeError):
                detail = resp.text[:200]
            if resp.status_code >= 500:
                raise ServerError(f"the hall server failed (HTTP {resp.status_code}){': ' + detail if detail else ''}")
            refused = ServerRefused(resp.status_code, code, detail)
            retry_after = resp.headers.get("Retry-After", "")
            if retry_after.isdigit():
                refused.retry_after = int(retry_after)
            raise refused
        try:
            return resp.json()
        except ValueError as exc:
            raise ServerError(f"the hall server sent an answer that is not JSON (HTTP {resp.status_code})") from exc
