"""Self-test of test/support/postfix_harness.py: private Postfix instances for e2e tests.

    pytest test/integration/postfix_selftest.py        (as root; skipped otherwise)

Checks
  1. no milter: a message from 127.0.0.1 to a vigil.test recipient is delivered byte-exact
     (only Return-Path / X-Original-To / Delivered-To / Received added; no Date or
     Message-ID added); the same through swaks --no-data-fixup; `postfix check` is silent
  2. milter on a closed port: 451 4.7.1 at MAIL FROM (milter_default_action = tempfail),
     nothing queued or delivered
  3. hold: smtpd_end_of_data_restrictions = check_client_access ... HOLD puts the message
     in the hold queue; hold_queue() returns its id; release() delivers it
  4. two instances at once on different ports, each delivering only its own mail;
     domains=("*",) delivers mail for any domain
  5. a minimal in-process milter: Postfix talks milter protocol 6 to it, a header it adds
     arrives, XCLIENT changes the client address the milter sees, and sendmail(1)
     submissions reach it through non_smtpd_milters
  6. teardown: stop() leaves no process of the instance; a test process killed with
     SIGKILL has its instance stopped by the watchdog; quick_start=True makes queue
     directories that `postfix check` accepts
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

import postfix_harness as ph
import vigil_fixtures as vf

pytestmark = vf.needs_postfix


def why(what: str, detail: str) -> str:
    """An assertion message with the detail that explains a failure on the lines after it."""
    return what + ("\n  " + detail.replace("\n", "\n  ") if detail else "")


def no_warnings(pf: ph.PostfixInstance) -> list[str]:
    return [l for l in pf.log_text().splitlines() if "warning" in l or "fatal" in l]


def needs_swaks() -> None:
    assert os.path.exists(ph.SWAKS), f"{ph.SWAKS} not installed"


# A message that catches common rewrites: no Date/Message-ID (Postfix must not add them
# for a remote client), a folded header, trailing white space, 8-bit bytes, leading dots,
# a line that is only a dot, and a long line.
MESSAGE = (
    b"From: Alice Example <alice@example.org>\r\n"
    b"To: bob@vigil.test\r\n"
    b"Subject: byte-exact test \xc3\xa9\r\n"
    b"X-Folded: first part\r\n"
    b"\tsecond part   \r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b".leading dot\r\n"
    b"..two dots\r\n"
    b".\r\n"
    b"trailing spaces   \r\n"
    b"caf\xc3\xa9\r\n"
    + b"x" * 1500 + b"\r\n"
    b"\r\n"
    b"last line\r\n"
)


def as_lf(b: bytes) -> bytes:
    return b.replace(b"\r\n", b"\n")


def header_names(msg: bytes) -> list[str]:
    names = []
    for line in msg.split(b"\n"):
        if line in (b"", b"\r"):
            break
        if line[:1] not in (b" ", b"\t"):
            names.append(line.split(b":", 1)[0].decode("ascii", "replace"))
    return names


def no_instance_processes(inst: ph.PostfixInstance) -> list[int]:
    return [p for p in ph._instance_pids(inst.config_dir, None) if ph._pid_alive(p)]


# --------------------------------------------------------------------------------------
# A minimal milter (protocol 6), enough to see what Postfix sends and to add a header
# --------------------------------------------------------------------------------------

class FakeMilter:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.events: list[tuple] = []
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def spec(self) -> str:
        return f"inet:127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stopping = True
        self.sock.close()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _send(conn: socket.socket, cmd: bytes, data: bytes = b"") -> None:
        conn.sendall(struct.pack("!I", len(data) + 1) + cmd + data)

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                while True:
                    (length,) = struct.unpack("!I", vf.recv_exact(conn, 4))
                    if not 0 < length < 1 << 20:
                        return
                    pkt = vf.recv_exact(conn, length)
                    cmd, data = pkt[:1], pkt[1:]
                    if cmd == b"O":      # option negotiation: version 6, may add headers,
                        self._send(conn, b"O", struct.pack("!III", 6, 0x01, 0))  # all events
                    elif cmd == b"D":    # macros: no reply
                        with self.lock:
                            self.events.append(("macro", data))
                    elif cmd == b"C":    # connect: hostname \0 family [port address \0]
                        host, rest = data.split(b"\0", 1)
                        family = rest[:1]
                        addr = rest[3:].rstrip(b"\0") if family in (b"4", b"6") else b""
                        with self.lock:
                            self.events.append(("connect", host.decode(), family.decode(),
                                                addr.decode()))
                        self._send(conn, b"c")
                    elif cmd == b"M":
                        with self.lock:
                            self.events.append(("mail", data.split(b"\0")[0].decode()))
                        self._send(conn, b"c")
                    elif cmd == b"E":    # end of message: add a header, then accept
                        with self.lock:
                            self.events.append(("eom",))
                        self._send(conn, b"h", b"X-Fake-Milter\0seen\0")
                        self._send(conn, b"c")
                    elif cmd in (b"A",):  # abort: no reply
                        pass
                    elif cmd == b"Q":
                        return
                    elif cmd == b"K":    # quit, new connection follows on this socket
                        continue
                    else:                # H, R, T, L, N, B, U: continue
                        self._send(conn, b"c")
        except (EOFError, OSError):
            return


def closed_port() -> tuple[socket.socket, int]:
    """A port that refuses connections for as long as the returned socket is kept:
    bound but not listening, so nothing else can listen on it meanwhile."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


