#!/usr/bin/env python3
"""DMARC that header tricks cannot bypass, through a real Postfix with the shipped configuration.

vigil-test-dns serves victim.test (p=reject, SPF for 198.51.100.10 only) and attacker.test (p=reject,
SPF for 203.0.113.9, the attacker's own server). vigil-milter runs conf/vigil.conf as shipped: only
the deployment settings are changed (socket, user, host name, DNS server, the reputation monitor);
every [checks.*] table is the shipped one, which the test asserts. The attacker, from 203.0.113.9
(XCLIENT) with its own envelope sender (SPF pass for attacker.test), sends the victim's From:
- after 5,000 other header fields (past the fields Vigil keeps);
- after its own From and 5,000 fields (its own From alone would pass DMARC);
- with trailing junk, an unclosed comment, a trailing dot, two mailboxes in one field, two fields
  (also with the second written "From :", which Postfix reads as a From field).
Each must be refused with a 5xx at end of data, and `vigil check --json` (the same engine, fed from a
file) must say reject for the same bytes. A well-formed message from victim.test's own server is still
delivered, with dmarc=pass in our Authentication-Results.

usage: postfix_dmarc_bypass.py VIGIL_MILTER VIGIL_CLI VIGIL_TEST_DNS
Needs root (Postfix's master runs as root). Exit 77 = skipped.
"""
import json
import os
import pwd
import re
import select
import subprocess
import sys
import tempfile
import time
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
sys.path.insert(0, HERE)
import postfix_harness  # noqa: E402
from postfix_e2e import free_port, wait_listening  # noqa: E402

AUTHSERV = "mx.vigil.test"
ATTACKER_IP = "203.0.113.9"
VICTIM_IP = "198.51.100.10"
FILLERS = 5000
failures = []

ZONE = """$ORIGIN test.
$TTL 300
@                IN SOA ns.test. hostmaster.test. 1 7200 900 1209600 60
@                IN NS  ns.test.
ns               IN A   127.0.0.1
victim           IN TXT "v=spf1 ip4:198.51.100.10 -all"
_dmarc.victim    IN TXT "v=DMARC1; p=reject"
mail.victim      IN A   198.51.100.10
attacker         IN TXT "v=spf1 ip4:203.0.113.9 -all"
_dmarc.attacker  IN TXT "v=DMARC1; p=reject"
mail.attacker    IN A   203.0.113.9
"""


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def set_key(text, section, key, value):
    """`key = value` in [section] of a TOML text, replacing the shipped line (which must exist)."""
    lines = text.split("\n")
    current = None
    for i, line in enumerate(lines):
        m = re.match(r"^\[([^\]]+)\]\s*$", line)
        if m:
            current = m.group(1)
            continue
        if current == section and re.match(rf"^{re.escape(key)}\s*=", line):
            lines[i] = f"{key} = {value}"
            return "\n".join(lines)
    raise RuntimeError(f"conf/vigil.conf has no {key} in [{section}]")


def start_dns(binary, zone_path):
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1", "--port", "0", "--zone", zone_path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    line = proc.stdout.readline() if ready else ""
    m = re.fullmatch(r"port (\d+)\n", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"vigil-test-dns did not start: {line!r} {proc.communicate()[1]}")
    return proc, int(m.group(1))


def fillers(n):
    return b"".join(b"X-Filler: %05d\r\n" % i for i in range(n))


def message(name, from_fields):
    return (from_fields + b"To: rcpt@vigil.test\r\nSubject: bypass " + name.encode() +
            b"\r\nDate: Sat, 28 Nov 2026 04:00:00 +0000\r\nMessage-ID: <" + name.encode() +
            b"@attacker.test>\r\n\r\nPlease pay the invoice.\r\n")


