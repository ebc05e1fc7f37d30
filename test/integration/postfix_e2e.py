#!/usr/bin/env python3
"""End to end: a private Postfix instance with vigil-milter attached, driven over SMTP.

Checks what an operator relies on: delivered headers (our Authentication-Results on top, forged ones
removed, junk headers and subject tag), SMTP reply codes of refused mail at each stage, a quarantined
message in the hold queue, outbound mail left alone, hostile messages handled, exactly one decision line
per message, a SIGUSR1 reload (a broken file keeps the old config), and that killing the milter under
load makes Postfix tempfail: nothing accepted unchecked, nothing lost.

usage: postfix_e2e.py VIGIL_MILTER_BINARY
Needs root (Postfix's master runs as root). Exit 77 = skipped.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
import postfix_harness  # noqa: E402

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
AUTHSERV = "mx.vigil.test"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vigil-milter exited with {proc.returncode}")
        # /proc/net/tcp instead of connecting: a bare connection would look like a broken MTA.
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].split(":")[1], 16) == port:
                    return
        time.sleep(0.05)
    raise RuntimeError("vigil-milter did not start listening")


CONFIG = """
[milter]
socket = "inet:{port}@127.0.0.1"
user = "{user}"
allow_root = {allow_root}
timeout = 30

[server]
hostname = "{authserv}"
authserv_id = "{authserv}"
# 127.0.0.1 is where the test's SMTP client comes from: it must count as an outside sender here.
trusted_networks = ["192.0.2.0/24"]

[log]
format = "text"

[headers]
subject_tag = "[SPAM]"

[actions]
reject = 15.0
add_header = 6.0

[[checks.access.rule]]
match = "sender"
pattern = "@hold.test"
action = "quarantine"

[[checks.access.rule]]
match = "sender"
pattern = "@junk.test"
action = "score"
score = 7.5

[[checks.access.rule]]
match = "sender"
pattern = "@later.test"
action = "tempfail"