@pytest.fixture(scope="module")
def plain(module_launch) -> ph.PostfixInstance:
    """An instance without a milter, shared by tests 1 and 4."""
    return module_launch.postfix("plain")


def test_plain_delivery(plain):
    """1. no milter: byte-exact delivery from 127.0.0.1 to bob@vigil.test."""
    pf = plain
    p = subprocess.run([ph.POSTFIX, "-c", pf.config_dir, "check"], capture_output=True, text=True)
    assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), \
        why("`postfix -c DIR check` is silent for the harness's configuration",
            f"exit {p.returncode}: {p.stdout}{p.stderr}")
    assert pf.postconf("local_header_rewrite_clients") == "", "local_header_rewrite_clients is empty"

    r = pf.send("alice@example.org", ["bob@vigil.test"], MESSAGE)
    assert r.ok and r.queue_id is not None, why(f"send() accepted: {r.data}", str(r) + "\n" + "\n".join(r.transcript))
    msgs = pf.wait_delivered(1, timeout=15)
    assert len(msgs) == 1, "exactly one message delivered"
    got = msgs[0]
    names = header_names(got)
    assert names[:4] == ["Return-Path", "X-Original-To", "Delivered-To", "Received"], \
        f"delivery added Return-Path, X-Original-To, Delivered-To, Received: {names[:4]}"
    assert "Date" not in names and "Message-ID" not in names and "Message-Id" not in names, \
        why("Postfix added no Date: or Message-ID: header", f"headers: {names}")
    assert got.startswith(b"Return-Path: <alice@example.org>\n"), "Return-Path is the envelope sender"
    assert b"\nDelivered-To: bob@vigil.test\n" in got, "Delivered-To is the recipient"
    stripped = ph.strip_added_headers(got)
    assert stripped == as_lf(MESSAGE), why("headers + body byte-exact after removing the 4 delivery headers "
                                           "(Maildir uses LF line ends)",
                                           f"sent {as_lf(MESSAGE)[:300]!r}\ngot  {stripped[:300]!r}")
    body_sent = MESSAGE.split(b"\r\n\r\n", 1)[1]
    assert got.endswith(as_lf(body_sent)), "body bytes identical"
    crlf = pf.delivered(crlf=True)[0]
    assert ph.strip_added_headers(crlf) == MESSAGE, "delivered(crlf=True) gives back the exact CRLF bytes sent"
    assert pf.delivered_to("bob@vigil.test") == msgs and pf.delivered_to("carol@vigil.test") == [], \
        "delivered_to() selects by Delivered-To"
    assert f"{r.queue_id}: to=<bob@vigil.test>, relay=virtual" in pf.log_text(), "log_text() has the delivery line"
    warnings = no_warnings(pf)
    assert not warnings, why("no warnings in the log", "\n".join(warnings))


