"""End to end: a private Postfix instance with vigil-milter attached, driven over SMTP.

Checks what an operator relies on: delivered headers (our Authentication-Results on top, forged ones
removed, junk headers and subject tag), SMTP reply codes of refused mail at each stage, a quarantined
message in the hold queue, outbound mail left alone, hostile messages handled, exactly one decision line
per message, a SIGUSR1 reload (a broken file keeps the old config), and that killing the milter under
load makes Postfix tempfail: nothing accepted unchecked, nothing lost.

    pytest test/integration/postfix_e2e.py [--vigil-milter PATH] [-k gtube]

One milter and one Postfix serve the scenarios up to the decision lines; the reload and the kill get
their own. Needs root (Postfix's master runs as root): skipped otherwise.
"""
import re
import threading
import time

import pytest

import postfix_harness
import vigil_fixtures as vf
from vigil_fixtures import AUTHSERV, GTUBE

pytestmark = vf.needs_postfix

CONFIG = """
[milter]
timeout = 30

[server]
hostname = "mx.vigil.test"
authserv_id = "mx.vigil.test"
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


def wait_delivered(pf, subject, timeout=30):
    """The delivered message with this subject (tagged or not), waiting for it; None if none came."""
    return pf.wait_message(rb"^Subject: (\[SPAM\] )?" + re.escape(subject.encode()) + rb"$", timeout)


def decision_lines(log_path):
    with open(log_path, encoding="utf-8", errors="replace") as f:
        return [l for l in f if re.search(r": (inbound|outbound) action=", l)]


# The names the script version of this file offered: test files not yet written with the fixtures
# import them (postfix_header_edits.py, postfix_dmarc_bypass.py).
free_port = vf.free_port
failures = []


def wait_listening(port, proc, timeout=10):
    vf.wait_listening_tcp(port, proc, timeout)


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


# ------------------------------------------------------------------------------------------- fixtures


class Mx:
    """A milter and the Postfix in front of it, and the scenario messages sent through them: each is
    sent once, by the first test that needs it, so that any test can run alone."""

    def __init__(self, milter, pf):
        self.milter, self.pf = milter, pf
        self.results = {}
        self.decided = 0  # messages that reached end of data: one decision line each

    def send(self, name, mail_from, rcpts, data, *, decided=True, **kw):
        if name not in self.results:
            self.results[name] = self.pf.send(mail_from, rcpts, data, **kw)
            self.decided += decided
        return self.results[name]


def start_mx(launch, name, **postfix_options):
    milter = launch.milter(f"{name}-milter", CONFIG)
    return Mx(milter, launch.postfix(f"{name}-postfix", milter, **postfix_options))


@pytest.fixture(scope="module")
def mx(module_launch):
    return start_mx(module_launch, "shared")


FORGED = (f"Authentication-Results: {AUTHSERV}; spf=pass smtp.mailfrom=example.org\r\n"
          "Authentication-Results: other.example; dkim=pass header.d=example.org\r\n").encode()

# Hostile messages: no header, 8-bit junk and NUL bytes, no final CRLF, a 200 KiB header line, and
# many header fields.
HOSTILE = {
    "noheader": b"just a body line\r\nand another\r\n",
    "8bit": b"From: a@example.org\r\nSubject: 8bit\xff\xfe\r\nX-Bin: \x01\x02\x7f\r\n\r\n\xe9t\xe9 \x00 nul\r\n",
    "nocrlf": b"From: a@example.org\r\nSubject: nocrlf\r\n\r\nno final line end",
    "longhdr": b"From: a@example.org\r\nSubject: longhdr\r\nX-Long: " + b"a" * 200_000 + b"\r\n\r\nbody\r\n",
    "manyhdr": b"From: a@example.org\r\nSubject: manyhdr\r\n" + b"".join(b"X-N%d: v\r\n" % i for i in range(3000)) +
               b"\r\nbody\r\n",
}

SCENARIOS = {
    "clean": lambda mx: mx.send("clean", "sender@example.org", ["rcpt@vigil.test"],
                                message("clean one", extra_headers=FORGED)),
    "junk": lambda mx: mx.send("junk", "x@junk.test", ["rcpt@vigil.test"], message("junk two")),
    "gtube": lambda mx: mx.send("gtube", "sender@example.org", ["rcpt@vigil.test"],
                                message("gtube three", body=GTUBE + b"\r\n")),
    "hold": lambda mx: mx.send("hold", "x@hold.test", ["rcpt@vigil.test"], message("hold four")),
    "later": lambda mx: mx.send("later", "x@later.test", ["rcpt@vigil.test"], message("later five"), decided=False),
    "rcpt": lambda mx: mx.send("rcpt", "sender@example.org", ["blocked@vigil.test", "rcpt2@vigil.test"],
                               message("rcpt six")),
    "outbound": lambda mx: mx.send("outbound", "me@vigil.test", ["rcpt@vigil.test"], message("outbound seven"),
                                   xclient={"ADDR": "192.0.2.7", "NAME": "client.vigil.test"}),
    **{f"hostile {name}": (lambda mx, name=name: mx.send(f"hostile {name}", "sender@example.org",
                                                          ["rcpt@vigil.test"], HOSTILE[name]))
       for name in HOSTILE},
}


# ------------------------------------------------------------------------------------------- scenarios


def test_clean_message(mx):
    """Delivered, our A-R on top, a forged one (claiming our id) removed."""
    r = SCENARIOS["clean"](mx)
    assert r.ok, f"clean message accepted ({r.data})"
    m = wait_delivered(mx.pf, "clean one")
    assert m is not None, "clean message delivered"
    hs = headers_of(m)
    ar = [h for h in hs if h.lower().startswith("authentication-results:")]
    assert ar and ar[0] == f"Authentication-Results: {AUTHSERV}; none", f"our Authentication-Results: {ar[:1]}"
    assert len(ar) == 2 and "other.example" in ar[1], "the other host's Authentication-Results kept"
    assert not any("spf=pass" in h for h in ar), "the forged Authentication-Results claiming our id removed"
    idx_ar = hs.index(ar[0])
    idx_from = next(i for i, h in enumerate(hs) if h.startswith("From:"))
    assert idx_ar < idx_from, "Authentication-Results sits above the message's own header"
    assert not any(h.startswith("X-Spam-Flag") for h in hs), "no junk headers on a clean message"
    body = m.split(b"\n\n", 1)[1]
    assert body == b"Hello.\n", "body delivered unchanged"


def test_junk_gets_headers_and_subject_tag(mx):
    """Score 7.5 >= add_header 6: headers and subject tag, still delivered."""
    r = SCENARIOS["junk"](mx)
    assert r.ok, "junk message accepted"
    m = wait_delivered(mx.pf, "junk two")
    assert m is not None, "junk message delivered"
    hs = headers_of(m)
    assert "X-Spam-Flag: YES" in hs, "X-Spam-Flag: YES"
    assert "X-Spam-Score: 7.50" in hs, "X-Spam-Score: 7.50"
    assert any(h.startswith("X-Spam-Status: Yes, score=7.50 required=6.00 tests=ACCESS_SENDER") for h in hs), \
        "X-Spam-Status names the symbols"
    assert "Subject: [SPAM] junk two" in hs, "subject tagged"


def test_gtube_rejected_after_data(mx):
    """Rejected after DATA with the check's own reply; not delivered."""
    r = SCENARIOS["gtube"](mx)
    assert r.failed_stage == "data" and r.data and r.data.code == 554 and "5.7.1" in r.data.text, \
        f"GTUBE rejected with 554 5.7.1 ({r.data})"


