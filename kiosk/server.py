"""The kiosk's client for the hall server, over HTTP only (the kiosk never imports
kiosq.queue): services with their waiting counts, and taking a ticket.

Every request has a timeout, and every failure is a `ServerError` whose text says what
went wrong: `ServerUnreachable` (no answer: the network or the server is down) or
`ServerRefused` (a 4xx, with the server's own `detail` passed through).

A ticket is asked for with an Idempotency-Key that the caller creates once per confirm
(`new_key()`) and sends again on every retry of that confirm: the server answers a repeated
key with the same ticket, so a retry never issues a second one.
"""

from __future__ import annotations

import uuid
from typing import Any

import requests

TIMEOUT = 3.0  # seconds, per request: a citizen is standing at the screen
RETRIES = 1  # a ticket request that got no answer is sent once more with the same key


class ServerError(Exception):
    """The hall server could not do what was asked; str() says why, in plain words."""


class ServerUnreachable(ServerError):
    """No answer: the server is down, the network is away, or it answered too late."""


class ServerRefused(ServerError):
    """The server answered with an error; `code` and `detail` are its own words."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail or code or f"HTTP {status}")
        self.status, self.code, self.detail = status, code, detail


def new_key() -> str:
    """A fresh Idempotency-Key, for one confirmed ticket (and all retries of it)."""
    return str(uuid.uuid4())


class HallClient:
    """The hall server at `base_url`, as a terminal holding `token`. Safe to use from
    worker threads (one session, requests' connection pool)."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def hall(self) -> dict[str, Any]:
        """GET /api/health: the hall's name and business day."""
        return self._request("GET", "/api/health")

    def services(self) -> list[dict[str, Any]]:
        """GET /api/services: code, name, name_en, waiting, eta_minutes, open_windows..."""
        return self._request("GET", "/api/services")

    def windows(self) -> list[dict[str, Any]]:
        """GET /api/windows: number, name, name_en, services, state."""
        return self._request("GET", "/api/windows")

    def take_ticket(self, service: str, key: str) -> dict[str, Any]:
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
        except requests.RequestException as exc:
            raise ServerUnreachable(f"cannot reach the hall server at {self.base_url}") from exc
        if resp.status_code >= 400:
            code, detail = "", ""
            try:
                body = resp.json()
                code, detail = str(body.get("error", "")), str(body.get("detail", ""))
            except (ValueError, AttributeError):
                detail = resp.text[:200]
            if resp.status_code >= 500:
                raise ServerError(f"the hall server failed (HTTP {resp.status_code}){': ' + detail if detail else ''}")
            raise ServerRefused(resp.status_code, code, detail)
        try:
            return resp.json()
        except ValueError as exc:
            raise ServerError(f"the hall server sent an answer that is not JSON (HTTP {resp.status_code})") from exc
