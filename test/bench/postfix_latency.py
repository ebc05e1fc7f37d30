#!/usr/bin/env python3
"""Benchmark (not a test): whole-SMTP-transaction latency through a private Postfix with vigil-milter
attached over inet, with [milter] tcp_nodelay on and off, and without any milter as the baseline.

usage: sudo python3 test/bench/postfix_latency.py build/milter/vigil-milter [--messages N]
Prints p50/p99/max per configuration. Needs root (Postfix's master runs as root).
"""
import argparse
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
import postfix_harness  # noqa: E402
import vigil_fixtures as vf  # noqa: E402

MSG = (b"From: a@example.org\r\nTo: b@vigil.test\r\nSubject: bench\r\nMessage-ID: <x@example.org>\r\n\r\n" +
       b"This is a benchmark line of text.\r\n" * 110)  # about 4 KiB


def run(work, milter_bin, nodelay, n):
    milter = None
    if milter_bin:
        milter = vf.Milter(milter_bin, work, f"vigil-{nodelay}",
                           f'[milter]\nuser = "vigil"\ntcp_nodelay = {str(nodelay).lower()}\n'
                           '[server]\ntrusted_networks = []\nauthserv_id = "mx.vigil.test"\n')
    pf = postfix_harness.PostfixInstance(os.path.join(work, f"pf-{milter_bin is not None}-{nodelay}"),
                                         milter=vf.postfix_milter_spec(milter))
    pf.start()
    times = []
    try:
        for i in range(n + 5):
            t0 = time.perf_counter()
            r = pf.send("a@example.org", ["b@vigil.test"], MSG)
            dt = (time.perf_counter() - t0) * 1000
            if not r.ok:
                raise RuntimeError(f"send failed: {r}")
            if i >= 5:
                times.append(dt)
    finally:
        pf.stop()
        if milter:
            milter.kill()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1], times[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("milter")
    ap.add_argument("--messages", type=int, default=50)
    a = ap.parse_args()
    work = vf.make_workdir("vigil-bench-")
    print(f"{a.messages} messages of {len(MSG)} bytes, one SMTP connection each, through Postfix "
          f"(milter over inet:127.0.0.1)")
    print(f"{'configuration':40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, binary, nodelay in (("no milter", None, True), ("vigil-milter, tcp_nodelay = false", a.milter, False),
                                   ("vigil-milter, tcp_nodelay = true", a.milter, True)):
        p50, p99, mx = run(work, binary, nodelay, a.messages)
        print(f"{label:40} {p50:8.2f} {p99:8.2f} {mx:8.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