def test_quarantine_goes_to_hold_queue(mx):
    r = SCENARIOS["hold"](mx)
    assert r.ok, "quarantined message accepted by SMTP"
    vf.wait_until(mx.pf.hold_queue, 10, 0.1)
    held = mx.pf.hold_queue()
    assert len(held) == 1 and r.queue_id in held, f"message in the hold queue ({held}, {r.queue_id})"


def test_tempfail_decided_at_mail_given_at_rcpt(mx):
    """Tempfail decided at MAIL FROM, given at RCPT TO (delay_reject, the default)."""
    r = SCENARIOS["later"](mx)
    rcpt_reply = r.rcpts[0][1] if r.rcpts else None
    assert (r.mail is not None and r.mail.code == 250 and rcpt_reply is not None and rcpt_reply.code == 451
            and "4.7.1" in rcpt_reply.text), f"MAIL accepted, then tempfail at RCPT ({r.mail}; {rcpt_reply})"


def test_one_recipient_refused_at_rcpt(mx):
    """One recipient refused at RCPT with the rule's reply, the other delivered."""
    r = SCENARIOS["rcpt"](mx)
    codes = {a: rep.code for a, rep in r.rcpts}
    assert codes.get("blocked@vigil.test") == 550 and codes.get("rcpt2@vigil.test") == 250, f"RCPT replies {codes}"
    assert any("5.1.1" in rep.text for a, rep in r.rcpts if a == "blocked@vigil.test"), "rule's reply text used"
    assert r.ok, "message to the remaining recipient accepted"