# name -> (the header fields that carry the From, a note); each from the attacker, each must be refused.
ATTACKS = {
    "filler-5000": (fillers(FILLERS) + b"From: CEO <ceo@victim.test>\r\n", "the From after 5,000 fields"),
    "attacker-first": (b"From: Me <me@attacker.test>\r\n" + fillers(FILLERS) + b"From: CEO <ceo@victim.test>\r\n",
                       "the attacker's From, 5,000 fields, the victim's From"),
    "trailing-junk": (b"From: CEO <ceo@victim.test> x\r\n", "text after the address"),
    "unclosed-comment": (b"From: CEO <ceo@victim.test> (CEO\r\n", "a comment never closed"),
    "unclosed-comment-bare": (b"From: ceo@victim.test (CEO\r\n", "a bare address, a comment never closed"),
    "trailing-dot": (b"From: CEO <ceo@victim.test.>\r\n", "a dot after the domain"),
    "two-mailboxes": (b"From: ceo@victim.test, me@attacker.test\r\n", "two mailboxes in one From"),
    "two-fields": (b"From: Me <me@attacker.test>\r\nFrom: CEO <ceo@victim.test>\r\n", "two From fields"),
    "space-before-colon": (b"From: Me <me@attacker.test>\r\nFrom : CEO <ceo@victim.test>\r\n",
                           "two From fields, the second in the obsolete 'From :' form"),
}


def our_ar(msg):
    head = msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    unfolded = re.sub(r"\r\n[ \t]+", " ", head)
    return [h for h in unfolded.split("\r\n") if h.lower().startswith("authentication-results: " + AUTHSERV)]


def vigil_check(vigil, conf, dns_port, path, ip, helo, mail_from):
    done = subprocess.run([vigil, "-c", conf, "check", "--json", "--ip", ip, "--helo", helo, "--mail-from",
                           mail_from, "--rcpt", "rcpt@vigil.test", "--dns", f"127.0.0.1:{dns_port}", path],
                          capture_output=True, text=True, timeout=60)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"error": f"rc={done.returncode} {done.stdout[-500:]} {done.stderr[-500:]}"}