[[checks.access.rule]]
match = "rcpt"
pattern = "blocked@vigil.test"
action = "reject"
reply = "550 5.1.1 This mailbox does not take mail"
"""


def message(subject, body=b"Hello.\r\n", extra_headers=b""):
    return (b"From: Sender <sender@example.org>\r\nTo: rcpt@vigil.test\r\nSubject: " + subject.encode() +
            b"\r\nMessage-ID: <" + subject.replace(" ", "-").encode() + b"@example.org>\r\n" + extra_headers +
            b"\r\n" + body)


def headers_of(raw):
    head = raw.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n")
    fields = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = fields[-1] + b"\n" + line
        else:
            fields.append(line)
    return [f.decode("utf-8", "replace") for f in fields]


def find_delivered(pf, subject):
    for m in pf.delivered():
        if f"Subject: {subject}".encode() in m or f"Subject: [SPAM] {subject}".encode() in m:
            return m
    return None


def decision_lines(log_path):
    with open(log_path, encoding="utf-8", errors="replace") as f:
        return [l for l in f if re.search(r": (inbound|outbound) action=", l)]


def main():
    if os.geteuid() != 0:
        print("SKIP: the Postfix end-to-end test needs root (Postfix's master runs as root)")
        return 77
    milter_bin = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="vigil-e2e-")
    os.chmod(work, 0o755)
    port = free_port()
    user = "vigil"
    try:
        import pwd
        pwd.getpwnam(user)
        allow_root = "false"
    except KeyError:
        user, allow_root = "", "true"  # no vigil user on this machine: run as root, explicitly allowed
    conf = os.path.join(work, "vigil.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, user=user, allow_root=allow_root, authserv=AUTHSERV))
    os.chmod(conf, 0o644)
    log_path = os.path.join(work, "milter.log")
    log = open(log_path, "wb")
    milter = subprocess.Popen([milter_bin, "-f", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    pf = None
    try:
        wait_listening(port, milter)
        pf = postfix_harness.PostfixInstance(os.path.join(work, "postfix"), milter=f"inet:127.0.0.1:{port}")
        pf.start()
        expected_decisions = 0

        # 1. A clean message: delivered, our A-R on top, a forged one (claiming our id) removed.
        forged = (f"Authentication-Results: {AUTHSERV}; spf=pass smtp.mailfrom=example.org\r\n"
                  "Authentication-Results: other.example; dkim=pass header.d=example.org\r\n").encode()
        r = pf.send("sender@example.org", ["rcpt@vigil.test"], message("clean one", extra_headers=forged))
        check(r.ok, f"clean message accepted ({r.data})")
        expected_decisions += 1
        pf.wait_delivered(1)
        m = find_delivered(pf, "clean one")
        check(m is not None, "clean message delivered")
        if m:
            hs = headers_of(m)
            ar = [h for h in hs if h.lower().startswith("authentication-results:")]
            check(ar and ar[0] == f"Authentication-Results: {AUTHSERV}; none", f"our Authentication-Results: {ar[:1]}")
            check(len(ar) == 2 and "other.example" in ar[1], "the other host's Authentication-Results kept")
            check(not any("spf=pass" in h for h in ar), "the forged Authentication-Results claiming our id removed")
            idx_ar = hs.index(ar[0])
            idx_from = next(i for i, h in enumerate(hs) if h.startswith("From:"))
            check(idx_ar < idx_from, "Authentication-Results sits above the message's own header")
            check(not any(h.startswith("X-Spam-Flag") for h in hs), "no junk headers on a clean message")
            body = m.split(b"\n\n", 1)[1]
            check(body == b"Hello.\n", "body delivered unchanged")

        # 2. Junk: score 7.5 >= add_header 6 -> headers and subject tag, still delivered.
        r = pf.send("x@junk.test", ["rcpt@vigil.test"], message("junk two"))
        check(r.ok, "junk message accepted")
        expected_decisions += 1
        pf.wait_delivered(2)
        m = find_delivered(pf, "junk two")
        check(m is not None, "junk message delivered")
        if m:
            hs = headers_of(m)
            check("X-Spam-Flag: YES" in hs, "X-Spam-Flag: YES")
            check("X-Spam-Score: 7.50" in hs, "X-Spam-Score: 7.50")
            check(any(h.startswith("X-Spam-Status: Yes, score=7.50 required=6.00 tests=ACCESS_SENDER") for h in hs),
                  "X-Spam-Status names the symbols")
            check("Subject: [SPAM] junk two" in hs, "subject tagged")

        # 3. GTUBE: rejected after DATA with the check's own reply; not delivered.
        r = pf.send("sender@example.org", ["rcpt@vigil.test"], message("gtube three", body=GTUBE + b"\r\n"))
        check(r.failed_stage == "data" and r.data and r.data.code == 554 and "5.7.1" in r.data.text,
              f"GTUBE rejected with 554 5.7.1 ({r.data})")
        expected_decisions += 1

        # 4. Quarantine: accepted, then held.
        r = pf.send("x@hold.test", ["rcpt@vigil.test"], message("hold four"))
        check(r.ok, "quarantined message accepted by SMTP")
        expected_decisions += 1
        deadline = time.time() + 10
        while time.time() < deadline and not pf.hold_queue():
            time.sleep(0.1)
        held = pf.hold_queue()
        check(len(held) == 1 and r.queue_id in held, f"message in the hold queue ({held}, {r.queue_id})")

        # 5. Tempfail decided at MAIL FROM, given at RCPT TO (delay_reject, the default).
        r = pf.send("x@later.test", ["rcpt@vigil.test"], message("later five"))
        rcpt_reply = r.rcpts[0][1] if r.rcpts else None
        check(r.mail is not None and r.mail.code == 250 and rcpt_reply is not None and rcpt_reply.code == 451
              and "4.7.1" in rcpt_reply.text, f"MAIL accepted, then tempfail at RCPT ({r.mail}; {rcpt_reply})")

        # 6. One recipient refused at RCPT with the rule's reply, the other delivered.
        r = pf.send("sender@example.org", ["blocked@vigil.test", "rcpt2@vigil.test"], message("rcpt six"))
        codes = {a: rep.code for a, rep in r.rcpts}
        check(codes.get("blocked@vigil.test") == 550 and codes.get("rcpt2@vigil.test") == 250,
              f"RCPT replies {codes}")
        check(any("5.1.1" in rep.text for a, rep in r.rcpts if a == "blocked@vigil.test"), "rule's reply text used")
        check(r.ok, "message to the remaining recipient accepted")
        expected_decisions += 1

        # 7. Outbound (a trusted network, via XCLIENT): no Authentication-Results of ours.
        r = pf.send("me@vigil.test", ["rcpt@vigil.test"], message("outbound seven"),
                    xclient={"ADDR": "192.0.2.7", "NAME": "client.vigil.test"})
        check(r.ok, "outbound message accepted")
        expected_decisions += 1

        # 8. Hostile messages: no header, 8-bit junk and NUL bytes, no final CRLF, a 200 KiB header line,
        #    and many header fields. Each gets a verdict; the milter stays up.
        hostile = [
            ("no header", b"just a body line\r\nand another\r\n"),
            ("8bit", b"From: a@example.org\r\nSubject: 8bit\xff\xfe\r\nX-Bin: \x01\x02\x7f\r\n\r\n\xe9t\xe9 \x00 nul\r\n"),
            ("nocrlf", b"From: a@example.org\r\nSubject: nocrlf\r\n\r\nno final line end"),
            ("longhdr", b"From: a@example.org\r\nSubject: longhdr\r\nX-Long: " + b"a" * 200_000 + b"\r\n\r\nbody\r\n"),
            ("manyhdr", b"From: a@example.org\r\nSubject: manyhdr\r\n" + b"".join(b"X-N%d: v\r\n" % i for i in range(3000)) +
             b"\r\nbody\r\n"),
        ]
        for name, data in hostile:
            r = pf.send("sender@example.org", ["rcpt@vigil.test"], data)
            check(r.ok or (r.data is not None and r.data.code in (451, 550, 554)), f"hostile '{name}': clean answer ({r.data})")
            expected_decisions += 1
        check(milter.poll() is None, "vigil-milter still running after hostile input")

        # Exactly one decision line per message that reached end of data, with Postfix's queue id.
        time.sleep(0.3)
        lines = decision_lines(log_path)
        check(len(lines) == expected_decisions, f"{len(lines)} decision lines for {expected_decisions} messages")
        clean_qid = [l for l in lines if "action=accept" in l]
        check(bool(clean_qid) and re.search(r": [0-9A-F]{6,}: inbound action=accept score=0\.00/15\.00 ", clean_qid[0]) is not None,
              f"decision line format with queue id: {clean_qid[:1]}")
        check(any("outbound action=accept" in l for l in lines), "outbound decision logged as outbound")
        check(any("action=quarantine" in l for l in lines), "quarantine decision logged")
        with open(log_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        check(re.search(r"reject at rcpt reply=\"550 5\.1\.1 .*rcpt=<blocked@vigil\.test>", text) is not None,
              "RCPT refusal logged")
        check(re.search(r"tempfail at mail reply=\"451 4\.7\.1", text) is not None, "MAIL tempfail logged")
        check("internal error" not in text, "no internal errors logged")

        # 9. SIGUSR1 with a broken file keeps the running config; a good file is taken.
        with open(conf) as f:
            good = f.read()
        with open(conf, "w") as f:
            f.write(good + "\n[milter]\nnonsense = 1\n")
        milter.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        with open(log_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        check("reload of" in text and "keeping the running configuration" in text, "broken reload reported")
        r = pf.send("x@junk.test", ["rcpt@vigil.test"], message("after bad reload"))
        check(r.ok and milter.poll() is None, "still serving with the old configuration after a broken reload")
        with open(conf, "w") as f:
            f.write(good.replace("score = 7.5", "score = 8.25"))
        milter.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        r = pf.send("x@junk.test", ["rcpt@vigil.test"], message("after good reload"))
        time.sleep(0.3)
        check(any("score=8.25/" in l for l in decision_lines(log_path)), "a good reload takes effect")

        # 10. Kill the milter under load, mid-message: every message is either accepted and checked, or
        #     answered 4xx (the client keeps it). Nothing accepted unchecked, nothing lost.
        before = len(pf.delivered())
        results = []
        stop = threading.Event()

        def sender(n):
            i = 0
            while not stop.is_set() and i < 200:
                subj = f"load {n}-{i}"
                res = pf.send("sender@example.org", ["rcpt@vigil.test"], message(subj, body=b"x" * 20000 + b"\r\n"),
                              timeout=30)
                results.append((subj, res))
                i += 1

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        # A transaction caught mid-DATA by the kill as well: send half the data, kill, finish it.
        mid = postfix_harness.smtplib.SMTP("127.0.0.1", pf.port, timeout=30)
        mid.ehlo("mid.example.net")
        mid.mail("sender@example.org")
        mid.rcpt("rcpt@vigil.test")
        mid.putcmd("DATA")
        mid.getreply()
        mid.sock.sendall(message("mid kill")[:60])
        milter.kill()
        milter.wait()
        mid.sock.sendall(message("mid kill")[60:] + b"\r\n.\r\n")
        code, text = mid.getreply()
        check(400 <= code < 500, f"message in flight when the milter died: {code} {text.decode(errors='replace')}")
        mid.close()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        accepted = [s for s, res in results if res.ok]
        def tempfailed(res):
            # The milter may die at any point of the dialogue: a 4xx at MAIL, at every RCPT, after DATA
            # or after the final dot all leave the message with the client, to be retried.
            replies = {"mail": [res.mail], "rcpt": [rep for _, rep in res.rcpts], "data_cmd": [res.data_cmd],
                       "data": [res.data]}.get(res.failed_stage, [])
            return bool(replies) and all(rep is not None and 400 <= rep.code < 500 for rep in replies)

        deferred = [s for s, res in results if res.failed_stage and tempfailed(res)]
        other = [(s, res.failed_stage) for s, res in results if not res.ok and s not in deferred]
        check(len(accepted) > 0 and len(deferred) > 0, f"load: {len(accepted)} accepted, {len(deferred)} deferred")
        check(not other, f"every refused message was deferred (4xx), none rejected or dropped: {other[:3]}")
        time.sleep(1.0)
        delivered = pf.wait_delivered(before + len(accepted), timeout=30)
        new = delivered[before:]
        check(len(new) == len(accepted), f"{len(new)} delivered for {len(accepted)} accepted (nothing lost)")
        unchecked = [m for m in new if f"Authentication-Results: {AUTHSERV}".encode() not in m]
        check(not unchecked, f"every delivered message was checked by vigil ({len(unchecked)} without our header)")
        check(find_delivered(pf, "mid kill") is None, "the message in flight was not delivered unchecked")
        r = pf.send("sender@example.org", ["rcpt@vigil.test"], message("milter down"))
        check(r.failed_stage == "mail" and r.mail.code == 451, f"with the milter down: 451 at MAIL ({r.mail})")
    finally:
        if milter.poll() is None:
            milter.kill()
            milter.wait()
        if pf is not None:
            pf.stop()
        log.close()
    if failures:
        print(f"\n{len(failures)} check(s) failed; milter log and Postfix instance kept in {work}")
        with open(log_path, encoding="utf-8", errors="replace") as f:
            print("--- milter log (last 40 lines) ---")
            print("".join(f.readlines()[-40:]))
        return 1
    subprocess.run(["rm", "-rf", work])
    print("all end-to-end checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
