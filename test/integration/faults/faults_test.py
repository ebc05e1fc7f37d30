"""Fault matrix: the real vigil-milter under DNS failures and oversized input.

    pytest test/integration/faults/faults_test.py [--vigil-milter PATH --vigil-cli PATH --vigil-test-dns PATH]

Each case starts its own vigil-milter (so no answer cached by an earlier case hides a fault) against
vigil-test-dns serving zones written to a temp dir, drives it with test/support/milter_client.py (a
Postfix-like milter client), and asserts the outcome the README promises ("Security and failure
behaviour"). The message is DKIM-signed (Ed25519) by fault.test, whose SPF record covers the client,
whose DMARC policy is p=reject, and whose client IP has matching reverse DNS: with healthy DNS every
check passes, so each fault shows as a change in what the checks say.

  healthy DNS                 accept; spf=pass dkim=pass iprev=pass (the baseline the faults differ from)
  DNS server down             accept; spf/dkim/iprev temperror, RBL_TEMPFAIL; every stage within the budget
  DNS server down, tempfail_on_temperror
                              451 4.4.3 at RCPT TO (decided at MAIL FROM): the sender retries, nothing accepted unchecked
  answers only after the stage budget
                              as "down": temperror, and no stage waits longer than the budget
  SERVFAIL for every name     as "down"; with tempfail_on_temperror 451 4.4.3 at RCPT TO
  truncated UDP answers (TC)  as healthy: the resolver retries over TCP, spf=pass dkim=pass
  10,000 recipients           every RCPT answered CONTINUE, accept, decision line says rcpts=10000
  a 50 MB message             dkim=pass over the whole body, accept; the body is never held: RSS grows
                              by less than 40 MB
  full disk under the DMARC report store ([dmarc_reports], a 256 KB tmpfs filled up)
                              every message accepted with dmarc=pass; one "writing failed ... mail is not
                              affected" warning line (needs root for the mount, else noted and left out)
Every case: the daemon is still alive, exactly one decision line per message, no internal error.

Covered elsewhere (not repeated here): SIGKILL under load and SIGUSR1 with a broken config
(postfix_e2e.py); 5,000 header fields, a 1 MB header line, NUL bytes, commands out of order
(milter_protocol_test.py). About 30 s. test/bench/soak.py uses this set-up (zones, config, signed mail).
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import time

import pytest

import milter_client as mc
import vigil_fixtures as vf

AUTHSERV = "mx.vigil.test"
CLIENT_IP = "203.0.113.5"
HELO = "mx.fault.test"
SENDER = "sender@fault.test"
BUDGET_MS = 700
# What a stage may take on top of the budget: the reply's round trip and a loaded CI machine.
SLACK_S = 1.5


# ---------------------------------------------------------------------------------------------- set-up


def zones(workdir: str, key_txt: str) -> list[str]:
    """The zone files: fault.test (SPF, DKIM key, DMARC, the client's name), its reverse zone, a list."""
    strings = " ".join(f'"{key_txt[i:i + 250]}"' for i in range(0, len(key_txt), 250))
    files = {
        "fault.test.zone": f"""$ORIGIN fault.test.
$TTL 300
@       IN SOA ns hostmaster 1 7200 900 1209600 300
@       IN NS  ns
ns      IN A   127.0.0.1
@       IN TXT "v=spf1 ip4:203.0.113.0/24 -all"
mx      IN A   {CLIENT_IP}
mx      IN TXT "v=spf1 a -all"
_dmarc  IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@fault.test"
sel._domainkey IN TXT ( {strings} )
""",
        "reverse.zone": """$ORIGIN 113.0.203.in-addr.arpa.
$TTL 300
@       IN SOA ns.fault.test. hostmaster.fault.test. 1 7200 900 1209600 300
@       IN NS  ns.fault.test.
5       IN PTR mx.fault.test.
""",
        "bl.zone": """$ORIGIN bl.fault.test.
$TTL 300
@         IN SOA ns.fault.test. hostmaster.fault.test. 1 7200 900 1209600 300
@         IN NS  ns.fault.test.
2.0.0.127 IN A   127.0.0.2
""",
    }
    paths = []
    for name, text in files.items():
        p = os.path.join(workdir, name)
        with open(p, "w") as f:
            f.write(text)
        paths.append(p)
    return paths


CONFIG = """\
[milter]
timeout = 60

[server]
hostname = "{authserv}"
authserv_id = "{authserv}"
trusted_networks = ["192.0.2.0/24"]

[dns]
stage_budget_ms = {budget}

[log]
format = "text"

[checks.iprev]
enabled = true
[checks.helo]
enabled = true
[checks.dnsbl]
enabled = true
[[checks.dnsbl.list]]
name = "faultbl"
zone = "bl.fault.test"
[checks.spf]
enabled = true
tempfail_on_temperror = {tempfail}
[checks.dkim]
enabled = true
[checks.dmarc]
enabled = true
{extra}"""



def milter_config(tempfail: bool = False, extra: str = "") -> str:
    return CONFIG.format(authserv=AUTHSERV, budget=BUDGET_MS, tempfail="true" if tempfail else "false", extra=extra)


def milter_env() -> dict[str, str]:
    """Under ASan (the sanitizer build runs this test too) freed memory waits in a 256 MB quarantine,
    which would read as growth; a small one keeps the RSS check about what Vigil holds."""
    return {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=8"]))}


def keygen(cli: str, workdir: str) -> tuple[str, str]:
    """An Ed25519 key for fault.test, selector sel: (private key file, the p= record text)."""
    keydir = os.path.join(workdir, "keys")
    os.mkdir(keydir)
    gen = subprocess.run([cli, "dkim", "keygen", "--domain", "fault.test", "--selector", "sel", "--type",
                          "ed25519", "--out", keydir], capture_output=True, text=True, timeout=60)
    m = re.search(r'"(v=DKIM1;[^"]*)"', gen.stdout)
    if gen.returncode != 0 or not m:
        raise RuntimeError(f"vigil dkim keygen: {gen.stdout} {gen.stderr}")
    return os.path.join(keydir, "fault.test.sel.pem"), m.group(1)


class Outcome:
    def __init__(self):
        self.stage_s: dict[str, float] = {}
        self.final: str = ""         # the reply that ended the transaction: CONTINUE/ACCEPT/REPLYCODE ...
        self.reply_text: str | None = None
        self.stage: str = ""
        self.ar: str = ""            # our Authentication-Results value
        self.qid: str | None = None
        self.rcpt_replies: list[str] = []


def transaction(m: vf.Milter, message: bytes, rcpts=("user@vigil.test",)) -> Outcome:
    """One SMTP session with one message, event by event, timing every stage that may wait for DNS."""
    out = Outcome()
    headers, body = mc.split_message(message)
    with mc.MilterClient(m.address, timeout=60) as c:
        c.negotiate()

        def step(name, fn):
            t = time.monotonic()
            r = fn()
            out.stage_s[name] = time.monotonic() - t
            if r is not None and r.code != mc.SMFIR_CONTINUE:
                out.final, out.stage, out.reply_text = r.name, name, r.text
                return False
            return True

        if not step("connect", lambda: c.connect(f"[{CLIENT_IP}]", CLIENT_IP)):
            return out
        if not step("helo", lambda: c.helo(HELO)):
            return out
        if not step("mail", lambda: c.mail(f"<{SENDER}>")):
            return out
        t = time.monotonic()
        refused = []
        for r in rcpts:
            rep = c.rcpt(f"<{r}>")
            out.rcpt_replies.append(rep.name if rep else "none")
            if rep is not None and rep.code != mc.SMFIR_CONTINUE:
                refused.append(rep)
        out.stage_s["rcpt"] = time.monotonic() - t
        if refused and len(refused) == len(rcpts):
            # With delay_reject (the default) a refusal decided at MAIL FROM comes here.
            out.final, out.stage, out.reply_text = refused[0].name, "rcpt", refused[0].text
            return out
        out.qid = c.queue_id
        if not step("data", c.data):
            return out
        for name, value in headers:
            c.header(name, value)
        t = time.monotonic()
        c.eoh()
        for r in c.body(body):
            if r is not None and r.code != mc.SMFIR_CONTINUE:
                out.final, out.stage = r.name, "body"
                return out
        eom = c.eom()
        out.stage_s["eom"] = time.monotonic() - t
        out.final, out.stage, out.reply_text = eom.reply.name, "eom", eom.reply.text
        ars = [x.value for x in eom.modifications
               if isinstance(x, mc.InsertHeader) and x.name == "Authentication-Results"]
        out.ar = ars[0] if ars else ""
        c.abort()
        c.quit()
    return out


def signed_message(cli: str, key: str, body: bytes, workdir: str) -> bytes:
    raw = (b"From: Sender <" + SENDER.encode() + b">\r\nTo: user@vigil.test\r\nSubject: fault matrix\r\n"
           b"Message-ID: <fault@fault.test>\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\n" + body)
    path = os.path.join(workdir, "unsigned.eml")
    with open(path, "wb") as f:
        f.write(raw)
    done = subprocess.run([cli, "dkim", "sign", "--key", key, "--domain", "fault.test", "--selector", "sel",
                           "--algorithm", "ed25519-sha256", path], capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"vigil dkim sign failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


# ---------------------------------------------------------------------------------------------- checks


def common(m: vf.Milter, what: str, expected_messages: int) -> None:
    assert m.alive(), f"{what}: vigil-milter still running"
    d = m.decisions()
    assert len(d) == expected_messages, f"{what}: {len(d)} decision line(s), want {expected_messages}"
    errors = [l for l in m.log().splitlines() if "internal error" in l]
    assert not errors, f"{what}: no internal error logged {errors[:2]}"


def within_budget(o: Outcome, what: str) -> None:
    slow = {k: round(v, 2) for k, v in o.stage_s.items() if v > BUDGET_MS / 1000 + SLACK_S}
    assert not slow, (f"{what}: no stage waited past the {BUDGET_MS} ms budget (+{SLACK_S} s slack): "
                      f"{ {k: round(v, 2) for k, v in o.stage_s.items()} }")


def ar_has(o: Outcome, *parts: str) -> bool:
    return all(p in o.ar for p in parts)


def temperror_outcome(m: vf.Milter, what: str, msg: bytes) -> None:
    o = transaction(m, msg)
    assert o.final in ("ACCEPT", "CONTINUE") and o.stage == "eom", \
        f"{what}: accepted with temperror results (default config): {o.final} at {o.stage} {o.reply_text or ''}"
    assert ar_has(o, "spf=temperror", "dkim=temperror", "iprev=temperror"), \
        f"{what}: spf=temperror dkim=temperror iprev=temperror in Authentication-Results: {o.ar!r}"
    d = m.decisions()
    syms = d[-1]["symbols"] if d else ""
    assert all(s in syms for s in ("SPF_TEMPERROR", "DKIM_TEMPERROR", "IPREV_TEMPERROR", "RBL_TEMPFAIL")), \
        f"{what}: SPF_TEMPERROR DKIM_TEMPERROR IPREV_TEMPERROR RBL_TEMPFAIL in the decision line: {syms}"
    within_budget(o, what)


def tempfail_outcome(m: vf.Milter, what: str, msg: bytes) -> None:
    o = transaction(m, msg)
    assert o.stage == "rcpt" and o.final == "REPLYCODE" and (o.reply_text or "").startswith("451 4.4.3"), \
        (f"{what}: 451 4.4.3 at RCPT TO, decided at MAIL FROM (tempfail_on_temperror, delay_reject): "
        f"{o.final} at {o.stage} {o.reply_text!r}")
    within_budget(o, what)


# ---------------------------------------------------------------------------------------------- tests


class Env:
    """What every case shares: the DKIM key, the zone files and the signed message."""

    def __init__(self, binaries, workdir):
        self.cli = binaries.cli
        self.work = workdir
        self.key, key_txt = keygen(binaries.cli, workdir)
        self.zones = zones(workdir, key_txt)
        self.msg = signed_message(binaries.cli, self.key, b"Hello from the fault matrix.\r\n", workdir)


@pytest.fixture(scope="module")
def env(binaries, workdir) -> Env:
    return Env(binaries, workdir)


def start_milter(launch, name: str, dns, tempfail: bool = False, extra: str = "") -> vf.Milter:
    """Each case starts its own vigil-milter, so that no answer cached by an earlier case hides a fault."""
    return launch.milter(name, milter_config(tempfail, extra), dns=dns, env=milter_env())


def test_healthy(env, launch):
    what = "healthy DNS"
    dns = launch.dns(env.zones)
    m = start_milter(launch, "healthy", dns)
    o = transaction(m, env.msg)
    assert o.final in ("ACCEPT", "CONTINUE") and o.stage == "eom", f"{what}: accepted ({o.final} at {o.stage})"
    assert ar_has(o, "spf=pass", "dkim=pass", "iprev=pass"), \
        f"{what}: spf=pass dkim=pass iprev=pass in Authentication-Results: {o.ar!r}"
    d = m.decisions()
    assert d and "TEMP" not in d[-1]["symbols"], f"{what}: no temperror symbol ({d[-1]['symbols'] if d else None})"
    common(m, what, 1)


@pytest.mark.parametrize("tempfail", [False, True], ids=["default", "tempfail_on_temperror"])
def test_dns_down(env, launch, tempfail):
    what = "DNS server down" + (", tempfail_on_temperror" if tempfail else "")
    m = start_milter(launch, f"down{int(tempfail)}", vf.closed_port(), tempfail)
    (tempfail_outcome if tempfail else temperror_outcome)(m, what, env.msg)
    common(m, what, 0 if tempfail else 1)


def test_dns_late(env, launch):
    what = "DNS answers after the stage budget"
    dns = launch.dns(env.zones, ["--delay-ms", str(BUDGET_MS * 3)])
    m = start_milter(launch, "late", dns)
    temperror_outcome(m, what, env.msg)
    common(m, what, 1)


@pytest.mark.parametrize("tempfail", [False, True], ids=["default", "tempfail_on_temperror"])
def test_servfail(env, launch, tempfail):
    what = "SERVFAIL for every name" + (", tempfail_on_temperror" if tempfail else "")
    dns = launch.dns(env.zones, ["--servfail", "*"])
    m = start_milter(launch, f"servfail{int(tempfail)}", dns, tempfail)
    (tempfail_outcome if tempfail else temperror_outcome)(m, what, env.msg)
    common(m, what, 0 if tempfail else 1)


def test_truncated(env, launch):
    what = "truncated UDP answers (TC=1)"
    log = os.path.join(env.work, "tc-dns.log")
    dns = launch.dns(env.zones, ["--truncate", "*"], log=log)
    m = start_milter(launch, "truncated", dns)
    o = transaction(m, env.msg)
    assert o.final in ("ACCEPT", "CONTINUE") and ar_has(o, "spf=pass", "dkim=pass", "iprev=pass"), \
        f"{what}: the same results as healthy DNS, over TCP: {o.final} {o.ar!r}"
    common(m, what, 1)
    dns.stop()
    with open(log) as f:
        protos = [l.split()[0] for l in f if l.strip()]
    assert "udp" in protos and "tcp" in protos, \
        f"{what}: the resolver asked over UDP, then over TCP ({protos.count('udp')} udp, {protos.count('tcp')} tcp)"


def test_many_recipients(env, launch):
    what = "10,000 recipients"
    dns = launch.dns(env.zones)
    m = start_milter(launch, "rcpts", dns)
    rcpts = [f"user{i}@vigil.test" for i in range(10_000)]
    t = time.monotonic()
    o = transaction(m, env.msg, rcpts)
    took = time.monotonic() - t
    bad = [r for r in o.rcpt_replies if r != "CONTINUE"]
    assert len(o.rcpt_replies) == 10_000 and not bad, f"{what}: every RCPT answered CONTINUE ({len(bad)} not)"
    assert o.final in ("ACCEPT", "CONTINUE") and o.stage == "eom", f"{what}: accepted ({o.final} at {o.stage})"
    d = m.decisions()
    assert d and d[-1]["rcpts"] == "10000", \
        f"{what}: the decision line counts rcpts=10000 ({d[-1]['rcpts'] if d else None})"
    assert took < 60, f"{what}: the whole transaction took {took:.1f} s (< 60 s)"
    common(m, what, 1)


def test_full_disk_under_dmarc_report_store(env, launch):
    what = "full disk under the DMARC report store"
    if os.geteuid() != 0:
        pytest.skip("not root: the full-disk case needs a tmpfs mount")
    disk = os.path.join(env.work, "full")
    os.mkdir(disk)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", disk]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        try:
            vigil = pwd.getpwnam("vigil")
            os.chown(disk, vigil.pw_uid, vigil.pw_gid)
        except KeyError:
            pass
        dns = launch.dns(env.zones)
        store = os.path.join(disk, "dmarc.sqlite")
        m = start_milter(launch, "fulldisk", dns, extra=f'[dmarc_reports]\nenabled = true\nstore = "{store}"\n')
        assert transaction(m, env.msg).final in ("ACCEPT", "CONTINUE"), f"{what}: a message before the disk fills"
        fd = os.open(os.path.join(disk, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)
        sent, accepted = 0, 0
        while sent < 200 and "writing failed" not in m.log():
            for _ in range(20):
                o = transaction(m, env.msg)
                sent += 1
                accepted += o.final in ("ACCEPT", "CONTINUE") and "dmarc=pass" in o.ar
            time.sleep(1.5)
        assert accepted == sent, f"{what}: mail keeps flowing: {accepted} of {sent} accepted with dmarc=pass"
        warn = [l for l in m.log().splitlines() if "DMARC report store" in l and "writing failed" in l]
        assert bool(warn) and "mail is not affected" in warn[0], \
            f"{what}: one clear log line: {warn[0].split(': ', 1)[-1][:160] if warn else None!r}"
        common(m, what, sent + 1)
        m.stop()
    finally:
        subprocess.run(["umount", "-l", disk])


def test_50mb_message(env, launch):
    what = "a 50 MB message"
    line = b"The quick brown fox jumps over the lazy dog, again and again, in a very large message.\r\n"
    body = line * (50 * 1024 * 1024 // len(line) + 1)
    msg = signed_message(env.cli, env.key, body, env.work)
    dns = launch.dns(env.zones)
    m = start_milter(launch, "big", dns)
    transaction(m, signed_message(env.cli, env.key, b"warm-up\r\n", env.work))
    before = m.rss_kb()
    t = time.monotonic()
    o = transaction(m, msg)
    took = time.monotonic() - t
    grew_mb = (m.rss_kb() - before) / 1024
    assert o.final in ("ACCEPT", "CONTINUE") and ar_has(o, "dkim=pass"), \
        (f"{what} ({len(msg) / 1e6:.0f} MB): accepted with dkim=pass over the whole body in {took:.1f} s "
         f"({o.final}, {o.ar!r})")
    assert grew_mb < 40, f"{what}: RSS grew {grew_mb:.1f} MB (< 40: the body streams, it is not held)"
    common(m, what, 2)