def test_swaks_delivery(plain):
    """1b. the same message through swaks --no-data-fixup, two recipients, one refused."""
    needs_swaks()
    pf = plain
    rs = pf.send_swaks("alice@example.org", ["bob@vigil.test", "carol@vigil.test", "eve@elsewhere.example"],
                       MESSAGE, helo="swaks.example.net")
    assert rs.ok and rs.queue_id is not None, \
        why(f"send_swaks() accepted: {rs.data} (swaks exit {rs.exit_code})", rs.raw_output or "")
    codes = [(a, rep.code) for a, rep in rs.rcpts]
    assert codes == [("bob@vigil.test", 250), ("carol@vigil.test", 250), ("eve@elsewhere.example", 554)], \
        f"per-recipient replies parsed from the swaks transcript: {codes}"
    pf.wait_message(rb"^Delivered-To: carol@vigil\.test$", timeout=15)
    carol = pf.delivered_to("carol@vigil.test")
    assert len(carol) == 1 and ph.strip_added_headers(carol[0]) == as_lf(MESSAGE), \
        why("swaks delivery byte-exact", repr(carol[:1])[:400])
    assert b"helo=<swaks.example.net>" in pf.log_text().encode() or b"from swaks.example.net" in carol[0], \
        "swaks used the given HELO"


def test_refusal_is_recorded(plain):
    """1c. a refusal is recorded, not raised."""
    rr = plain.send("alice@example.org", ["eve@elsewhere.example"], MESSAGE)
    assert rr.failed_stage == "rcpt" and rr.rcpts[0][1].code == 554 and "Relay access denied" in rr.rcpts[0][1].text, \
        why(f"relay refused at RCPT: {rr.failed_reply}", str(rr))


def test_dead_milter(launch):
    """2. milter on a closed port: 451 4.7.1 at MAIL FROM, nothing delivered."""
    needs_swaks()
    holder, port = closed_port()
    try:
        pf = launch.postfix("deadmilter", milter=f"inet:127.0.0.1:{port}")
        assert (pf.postconf("smtpd_milters") == f"inet:127.0.0.1:{port}"
                and pf.postconf("non_smtpd_milters") == f"inet:127.0.0.1:{port}"), \
            "smtpd_milters and non_smtpd_milters point at the milter"
        r = pf.send("alice@example.org", ["bob@vigil.test"], MESSAGE)
        assert r.banner is not None and r.banner.code == 220, f"banner still 220 ({r.banner})"
        assert (r.failed_stage == "mail" and r.mail is not None and r.mail.code == 451
                and r.mail.text.startswith("4.7.1")), \
            why(f"MAIL FROM answered {r.mail}", str(r) + "\n" + "\n".join(r.transcript))
        rs = pf.send_swaks("alice@example.org", ["bob@vigil.test"], MESSAGE)
        assert rs.failed_stage == "mail" and rs.mail is not None and rs.mail.code == 451, \
            why(f"swaks sees the same: {rs.mail} (exit {rs.exit_code})", rs.raw_output or "")
        time.sleep(0.5)
        q = pf.queue_ids()
        assert pf.delivered() == [] and not any(q.values()), f"nothing delivered or queued: {q}"
        assert ("milter inet:127.0.0.1:%d: can't connect" % port in pf.log_text()
                or "Connection refused" in pf.log_text()), "the log shows the failed milter connection"
    finally:
        holder.close()