def test_outbound_accepted(mx):
    """Outbound (a trusted network, via XCLIENT)."""
    r = SCENARIOS["outbound"](mx)
    assert r.ok, "outbound message accepted"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_message(mx, name):
    """Each gets a verdict; the milter stays up."""
    r = SCENARIOS[f"hostile {name}"](mx)
    assert r.ok or (r.data is not None and r.data.code in (451, 550, 554)), \
        f"hostile '{name}': clean answer ({r.data})"
    assert mx.milter.alive(), "vigil-milter still running after hostile input"


def test_one_decision_line_per_message(mx):
    """Exactly one decision line per message that reached end of data, with Postfix's queue id
    (the scenarios above; those not run yet are sent here)."""
    for send in SCENARIOS.values():
        send(mx)
    vf.wait_until(lambda: len(decision_lines(mx.milter.log_path)) >= mx.decided, 5)
    time.sleep(0.3)
    lines = decision_lines(mx.milter.log_path)
    assert len(lines) == mx.decided, f"{len(lines)} decision lines for {mx.decided} messages"
    clean_qid = [l for l in lines if f": {mx.results['clean'].queue_id}: " in l]
    assert bool(clean_qid) and re.search(r": [0-9A-F]{6,}: inbound action=accept score=0\.00/15\.00 ",
                                         clean_qid[0]) is not None, \
        f"decision line format with queue id: {clean_qid[:1]}"
    assert any("outbound action=accept" in l for l in lines), "outbound decision logged as outbound"
    assert any("action=quarantine" in l for l in lines), "quarantine decision logged"
    text = mx.milter.log()
    assert re.search(r"reject at rcpt reply=\"550 5\.1\.1 .*rcpt=<blocked@vigil\.test>", text) is not None, \
        "RCPT refusal logged"
    assert re.search(r"tempfail at mail reply=\"451 4\.7\.1", text) is not None, "MAIL tempfail logged"
    assert "internal error" not in text, "no internal errors logged"


# ------------------------------------------------------------------------------------------- own milter


def test_sigusr1_reload(launch):
    """SIGUSR1 with a broken file keeps the running config; a good file is taken."""
    mx = start_mx(launch, "reload", quick_start=True)
    with open(mx.milter.conf) as f:
        good = f.read()
    mx.milter.reload(raw=good + "\n[milter]\nnonsense = 1\n")
    text = mx.milter.log()
    assert "reload of" in text and "keeping the running configuration" in text, "broken reload reported"
    r = mx.pf.send("x@junk.test", ["rcpt@vigil.test"], message("after bad reload"))
    assert r.ok and mx.milter.alive(), "still serving with the old configuration after a broken reload"
    mx.milter.reload(config=CONFIG.replace("score = 7.5", "score = 8.25"))
    r = mx.pf.send("x@junk.test", ["rcpt@vigil.test"], message("after good reload"))
    vf.wait_until(lambda: any("score=8.25/" in l for l in decision_lines(mx.milter.log_path)), 3)
    assert any("score=8.25/" in l for l in decision_lines(mx.milter.log_path)), "a good reload takes effect"


def test_milter_killed_under_load(launch):
    """Kill the milter under load, mid-message: every message is either accepted and checked, or
    answered 4xx (the client keeps it). Nothing accepted unchecked, nothing lost."""
    mx = start_mx(launch, "kill", quick_start=True)
    milter, pf = mx.milter, mx.pf
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
    try:
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
        mid.sock.sendall(message("mid kill")[60:] + b"\r\n.\r\n")
        code, text = mid.getreply()
        mid.close()
        assert 400 <= code < 500, f"message in flight when the milter died: {code} {text.decode(errors='replace')}"
        time.sleep(1.0)
    finally:
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
    assert len(accepted) > 0 and len(deferred) > 0, f"load: {len(accepted)} accepted, {len(deferred)} deferred"
    assert not other, f"every refused message was deferred (4xx), none rejected or dropped: {other[:3]}"
    time.sleep(1.0)
    delivered = pf.wait_delivered(before + len(accepted), timeout=30)
    new = delivered[before:]
    assert len(new) == len(accepted), f"{len(new)} delivered for {len(accepted)} accepted (nothing lost)"
    unchecked = [m for m in new if f"Authentication-Results: {AUTHSERV}".encode() not in m]
    assert not unchecked, f"every delivered message was checked by vigil ({len(unchecked)} without our header)"
    assert find_delivered(pf, "mid kill") is None, "the message in flight was not delivered unchecked"
    r = pf.send("sender@example.org", ["rcpt@vigil.test"], message("milter down"))
    assert r.failed_stage == "mail" and r.mail.code == 451, f"with the milter down: 451 at MAIL ({r.mail})"
