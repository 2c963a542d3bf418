"""How long a call takes to reach every hall display: 200 SSE clients on 127.0.0.1.

Starts a real `kiosq server`, opens N event streams (GET /api/events, as the display pages
do), then calls tickets one at a time at a window and times, for every stream, the
arrival of that call's `ticket.called` event: from the moment the call-next request was
sent, and from the moment its response came back. Prints p50, p99 and max over all
(call, stream) pairs, and any call a stream never received. The clients run in this one
process on uvloop (as the server does): on asyncio's own loop, reading 2,000 streams
stamped deliveries late by up to 150 ms. Run from the repository root:

    .venv/bin/python bench/display_latency.py            # 200 streams, 50 calls, 3 runs
    .venv/bin/python bench/display_latency.py --phones 1800   # and 1,800 phones, each on its
                                                          # ticket's stream (issue 17's Figures)
    .venv/bin/python bench/display_latency.py --database auto --processes 2   # calls on one process,
                                                          # the streams on the other (PostgreSQL)

With `--processes 2` (a database several processes share: `--database URL` whose name holds
"bench", or `auto` for a throwaway cluster) the calls are made on the first process and every
stream reads the second (more: the streams spread over the others): an event crosses from
one process to another through the database (LISTEN/NOTIFY as the wake-up).

With `--phones N`, N tickets are issued first, in turn in each service of the hall, and each
is followed by a phone on its own stream (GET /api/tickets/{id}/events, as the follow page
does); the calls (at the general window, which serves every service) then call those
tickets, and for each call the arrival of `ticket.called` at the called ticket's phone is
timed as well. Every call also moves the place in line of every phone in its service: those
phones get a `ticket.position` event each.

The streams are asyncio connections in this one process, so the figures include the time
this process needs to read every socket; the server and the clients share 2 cores.
"""

import argparse
import asyncio
import contextlib
import http.client
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop

from harness import HOST, BenchError, Server, empty_database, machine_info, percentile, throwaway_database

WINDOW = 8  # the general window of the default hall: it serves every service
SERVICE = "A"