def test_hold_and_release(launch):
    """3. HOLD from smtpd_end_of_data_restrictions: hold_queue() returns the id."""
    pf = launch.postfix("hold", extra_main_cf={
        "smtpd_end_of_data_restrictions":
            "check_client_access inline:{{127.0.0.1=HOLD quarantined by the self-test}}"})
    r = pf.send("alice@example.org", ["bob@vigil.test"], MESSAGE)
    assert r.ok, why(f"accepted: {r.data}", str(r))
    held = pf.hold_queue()
    assert held == [r.queue_id], f"hold_queue() == [{r.queue_id}]: {held}"
    q = pf.queue_ids()
    assert q["hold"] == [r.queue_id] and not q["active"] and not q["incoming"] and not q["deferred"], \
        f"queue_ids(): {q}"
    time.sleep(0.5)
    assert pf.delivered() == [], "nothing delivered while held"
    qm = pf.queued_message(r.queue_id)
    assert ph.strip_added_headers(qm) == as_lf(MESSAGE), \
        why("queued_message() returns the held message", repr(qm[:300]))
    assert pf.wait_log(rf"{r.queue_id}: hold: .*quarantined by the self-test"), "the log records the hold"
    pf.release(r.queue_id)
    msgs = pf.wait_delivered(1, timeout=15)
    assert len(msgs) == 1 and pf.hold_queue() == [], "release() delivers it and empties the hold queue"


