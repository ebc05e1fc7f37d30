#!/usr/bin/env python3
"""Per-message latency of a milter, as a Postfix-like MTA sees it.

Not a test: it prints numbers.  One persistent filter connection carries N
messages (MAIL, RCPT, DATA, headers, EOH, body, EOM, then Postfix's ABORT), and
each message is timed from its MAIL event to the filter's final EOM reply.

    # the noop floor in three modes over inet (and over a unix socket with --unix)
    python3 test/bench/milter_latency.py --milter build/test/support/noop_milter/vigil-noop-milter

    # any filter that is already running, e.g. vigil-milter
    python3 test/bench/milter_latency.py --addr inet:8891@127.0.0.1 --messages 500

The client is Python: its own cost (~0.1-0.2 ms per message) caps msg/s for a
fast filter, so compare modes with each other, not with Postfix's throughput.

Two ~40 ms stalls show up over TCP, both Nagle meeting a delayed ACK (see
noop_milter.c): with --add-header the filter writes two replies in a row
(fixed by --nodelay on the filter side), and when the filter skips or does not
answer DATA the MTA writes twice in a row (fixed by --answer-data).  The
client reproduces Postfix's write pattern so that both are visible here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import milter_client as mc  # noqa: E402
import vigil_fixtures as vf  # noqa: E402


def make_message(size: int) -> bytes:
    """A plain message of about `size` bytes: 8 header fields and a text body."""
    head = (
        b"Received: from client.example.net (client.example.net [192.0.2.25])\r\n"
        b"\tby mx.example.com (Postfix) with ESMTP id 4XyZ1234; Thu, 1 Feb 2024 10:00:00 +0000\r\n"
        b"From: Alice Example <alice@example.org>\r\n"
        b"To: Bob Example <bob@example.com>\r\n"
        b"Subject: benchmark message\r\n"
        b"Date: Thu, 1 Feb 2024 10:00:00 +0000\r\n"
        b"Message-ID: <bench.1@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"\r\n"
    )
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    lines = max(1, (size - len(head)) // len(line))
    return head + line * lines


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def run(address: str, messages: int, message: bytes, warmup: int, timeout: float,
        max_seconds: float) -> dict:
    """Send warmup + N messages on one connection; return the latency figures."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    with mc.MilterClient(address, timeout=timeout) as c:
        neg = c.negotiate()
        c.connect("client.example.net", "192.0.2.25", 40000)
        c.helo("client.example.net")
        started = None
        deadline = time.monotonic() + max_seconds
        for i in range(warmup + messages):
            if i == warmup:
                started = time.perf_counter()
            t0 = time.perf_counter()
            res = c.send_message("alice@example.org", ["bob@example.com"], message)
            t1 = time.perf_counter()
            if i >= warmup:
                latencies.append(t1 - t0)
                outcomes[res.action] = outcomes.get(res.action, 0) + 1
            if time.monotonic() > deadline:
                break
        elapsed = time.perf_counter() - (started or time.perf_counter())
    latencies.sort()
    n = len(latencies)
    return {
        "address": address,
        "negotiated_actions": neg.action_names,
        "negotiated_protocol": neg.protocol_names,
        "messages": n,
        "elapsed_s": elapsed,
        "msgs_per_s": n / elapsed if elapsed > 0 else float("nan"),
        "p50_ms": percentile(latencies, 50) * 1e3 if n else float("nan"),
        "p99_ms": percentile(latencies, 99) * 1e3 if n else float("nan"),
        "max_ms": latencies[-1] * 1e3 if n else float("nan"),
        "outcomes": outcomes,
    }


def print_table(rows: list[tuple[str, dict]]) -> None:
    print(f"{'mode':<44} {'msgs':>6} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  outcome")
    for label, r in rows:
        print(f"{label:<44} {r['messages']:>6} {r['msgs_per_s']:>9.1f} {r['p50_ms']:>8.3f} "
              f"{r['p99_ms']:>8.3f} {r['max_ms']:>8.3f}  {r['outcomes']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--milter", help="path to vigil-noop-milter: run it in three modes over inet")
    src.add_argument("--addr", help="benchmark an already running filter at this address")
    ap.add_argument("--messages", type=int, default=200, help="timed messages per run (default 200)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed messages first (default 20)")
    ap.add_argument("--size", type=int, default=4096, help="approximate message size in bytes")
    ap.add_argument("--unix", action="store_true", help="with --milter: also run over a unix socket")
    ap.add_argument("--receive", action="store_true",
                    help="with --milter: make the noop receive all events instead of skipping them")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-read timeout in seconds")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="stop a run after this long")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()

    message = make_message(args.size)
    rows: list[tuple[str, dict]] = []
    if args.addr:
        rows.append((args.addr, run(args.addr, args.messages, message, args.warmup, args.timeout,
                                    args.max_seconds)))
    else:
        extra = ["--receive"] if args.receive else []
        modes = [("inet noop", []), ("inet --add-header", ["--add-header"]),
                 ("inet --add-header --nodelay", ["--add-header", "--nodelay"]),
                 ("inet --answer-data", ["--answer-data"]),
                 ("inet --add-header --answer-data", ["--add-header", "--answer-data"]),
                 ("inet --add-header --nodelay --answer-data", ["--add-header", "--nodelay", "--answer-data"])]
        runs = [(label, mc.free_inet_address(), flags) for label, flags in modes]
        tmp = None
        if args.unix:
            tmp = tempfile.TemporaryDirectory(prefix="milter-bench-")
            runs += [("unix noop", f"unix:{tmp.name}/noop.sock", []),
                     ("unix --add-header", f"unix:{tmp.name}/hdr.sock", ["--add-header"])]
        # --answer-data and --nodelay only make sense over TCP, where Nagle lives.
        try:
            for label, address, flags in runs:
                with vf.NoopMilter(args.milter, *flags, *extra, address=address):
                    rows.append((label + (" --receive" if extra else ""),
                                 run(address, args.messages, message, args.warmup, args.timeout,
                                     args.max_seconds)))
        finally:
            if tmp:
                tmp.cleanup()

    if args.json:
        print(json.dumps([{"mode": label, **r} for label, r in rows], indent=2))
    else:
        print(f"{len(message)}-byte message, one connection, {args.messages} timed messages "
              f"after {args.warmup} warm-up")
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