class Stream:
    """One display's event stream; records when each called number arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.ready = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, port: int) -> None:
        reader, self.writer = await asyncio.open_connection(HOST, port)
        self.writer.write(f"GET /api/events HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n\r\n"
                          .encode())
        await self.writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise BenchError(f"event stream refused: {status!r}")
        event = None
        while line := await reader.readline():
            text = line.decode().rstrip("\r\n")
            if text.startswith(": kiosq events after"):
                self.ready.set()  # the cursor is set: every later call will come through
            elif text.startswith("event: "):
                event = text[7:]
            elif text.startswith("data: ") and event == "ticket.called":
                number = json.loads(text[6:])["ticket"]["number"]
                self.arrivals.setdefault(number, time.perf_counter())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Phone:
    """One phone following its ticket; records when its ticket was called."""

    def __init__(self, ticket_id: str, number: str) -> None:
        self.ticket_id, self.number = ticket_id, number
        self.called: float | None = None
        self.positions = 0
        self.ready = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, port: int) -> None:
        reader, self.writer = await asyncio.open_connection(HOST, port)
        self.writer.write(f"GET /api/tickets/{self.ticket_id}/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        await self.writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise BenchError(f"ticket stream refused: {status!r}")
        # Read whatever has come, not line by line: 1,800 phones' position updates (300 per
        # call) read a line per wake-up kept this one loop busy long enough to stamp a called
        # phone up to 200 ms late, while the server had sent it in under a millisecond.
        rest = b""
        while chunk := await reader.read(65536):
            arrived = time.perf_counter()
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                if line.startswith(b": kiosq ticket"):
                    self.ready.set()
                elif line.startswith(b"event: ticket.called"):
                    self.called = self.called or arrived
                elif line.startswith(b"event: ticket.position"):
                    self.positions += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def post(conn: http.client.HTTPConnection, path: str, token: str,
         body: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Idempotency-Key": uuid.uuid4().hex}
    conn.request("POST", path, body=json.dumps(body or {}) if body is not None else None, headers=headers)
    resp = conn.getresponse()
    data: dict[str, Any] = json.loads(resp.read())
    if resp.status >= 300:
        raise BenchError(f"POST {path} answered {resp.status}: {data}")
    return data


def call_one(conn: http.client.HTTPConnection, terminal: str | None, staff: str) -> tuple[str, float, float]:
    """Issue a ticket (unless `terminal` is None: the phones' tickets wait already) and call
    the next at WINDOW; the called number and when the call was sent/answered."""
    if terminal is not None:
        post(conn, "/api/tickets", terminal, {"service": SERVICE})
    sent = time.perf_counter()
    answer = post(conn, f"/api/windows/{WINDOW}/call-next", staff)
    return answer["ticket"]["number"], sent, time.perf_counter()


async def run_once(args: argparse.Namespace) -> dict[str, Any]:
    if args.database:
        empty_database(args.database)
    with tempfile.TemporaryDirectory(prefix="kiosq-display-bench-") as tmp:
        # Room for every stream, and the calls' connection, under --max-connections.
        options = ["--max-connections", str(max(2000, args.clients + args.phones + 16))]
        servers = [Server(Path(tmp), [str(args.kiosq)], args.hall, args.database, options)
                   for _ in range(args.processes)]
        terminal = servers[0].token("terminal", "bench-terminal")
        staff = servers[0].token("staff", "bench-staff", str(WINDOW))
        with contextlib.ExitStack() as running:
            for server in servers:
                running.enter_context(server)
            # The calls go to the first process; the streams read the others, if any.
            readers = servers[1:] or servers
            phones = [Phone(*t) for t in issue_tickets(servers[0].port, servers[0].token("admin", "bench-admin"),
                                                       args.phones)]
            streams = [Stream() for _ in range(args.clients)]
            tasks = [asyncio.create_task(s.run(readers[i % len(readers)].port)) for i, s in enumerate(streams)]
            tasks += [asyncio.create_task(p.run(readers[i % len(readers)].port)) for i, p in enumerate(phones)]
            clients: list[Stream | Phone] = [*streams, *phones]
            try:
                await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), timeout=60)
                return await measure(args, streams, phones, servers[0].port, terminal, staff)
            finally:
                for c in clients:
                    c.close()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)


def issue_tickets(port: int, token: str, n: int) -> list[tuple[str, str]]:
    """n tickets, in turn in each service; their ids (the phones' secrets) and numbers."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/api/services")
        services = [s["code"] for s in json.loads(conn.getresponse().read())]
        made = [post(conn, "/api/tickets", token, {"service": services[i % len(services)]}) for i in range(n)]
        return [(t["id"], t["number"]) for t in made]
    finally:
        conn.close()


async def measure(args: argparse.Namespace, streams: list[Stream], phones: list[Phone], port: int, terminal: str,
                  staff: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    from_sent, from_answer, missing = [], [], 0
    phone_sent, phone_answer, phone_missing = [], [], 0
    try:
        by_number = {p.number: p for p in phones}
        for _ in range(args.calls):
            number, sent, answered = await loop.run_in_executor(None, call_one, conn,
                                                                None if phones else terminal, staff)
            phone = by_number.get(number) if phones else None
            if phones and phone is None:
                raise BenchError(f"the call called {number}, which no phone follows")
            deadline = time.perf_counter() + args.timeout
            while time.perf_counter() < deadline and not (all(number in s.arrivals for s in streams)
                                                          and (phone is None or phone.called)):
                await asyncio.sleep(0.002)
            for s in streams:
                if number in s.arrivals:
                    from_sent.append((s.arrivals[number] - sent) * 1000)
                    from_answer.append((s.arrivals[number] - answered) * 1000)
                else:
                    missing += 1
            if phone is not None and phone.called:
                phone_sent.append((phone.called - sent) * 1000)
                phone_answer.append((phone.called - answered) * 1000)
            elif phone is not None:
                phone_missing += 1
            await asyncio.sleep(args.gap)
    finally:
        conn.close()
    result = {"deliveries": len(from_sent), "missing": missing + phone_missing, "from_sent": figures(from_sent),
              "from_answer": figures(from_answer)}
    if phones:
        result["phones"] = {"deliveries": len(phone_sent), "missing": phone_missing,
                            "from_sent": figures(phone_sent), "from_answer": figures(phone_answer),
                            "position_events": sum(p.positions for p in phones)}
    return result


def medians(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {kind: {q: statistics.median(r[kind][q] for r in runs) for q in ("p50", "p99", "max")}
            for kind in ("from_answer", "from_sent")}


def figures(ms: list[float]) -> dict[str, Any]:
    ordered = sorted(ms)
    if not ordered:
        return {"p50": None, "p99": None, "max": None}
    return {"p50": round(percentile(ordered, 50), 2), "p99": round(percentile(ordered, 99), 2),
            "max": round(ordered[-1], 2)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Example: .venv/bin/python bench/display_latency.py "
                                            "--clients 200 --calls 50")
    parser.add_argument("--clients", type=int, default=200, help="event streams (default 200)")
    parser.add_argument("--phones", type=int, default=0,
                        help="phones, each following one ticket on its own stream (default 0; issue 17: 1800)")
    parser.add_argument("--calls", type=int, default=50, help="calls per run (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are reported (default 3)")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between calls (default 0.05)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a call at every stream")
    parser.add_argument("--kiosq", type=Path, default=Path(sys.executable).parent / "kiosq", help="the kiosq command")
    parser.add_argument("--hall", type=Path, default=None, help="hall file (default: the built-in hall)")
    parser.add_argument("--database", metavar="URL", default=None,
                        help="PostgreSQL: a database whose name holds 'bench' (emptied before each run), or 'auto' "
                             "for a throwaway cluster; default SQLite")
    parser.add_argument("--processes", type=int, default=1,
                        help="server processes; with 2 or more the streams read other processes than the caller's")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.phones and args.phones < args.calls:
        parser.error("--phones must be at least --calls: each call calls a phone's ticket")
    if not 1 <= args.processes <= 8:
        parser.error("--processes takes 1 to 8")
    if args.processes > 1 and args.database is None:
        parser.error("several processes need a shared database: add --database URL (or --database auto)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as cleanup:
        if args.database == "auto":
            args.database = throwaway_database(cleanup)
        return report(args)


def report(args: argparse.Namespace) -> int:
    runs = []
    for i in range(args.runs):
        # uvloop, as the server runs on (uvicorn[standard]): on asyncio's own loop the 2,000
        # clients' reads, in one process, stamped deliveries late by up to 150 ms.
        result = uvloop.run(run_once(args))
        runs.append(result)
        print(f"run {i + 1}/{args.runs}: {result['deliveries']} deliveries, missing {result['missing']}, "
              f"from response p50 {result['from_answer']['p50']} ms p99 {result['from_answer']['p99']} ms, "
              f"from request p50 {result['from_sent']['p50']} ms p99 {result['from_sent']['p99']} ms"
              + (f"; called phone from response p50 {result['phones']['from_answer']['p50']} ms "
                 f"p99 {result['phones']['from_answer']['p99']} ms" if args.phones else ""), file=sys.stderr)
    summary = {"machine": machine_info(), "clients": args.clients, "phones": args.phones, "calls": args.calls,
               "runs": runs, "database": "PostgreSQL" if args.database else "SQLite", "processes": args.processes,
               "median": medians(runs), "missing": sum(r["missing"] for r in runs)}
    if args.phones:
        summary["phones_median"] = medians([r["phones"] for r in runs])
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        m = summary["median"]
        phones = f" and {args.phones} phones" if args.phones else ""
        print(f"kiosq display latency: {args.clients} SSE clients{phones}, {args.calls} calls x {args.runs} runs")
        print(f"machine  {summary['machine']}")
        print(f"database {summary['database']}, {args.processes} process(es)"
              + (": calls on the first, streams on the others" if args.processes > 1 else ""))
        print(f"from call-next response to event: p50 {m['from_answer']['p50']} ms, p99 {m['from_answer']['p99']} ms, "
              f"max {m['from_answer']['max']} ms (medians of runs)")
        print(f"from call-next request to event:  p50 {m['from_sent']['p50']} ms, p99 {m['from_sent']['p99']} ms, "
              f"max {m['from_sent']['max']} ms")
        if args.phones:
            pm = summary["phones_median"]
            print(f"at the called ticket's phone ({args.phones} phones on their tickets' streams): from response "
                  f"p50 {pm['from_answer']['p50']} ms, p99 {pm['from_answer']['p99']} ms, max "
                  f"{pm['from_answer']['max']} ms; from request p99 {pm['from_sent']['p99']} ms")
        print(f"missing deliveries: {summary['missing']}")
        met = m["from_answer"]["p99"] <= 100 and not summary["missing"]
        if args.phones:
            met = met and summary["phones_median"]["from_answer"]["p99"] <= 100
        print("target: p99 <= 100 ms: " + ("MET" if met else "NOT MET"))
    return 0 if not summary["missing"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"display_latency: {exc}", file=sys.stderr)
        sys.exit(1)