def test_two_instances(plain, launch):
    """4. two instances at the same time."""
    first = plain
    second = launch.postfix("second")
    assert first.running() and second.running(), "both masters are running"
    assert first.port != second.port, f"different ports: {first.port} and {second.port}"
    before = len(first.delivered())
    m1 = MESSAGE.replace(b"Subject: byte-exact test", b"Subject: to the first")
    m2 = MESSAGE.replace(b"Subject: byte-exact test", b"Subject: to the second")
    results = {}

    def go(name, inst, msg):
        results[name] = inst.send("alice@example.org", ["dave@vigil.test"], msg)

    threads = [threading.Thread(target=go, args=("1", first, m1)),
               threading.Thread(target=go, args=("2", second, m2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["1"].ok and results["2"].ok, why("both accepted concurrently", f"{results['1']}\n{results['2']}")
    a = first.wait_delivered(before + 1, timeout=15)
    b = second.wait_delivered(1, timeout=15)
    assert len(a) == before + 1 and b"Subject: to the first" in a[-1], "first got its own message"
    assert len(b) == 1 and b"Subject: to the second" in b[0], "second got only its own message"
    assert first.master_pid != second.master_pid, "separate master processes"
    second.stop()
    assert first.running() and not second.running(), "stopping the second leaves the first running"


def test_any_domain(launch):
    """4b. domains=('*',): every domain is delivered locally (outbound tests)."""
    anyd = launch.postfix("anydomain", domains=("*",))
    r = anyd.send("bob@vigil.test", ["someone@example.com", "x@vigil.test"], MESSAGE)
    assert r.ok and [rep.code for _, rep in r.rcpts] == [250, 250], f"both recipients accepted: {r}"
    anyd.wait_delivered(2, timeout=15)
    assert len(anyd.delivered_to("someone@example.com")) == 1, "mail to example.com is in the Maildir"
    warnings = no_warnings(anyd)
    assert not warnings, why("no warnings in its log", "\n".join(warnings))


def test_milter_path(launch):
    """5. a minimal milter: protocol 6, header added, XCLIENT, non_smtpd_milters."""
    milter = FakeMilter()
    try:
        pf = launch.postfix("fakemilter", milter=milter.spec)
        r = pf.send("alice@example.org", ["bob@vigil.test"], MESSAGE)
        assert r.ok, why(f"accepted through the milter: {r.data}", str(r) + "\n" + pf._log_tail())
        got = pf.wait_delivered(1, timeout=15)[0]
        assert b"\nX-Fake-Milter: seen\n" in got, "the header added by the milter is delivered"
        assert ph.strip_added_headers(got) == as_lf(MESSAGE).replace(b"\n\n", b"\nX-Fake-Milter: seen\n\n", 1), \
            "the rest of the message is untouched (header appended at the end of the header block)"
        with milter.lock:
            conns = [e for e in milter.events if e[0] == "connect"]
        assert conns[:1] == [("connect", "[127.0.0.1]", "4", "127.0.0.1")], \
            (f"milter connect event: {conns[:1]} (smtpd_peername_lookup = no: Postfix "
             "passes the unknown name as [address])")

        r2 = pf.send("alice@example.org", ["bob@vigil.test"], MESSAGE,
                     xclient={"ADDR": "192.0.2.7", "NAME": "mail.example.com", "HELO": "mail.example.com"})
        assert r2.ok and r2.xclient is not None and r2.xclient.code == 220, \
            why(f"XCLIENT accepted: {r2.xclient}", str(r2))
        pf.wait_delivered(2, timeout=15)
        with milter.lock:
            conns = [e for e in milter.events if e[0] == "connect"]
        assert conns[-1] == ("connect", "mail.example.com", "4", "192.0.2.7"), \
            f"after XCLIENT the milter got a new connect event for mail.example.com / 192.0.2.7: {conns}"

        p = pf.sendmail("root@example.org", ["carol@vigil.test"], b"Subject: local\n\nhello\n")
        assert p.returncode == 0, why(f"sendmail -C DIR exit {p.returncode}", (p.stdout + p.stderr).decode())
        carol = vf.wait_until(lambda: pf.delivered_to("carol@vigil.test"), 15, 0.05)
        assert bool(carol) and b"\nX-Fake-Milter: seen\n" in carol[0], \
            why("a sendmail submission went through non_smtpd_milters", repr(carol)[:300] + pf._log_tail())
    finally:
        milter.close()


def test_stop_leaves_no_process(plain):
    """6. teardown: stop() leaves nothing behind, and a second stop() is harmless. The last test of the
    shared instance: it stops it."""
    pf = plain
    pf.stop()
    assert not pf.running() and no_instance_processes(pf) == [], "stop() leaves no process of the instance"
    pf.stop()
    assert not pf.running() and no_instance_processes(pf) == [], "stop() twice is harmless"


def test_watchdog_stops_instance_of_killed_process(workdir):
    """6. a test process that dies by SIGKILL: its watchdog must stop the instance."""
    wd = os.path.join(workdir, "killed")
    child = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {os.path.dirname(os.path.abspath(ph.__file__))!r})
import postfix_harness as ph
pf = ph.PostfixInstance({wd!r})
pf.start()
print(pf.master_pid, flush=True)
time.sleep(600)
"""], stdout=subprocess.PIPE, text=True)
    probe = ph.PostfixInstance(wd)  # not started: used to query the directories only
    try:
        line = child.stdout.readline().strip()
        master = int(line) if line.isdigit() else None
        assert master is not None and probe.running(), f"child started an instance (master {master})"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    vf.wait_until(lambda: not probe.running() and not no_instance_processes(probe), 15, 0.1)
    watchdog_log = os.path.join(wd, "watchdog.log")
    assert not probe.running() and no_instance_processes(probe) == [], \
        why("after SIGKILL of the test process the watchdog stopped its instance",
            open(watchdog_log).read() if os.path.exists(watchdog_log) else "")


def test_quick_start(launch):
    """6b. quick_start=True (harness makes the queue directories, Postfix's checks skipped)."""
    t0 = time.monotonic()
    quick = launch.postfix("quick", quick_start=True)
    took = time.monotonic() - t0
    p = subprocess.run([ph.POSTFIX, "-c", quick.config_dir, "check"], capture_output=True, text=True)
    assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), \
        why("`postfix check` accepts the queue directories the harness made",
            f"exit {p.returncode}: {p.stdout}{p.stderr}")
    r = quick.send("alice@example.org", ["bob@vigil.test"], MESSAGE)
    assert r.ok and len(quick.wait_delivered(1, timeout=15)) == 1, f"quick start ({took:.2f}s) delivers too"
    warnings = no_warnings(quick)
    assert not warnings, why("no warnings in its log", "\n".join(warnings))
