"""Printing off the UI thread: the worker builds an item guide slip (or an A4 guide), asks
the printer and prints; the outcome comes back as a message key for the screen."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from kiosq.content.document import guide_document
from kiosq.content.model import ItemGuide
from kiosq.devices.printer import (
    CoverOpen,
    PaperOut,
    Printer,
    PrinterError,
    PrinterOffline,
    PrinterTimeout,
    PrinterUnavailable,
)
from kiosq.devices.receipts import SlipBuilder, guide_slip

log = logging.getLogger(__name__)

_last_lock = threading.Lock()
_last: dict[str, bytes | None] = {"slip": None}


def last_slip() -> bytes | None:
    """The bytes of the last slip this kiosk printed (kept in memory only) for the maintenance
    screen's preview, or None. A slip for a citizen (ticket, receipt) is never kept: it holds
    their tracking number, masked name, lookup code or the ticket's secret id, and the session's
    end wipes all of that; printing one clears the preview, so an older slip never stands in
    for it."""
    with _last_lock:
        return _last["slip"]

OUTCOMES: dict[type[PrinterError], str] = {
    PaperOut: "print_paper_out",
    CoverOpen: "print_cover_open",
    PrinterUnavailable: "print_missing",
    PrinterOffline: "print_offline",
    PrinterTimeout: "print_offline",
}


def print_guide(printer: Printer | None, item: ItemGuide, lang: str) -> str:
    """Print the guide slip; the message key of what happened. Blocks: call it from a worker."""
    return print_bytes(printer, lambda p: guide_slip(guide_document(item, lang), p.paper),
                       f"guide slip for {item.code}")


def print_bytes(printer: Printer | None, build: Callable[[Printer], bytes], what: str, *,
                private: bool = False) -> str:
    """Build a slip for `printer` and print it; the message key of what happened. Blocks:
    call it from a worker. Never raises: a device fault must never take the kiosk down.
    `private`: the slip is a citizen's (see last_slip) and is not kept for the preview."""
    if printer is None:
        return "print_missing"
    try:
        slip = build(printer)
        status = printer.print_slip(slip)
    except PrinterError as e:
        log.warning("%s not printed: %s", what, e)
        return next((key for kind, key in OUTCOMES.items() if isinstance(e, kind)), "print_failed")
    except Exception:
        log.exception("%s failed", what)
        return "print_failed"
    with _last_lock:
        _last["slip"] = None if private else slip
    return "print_done_near_end" if status.paper == "near_end" else "print_done"


def test_slip(printer: Printer, lines: list[str]) -> bytes:
    """A short test slip (maintenance): the given lines, then a rule and a cut."""
    builder = SlipBuilder(printer.paper, printer.font).init()
    for line in lines:
        builder.paragraph(line)
    return builder.rule().feed(2).cut().build()


def print_test(printer: Printer | None, lines: list[str]) -> str:
    """Print the test slip; the message key of what happened. Blocks: call it from a worker."""
    return print_bytes(printer, lambda p: test_slip(p, lines), "test slip")


def print_a4_guide(uri: str | None, item: ItemGuide, lang: str, hall: str) -> str:
    """Print the item's guide on A4: `cups:QUEUE` through CUPS, `file:/path/out.pdf` into a
    file (written whole, then renamed into place). The message key of what happened;
    blocks (call it from a worker) and never raises."""
    from kiosq.devices.documents import A4Error, guide_pdf, print_pdf
    from kiosq.devices.uri import DeviceURIError, parse_uri

    if not uri:
        return "print_a4_none"
    try:
        target = parse_uri(uri)
        if target.scheme not in ("cups", "file"):
            raise DeviceURIError(f"an A4 printer is cups:QUEUE or file:/path/out.pdf, not {uri}")
        pdf = guide_pdf(guide_document(item, lang), hall, datetime.now())
        if target.scheme == "cups":
            job = print_pdf(pdf, target.target, f"{item.code} {item.name}")
            log.info("A4 guide for %s sent to CUPS queue %s as job %s", item.code, target.target, job)
        else:
            path = Path(target.target)
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(pdf)
            os.replace(partial, path)
    except (A4Error, DeviceURIError, OSError) as e:
        log.warning("A4 guide for %s not printed: %s", item.code, e)
        return "print_a4_failed"
    except Exception:
        log.exception("A4 guide for %s failed", item.code)
        return "print_a4_failed"
    return "print_a4_done"
