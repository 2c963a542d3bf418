"""Outbox benchmark (issue 7, offline): how long a citizen waits for the tracking number when
the server is up, and how fast a terminal's backlog drains when the server comes back.

    .venv/bin/python bench/outbox.py                  # 200 applications, 3 runs
    .venv/bin/python bench/outbox.py --applications 200 --runs 3 --json

Each run: a fresh `kiosq server` subprocess on 127.0.0.1 (its own data folder, a terminal
token) and a fresh outbox (kiosk/outbox.py: SQLite WAL, synchronous=FULL, AES-GCM) with its
Sender at the kiosk's settings (interval 5 s, backoff 1 s doubling to 60 s).
(a) submit → delivered: `submit()` as the application screen calls it, one after another,
    timed from the call to its return with the server's answer (add + fsync, kick, POST,
    record + fsync). Median, p95 and max; also `Outbox.add()` alone (the fsync).
(b) drain: the server stopped, N applications added (they wait in the outbox), the server
    started again; from the kick (what the sender's next backoff attempt does by itself,
    at most 60 s later) to the last one recorded as delivered. Seconds and applications/s.
A sample-catalog item (GA-SFZ-002) with fictitious applicants (area code 9999xx).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import Server, cpu_model, p95
from kiosq.content.model import id_number_valid
from kiosq.kiosk.hall_client import HallClient
from kiosq.kiosk.outbox import Outbox
from kiosq.kiosk.outbox_sender import Sender, submit

ITEM = "GA-SFZ-002"


def person(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    body = f"9999{i % 100:02d}{1950 + i % 50}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    number = body + next(c for c in "0123456789X" if id_number_valid(body + c))
    applicant = {"id_number": number, "name": f"测试{i}", "phone": f"139{i:08d}", "source": "card"}
    values = {"applicant_name": applicant["name"], "id_number": number, "phone": applicant["phone"],
              "reason": "expired", "delivery": "window", "promise": True}
    return applicant, values


def one_run(n: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="kiosq-bench-outbox-"))
    server = Server(tmp / "server")
    token = server.token(name="BENCH")
    server.start()
    outbox = Outbox(tmp / "kiosk", "BENCH")
    client = HallClient(server.url, token)
    sender = Sender(outbox, client)
    try:
        for i in range(5):  # warm-up: connections, the server's first requests
            submit(outbox, sender, ITEM, *person(10_000 + i), wait=5)
        online, adds = [], []
        for i in range(n):
            start = time.perf_counter()
            done = submit(outbox, sender, ITEM, *person(i), wait=5)
            online.append((time.perf_counter() - start) * 1000)
            if not done.delivered:
                raise RuntimeError(f"{done.provisional_no} was not delivered within 5 s")
        server.stop()
        for i in range(n):
            start = time.perf_counter()
            outbox.add(ITEM, *person(n + i))
            adds.append((time.perf_counter() - start) * 1000)
        server.start()
        start = time.perf_counter()
        sender.kick()
        while outbox.pending_count():
            time.sleep(0.005)
        drain = time.perf_counter() - start
        if outbox.refused_count():
            raise RuntimeError(f"{outbox.refused_count()} applications refused")
    finally:
        sender.stop()
        outbox.close()
        client.close()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"submit_ms": {"median": statistics.median(online), "p95": p95(online), "max": max(online)},
            "add_ms": {"median": statistics.median(adds), "p95": p95(adds)},
            "drain_s": drain, "drain_per_s": n / drain}


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "system": platform.platform()}


def report(result: dict[str, Any]) -> str:
    m, runs, n = result["machine"], result["runs"], result["applications"]

    def spread(key: str, sub: str, fmt: str) -> str:
        return ", ".join(format(r[key][sub], fmt) for r in runs)

    return "\n".join([
        f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['system']}",
        (f"submit → delivered ({n} per run): median {spread('submit_ms', 'median', '.1f')} ms; "
        f"p95 {spread('submit_ms', 'p95', '.1f')} ms; max {spread('submit_ms', 'max', '.1f')} ms"),
        f"Outbox.add alone: median {spread('add_ms', 'median', '.1f')} ms; p95 {spread('add_ms', 'p95', '.1f')} ms",
        f"drain {n} queued after the server is back: "
        + ", ".join(f"{r['drain_s']:.2f} s ({r['drain_per_s']:.0f}/s)" for r in runs),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=200, help="per run and phase (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="fresh server and outbox each (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    runs = []
    for k in range(args.runs):
        runs.append(one_run(args.applications))
        print(f"run {k + 1}: submit median {runs[-1]['submit_ms']['median']:.1f} ms, "
              f"drain {runs[-1]['drain_s']:.2f} s", file=sys.stderr)
    result = {"machine": machine(), "applications": args.applications, "runs": runs}
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