def main():
    if os.geteuid() != 0:
        print("SKIP: the Postfix DMARC test needs root (Postfix's master runs as root)")
        return 77
    milter_bin, vigil, dns_bin = (os.path.abspath(p) for p in sys.argv[1:4])
    work = tempfile.mkdtemp(prefix="vigil-dmarc-bypass-")
    os.chmod(work, 0o755)
    zone = os.path.join(work, "test.zone")
    with open(zone, "w") as f:
        f.write(ZONE)

    user, allow_root = "vigil", "false"
    try:
        pwd.getpwnam(user)
    except KeyError:
        user, allow_root = "", "true"  # no vigil user on this machine: run as root, explicitly allowed

    dns, dns_port = start_dns(dns_bin, zone)
    port = free_port()
    shipped = open(os.path.join(ROOT, "conf", "vigil.conf"), encoding="utf-8").read()
    text = shipped
    text = set_key(text, "milter", "socket", f'"inet:{port}@127.0.0.1"')
    text = set_key(text, "milter", "user", f'"{user}"')
    text = set_key(text, "milter", "allow_root", allow_root)
    text = set_key(text, "server", "hostname", f'"{AUTHSERV}"')
    text = set_key(text, "server", "authserv_id", f'"{AUTHSERV}"')
    text = set_key(text, "dns", "server", f'"127.0.0.1:{dns_port}"')
    text = set_key(text, "monitor", "enabled", "false")  # it would ask public lists about this host
    used, ship = tomllib.loads(text), tomllib.loads(shipped)
    check(used["checks"] == ship["checks"] and used["actions"] == ship["actions"] and
          used.get("scores") == ship.get("scores"),
          "the milter runs the shipped [checks.*], [actions] and [scores]")
    check(ship["checks"]["dmarc"].get("enabled") is True and "bad_from" in ship["checks"]["dmarc"],
          f"shipped [checks.dmarc]: enabled, bad_from = {ship['checks']['dmarc'].get('bad_from')!r}")
    conf = os.path.join(work, "vigil.conf")
    with open(conf, "w") as f:
        f.write(text)
    os.chmod(conf, 0o644)
    log_path = os.path.join(work, "milter.log")
    log = open(log_path, "wb")
    milter = subprocess.Popen([milter_bin, "-f", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    pf = None
    try:
        wait_listening(port, milter)
        pf = postfix_harness.PostfixInstance(os.path.join(work, "postfix"), milter=f"inet:127.0.0.1:{port}")
        pf.start()

        seen_lines = 0

        def new_decisions():
            nonlocal seen_lines
            with open(log_path, encoding="utf-8", errors="replace") as f:
                lines = [l for l in f if re.search(r": inbound action=", l)]
            fresh, seen_lines = lines[seen_lines:], len(lines)
            return fresh

        for name, (from_fields, note) in ATTACKS.items():
            data = message(name, from_fields)
            r = pf.send("bounce@attacker.test", ["rcpt@vigil.test"], data, helo="mail.attacker.test",
                        xclient={"ADDR": ATTACKER_IP, "NAME": "[UNAVAILABLE]", "HELO": "mail.attacker.test"})
            reply = r.data or r.failed_reply
            check(r.failed_stage == "data" and reply is not None and 500 <= reply.code < 600,
                  f"{name} ({note}): refused with 5xx at end of data: {reply}")
            check(reply is not None and "victim.test" in reply.text, f"{name}: the reply names victim.test: {reply}")
            lines = new_decisions()
            line = lines[0] if len(lines) == 1 else ""
            check(len(lines) == 1 and 'forced="dmarc: dmarc=fail p=reject for victim.test' in line,
                  f"{name}: one decision line, forced by dmarc for victim.test: {line.strip()[-400:]}")
            if name in ("filler-5000", "attacker-first"):
                check("MSG_HEADER_LIMIT(" in line, f"{name}: the From came past the fields Vigil keeps")
            path = os.path.join(work, f"{name}.eml")
            with open(path, "wb") as f:
                f.write(data)
            j = vigil_check(vigil, conf, dns_port, path, ATTACKER_IP, "mail.attacker.test", "bounce@attacker.test")
            dm = j.get("dmarc", {}) if isinstance(j.get("dmarc"), dict) else {}
            check(j.get("action") == "reject" and (j.get("forced") or {}).get("by") == "dmarc",
                  f"{name}: vigil check --json says reject, by dmarc: action={j.get('action')} "
                  f"forced={j.get('forced')} error={j.get('error')}")
            check(dm.get("result") == "fail" and dm.get("from") == "victim.test",
                  f"{name}: vigil check --json: dmarc fail for victim.test: {json.dumps(dm)[:400]}")

        # The victim's own mail, well-formed and aligned, is still delivered.
        good = message("good", b"From: CEO <ceo@victim.test>\r\n")
        r = pf.send("bounce@victim.test", ["rcpt@vigil.test"], good, helo="mail.victim.test",
                    xclient={"ADDR": VICTIM_IP, "NAME": "[UNAVAILABLE]", "HELO": "mail.victim.test"})
        check(r.ok, f"good: the victim's own aligned message is accepted: {r.data}")
        if r.ok:
            deadline = time.time() + 30
            mine = []
            while not mine and time.time() < deadline:
                delivered = pf.delivered(crlf=True)
                mine = [m for m in delivered if re.search(rb"^Subject: bypass good\r?$", m, re.M)]
                time.sleep(0.1)
            check(len(delivered) == 1, f"good: the only message delivered in the whole run ({len(delivered)})")
            ar = our_ar(mine[0]) if mine else []
            check(len(ar) == 1 and "dmarc=pass header.from=victim.test" in ar[0],
                  f"good: our Authentication-Results has dmarc=pass header.from=victim.test: {ar}")

    finally:
        if pf is not None:
            pf.stop()
        milter.terminate()
        try:
            milter.wait(10)
        except subprocess.TimeoutExpired:
            milter.kill()
        dns.kill()
        dns.wait()
        log.close()
    if failures:
        print(f"{len(failures)} failure(s); milter log: {log_path}")
        return 1
    print("every DMARC bypass through Postfix was refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
