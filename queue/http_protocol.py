"""uvicorn's httptools protocol with a deadline for the request head: a connection that has
not sent a whole request head within `head_seconds` of opening (or of starting its next
request) is closed. uvicorn arms its keep-alive timer only after a first response, so a
connection that sends nothing, or a head a byte a minute, would stay open for ever: about a
thousand of them use up a process's file descriptors (issue #15). Everything else is
uvicorn's own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_SECONDS = 10.0
log = logging.getLogger("kiosq.server")


def with_head_deadline(head_seconds: float = HEAD_SECONDS) -> type[asyncio.Protocol]:
    """The protocol class to give uvicorn.Config(http=...)."""

    class HeadDeadline(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._head_timer is None:
                self._arm()  # the next request on a kept-alive connection: its head has a deadline too

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(head_seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _too_slow(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeadDeadline
