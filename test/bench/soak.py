#!/usr/bin/env python3
"""Soak: mixed mail through the real vigil-milter at sustained load, for a bounded time.

    python3 test/bench/soak.py VIGIL_MILTER VIGIL_CLI VIGIL_TEST_DNS [--seconds 60] [--workers 4]
    # the long run (README, "Security and failure behaviour"):
    python3 test/bench/soak.py build/milter/vigil-milter build/tools/vigil \\
        build/test/support/dns_server/vigil-test-dns --seconds 1800

Set-up as in test/integration/faults/faults_test.py (its zones, config and helpers): vigil-test-dns
answers for fault.test, whose mail is DKIM-signed, SPF- and DMARC-covered. `--workers` threads, each
on its own milter connections, send a mix without pause: clean signed mail (accept), GTUBE (reject),
a signed message with a changed body (dkim=fail; SPF aligns, so DMARC passes: accept), unsigned mail from elsewhere,
a 256 KB message, 1-20 recipients, several messages per connection, and transactions aborted before
end of message. Every 2 s it samples the daemon's RSS (/proc/PID/status VmRSS) and open descriptors
(/proc/PID/fd). After the warm-up (the first quarter of the run, at least 10 s) it asserts:

  * RSS flat: the median of the last three samples exceeds the median of the first three after the
    warm-up by no more than 8 MB + 5 % (allocator noise stays inside it; at ~200 messages/s a leak
    of 1 KB per message fails the default 60 s run, one of 100 bytes the 30-minute run);
  * no descriptor leak: once the load stops and the daemon is idle, it holds no more descriptors
    than it did idle before the load;
  * exactly one decision line for every message that reached end of message, none for the aborted;
  * the daemon never died, answered every message, and logged no internal error;
  * SIGTERM under the same load at the end: the daemon exits with status 0 within 3 s.
Exit 0 = all held, 1 = one did not, 2 = set-up error. Prints messages/s and the RSS/fd series.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "faults"))
import faults_test as ft  # noqa: E402
import milter_client as mc  # noqa: E402
import vigil_fixtures as vf  # noqa: E402

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def fds(pid: int) -> list[str]:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return sorted(out)


def fd_count(pid: int) -> int:
    return len(fds(pid))


class Load:
    def __init__(self, m: vf.Milter, kinds: dict[str, tuple[bytes, str]], seed: int):
        self.m = m
        self.kinds = kinds
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.expected: list[str] = []   # queue ids answered at end of message
        self.aborted: list[str] = []
        self.counts = collections.Counter()
        self.errors: list[str] = []

    def worker(self, stop: threading.Event, seed: int) -> None:
        rng = random.Random(seed)
        names = list(self.kinds)
        while not stop.is_set():
            try:
                with mc.MilterClient(self.m.address, timeout=30) as c:
                    c.negotiate()
                    c.connect(f"[{ft.CLIENT_IP}]", ft.CLIENT_IP)
                    c.helo(ft.HELO)
                    for _ in range(rng.randint(1, 5)):
                        if stop.is_set():
                            break
                        kind = rng.choice(names + ["aborted"])
                        rcpts = [f"u{rng.randint(0, 99)}@vigil.test" for _ in range(rng.randint(1, 20))]
                        if kind == "aborted":
                            c.mail(f"<{ft.SENDER}>")
                            for r in rcpts:
                                c.rcpt(f"<{r}>")
                            qid = c.queue_id
                            c.data()
                            c.header("From", f" {ft.SENDER}")
                            c.eoh()
                            c.abort()
                            with self.lock:
                                self.aborted.append(qid)
                                self.counts[kind] += 1
                            continue
                        msg, want = self.kinds[kind]
                        res = c.send_message(f"<{ft.SENDER}>", [f"<{r}>" for r in rcpts], msg, abort_after=False)
                        qid = c.queue_id
                        c.abort()
                        got = "reject" if res.action in ("REJECT", "REPLYCODE") else res.action.lower()
                        with self.lock:
                            self.counts[kind] += 1
                            if res.stage == "eom":
                                self.expected.append(qid)
                            if got != want:
                                self.errors.append(f"{kind}: {res.action} at {res.stage}, want {want}")
                    c.quit()
            except (mc.MilterError, OSError) as e:
                with self.lock:
                    self.errors.append(f"{type(e).__name__}: {e}")
                time.sleep(0.2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("milter")
    ap.add_argument("cli")
    ap.add_argument("dns")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=4)
    a = ap.parse_args()
    warmup = max(10.0, a.seconds / 4)
    work = vf.make_workdir("vigil-soak-")
    failures: list[str] = []

    def check(cond, what):
        print(("ok    " if cond else "FAIL  ") + what, flush=True)
        if not cond:
            failures.append(what)

    dns = None
    try:
        try:
            key, key_txt = ft.keygen(a.cli, work)
        except RuntimeError as e:
            print(f"set-up: {e}")
            return 2
        zones = ft.zones(work, key_txt)
        signed = ft.signed_message(a.cli, key, b"A clean message.\r\n", work)
        big = ft.signed_message(a.cli, key, b"0123456789abcdef" * 16 * 1024 + b"\r\n", work)
        kinds = {
            "clean": (signed, "accept"),
            "big": (big, "accept"),
            "gtube": (ft.signed_message(a.cli, key, GTUBE + b"\r\n", work), "reject"),
            # dkim=fail, but SPF passes aligned, so DMARC passes: accepted.
            "tampered": (signed.replace(b"A clean message.", b"A dirty message."), "accept"),
            "unsigned": (b"From: someone@example.org\r\nSubject: hi\r\n\r\nno signature\r\n", "accept"),
        }
        dns = vf.DnsServer(a.dns, zones)
        with vf.Milter(a.milter, work, "soak", ft.milter_config(), dns_port=dns.port, env=ft.milter_env()) as m:
            pid = m.proc.pid
            # libmilter sets up its worker pool (an epoll descriptor and a pipe) on the first connection:
            # the idle baseline is taken after a few messages.
            for _ in range(5):
                mc.send_message(m.address, f"<{ft.SENDER}>", ["<u@vigil.test>"], signed, client_ip=ft.CLIENT_IP,
                                helo=ft.HELO)
            time.sleep(2)
            idle = fds(pid)
            idle_fds = len(idle)
            load = Load(m, kinds, 1)
            stop = threading.Event()
            threads = [threading.Thread(target=load.worker, args=(stop, i), daemon=True) for i in range(a.workers)]
            started = time.monotonic()
            for t in threads:
                t.start()
            samples: list[tuple[float, int, int]] = []
            while time.monotonic() - started < a.seconds and m.alive():
                time.sleep(2)
                samples.append((time.monotonic() - started, m.rss_kb(), fd_count(pid)))
            stop.set()
            for t in threads:
                t.join(timeout=60)
            took = time.monotonic() - started
            time.sleep(2)  # let the resolver close what it had in flight
            check(m.alive(), "vigil-milter ran through the whole soak")
            final = fds(pid) if m.alive() else []
            final_fds = len(final) if m.alive() else -1
            total = sum(load.counts.values())
            print(f"{total} transactions in {took:.0f} s ({total / took:.0f}/s) with {a.workers} workers: "
                  f"{dict(load.counts)}")
            print("t(s) rss(MB) fds: " + " ".join(f"{t:.0f}:{r / 1024:.1f}:{f}" for t, r, f in samples))
            after = [s for s in samples if s[0] >= warmup]
            if len(after) >= 6:
                first = statistics.median(r for _, r, _ in after[:3])
                last = statistics.median(r for _, r, _ in after[-3:])
                allowed = 8 * 1024 + first * 0.05
                check(last - first <= allowed, f"RSS flat after the {warmup:.0f} s warm-up: {first / 1024:.1f} MB -> "
                                               f"{last / 1024:.1f} MB (allowed growth {allowed / 1024:.1f} MB)")
            else:
                check(False, f"too few samples after the warm-up ({len(after)}): run longer")
            check(final_fds <= idle_fds, f"no descriptor leak: {idle_fds} open when idle before, {final_fds} after "
                                       f"(new: {sorted((collections.Counter(final) - collections.Counter(idle)).elements())})")
            check(not load.errors, f"every message got the expected answer ({len(load.errors)} did not: "
                                   f"{load.errors[:3]})")
            qids = [d["qid"] for d in m.decisions()][5:]
            counted = collections.Counter(qids)
            missing = [q for q in load.expected if counted[q] == 0]
            doubled = [q for q, n in counted.items() if n > 1]
            logged_aborted = [q for q in load.aborted if counted[q]]
            check(not missing and not doubled and len(qids) == len(load.expected),
                  f"exactly one decision line per message: {len(qids)} lines for {len(load.expected)} messages "
                  f"(missing {len(missing)}, doubled {len(doubled)})")
            check(not logged_aborted, f"no decision line for the {len(load.aborted)} aborted transactions")
            errors = [l for l in m.log().splitlines() if "internal error" in l]
            check(not errors, f"no internal error logged {errors[:2]}")
            # SIGTERM in the middle of the load: a prompt, clean stop (the messages cut short are the
            # MTA's to retry: milter_default_action).
            stop = threading.Event()
            threads = [threading.Thread(target=Load(m, kinds, 2).worker, args=(stop, 100 + i), daemon=True)
                       for i in range(a.workers)]
            for t in threads:
                t.start()
            time.sleep(2)
            signalled = time.monotonic()
            m.proc.send_signal(signal.SIGTERM)
            try:
                rc = m.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                rc = None
            stopped_in = time.monotonic() - signalled
            stop.set()
            for t in threads:
                t.join(timeout=60)
            check(rc == 0 and stopped_in < 3.0 and "stopping on SIGTERM" in m.log(),
                  f"SIGTERM under load: exit status {rc} after {stopped_in:.2f} s")
    finally:
        if dns:
            dns.stop()
        if failures:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
