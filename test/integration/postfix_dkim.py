#!/usr/bin/env python3
"""DKIM through a real Postfix: Vigil signs what leaves, and verifies what arrives.

A private Postfix instance with vigil-milter attached; vigil-test-dns serves the public keys that
`vigil dkim keygen` made (RSA-2048 and Ed25519, both signing every message from dk.test).
- Outbound (a trusted network, via XCLIENT): messages with folded headers, long lines, an 8-bit body,
  an empty body and trailing blank lines are delivered with two DKIM-Signature fields, and dkimpy
  (python3-dkim) verifies both on the delivered bytes; one changed byte makes both fail.
- Inbound: the delivered, signed copies sent again from outside get `dkim=pass` for both signatures
  in our Authentication-Results; a changed byte gets `dkim=fail`; a message dkimpy signed passes.

usage: postfix_dkim.py VIGIL_MILTER VIGIL_CLI VIGIL_TEST_DNS
Needs root (Postfix's master runs as root). Exit 77 = skipped.
"""
import os
import pwd
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
sys.path.insert(0, HERE)
import postfix_harness  # noqa: E402
from postfix_e2e import free_port, wait_listening  # noqa: E402

AUTHSERV = "mx.vigil.test"
DOMAIN = "dk.test"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


CONFIG = """
[milter]
socket = "inet:{port}@127.0.0.1"
user = "{user}"
allow_root = {allow_root}

[server]
hostname = "{authserv}"
authserv_id = "{authserv}"
# 127.0.0.1 is the test's SMTP client: XCLIENT says who is inside (192.0.2.0/24) and who is not.
trusted_networks = ["192.0.2.0/24"]

[dns]
server = "127.0.0.1:{dns_port}"

[log]
format = "text"

[checks.dkim]
enabled = true

[[checks.dkim.key]]
domain = "{domain}"
selector = "rsa1"
file = "{rsa_key}"

[[checks.dkim.key]]
domain = "{domain}"
selector = "ed1"
file = "{ed_key}"
"""

ZONE_HEAD = """$ORIGIN {domain}.
$TTL 300
@ IN SOA ns.{domain}. hostmaster.{domain}. 1 7200 900 1209600 60
@ IN NS ns.{domain}.
ns IN A 192.0.2.53
"""


def keygen(vigil, outdir, kind, selector):
    args = [vigil, "dkim", "keygen", "--domain", DOMAIN, "--selector", selector, "--type", kind, "--out", outdir]
    if kind == "rsa":
        args += ["--bits", "2048"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    record_line = next(line for line in out.splitlines() if "._domainkey." in line)
    txt = "".join(re.findall(r'"([^"]*)"', record_line))
    return os.path.join(outdir, f"{DOMAIN}.{selector}.pem"), record_line, txt


def start_dns(binary, zone_path):
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1", "--port", "0", "--zone", zone_path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.fullmatch(r"port (\d+)\n", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"vigil-test-dns did not start: {line!r} {proc.communicate()[1]}")
    return proc, int(m.group(1))


def message(subject, body, extra=b""):
    return (b"From: Joe Sender <joe@" + DOMAIN.encode() + b">\r\nTo: rcpt@vigil.test\r\n"
            b"Subject: " + subject.encode() + b"\r\nDate: Sat, 28 Nov 2026 04:00:00 +0000\r\n"
            b"Message-ID: <" + subject.replace(" ", ".").encode() + b"@dk.test>\r\n" + extra + b"\r\n" + body)


CASES = {
    "folded": (b"X-Folded: first part\r\n\tsecond  part after a tab\r\n  third part\r\n", b"Hello.\r\n"),
    "longlines": (b"", (b"x" * 900 + b"\r\n") * 3 + b"short\r\n"),
    "8bit": (b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
             "Grüße aus Köln, très bien. \t \r\n".encode() * 4),
    "empty": (b"", b""),
    "trailing": (b"", b"text\r\n\r\n\r\n\r\n"),
}


def strip_transport(msg):
    """The delivered copy minus what local delivery put on top (Return-Path, Delivered-To)."""
    lines = msg.split(b"\r\n")
    while lines and (lines[0].startswith(b"Return-Path:") or lines[0].startswith(b"Delivered-To:")):
        lines.pop(0)
    return b"\r\n".join(lines)


def find(pf, subject):
    for m in pf.delivered(crlf=True):
        if re.search(rb"^Subject: " + re.escape(subject.encode()) + rb"\r?$", m, re.M):
            return m
    return None


def our_ar(msg):
    head = msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    unfolded = re.sub(r"\r\n[ \t]+", " ", head)
    return [h for h in unfolded.split("\r\n") if h.lower().startswith("authentication-results: " + AUTHSERV)]


def dkimpy_verify(msg, idx, dnsfunc):
    import dkim
    try:
        return dkim.DKIM(msg).verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.ValidationError:
        return False


def main():
    if os.geteuid() != 0:
        print("SKIP: the Postfix DKIM test needs root (Postfix's master runs as root)")
        return 77
    try:
        import dkim
    except ImportError:
        print("SKIP: python3-dkim (dkimpy) is not installed")
        return 77
    milter_bin, vigil, dns_bin = (os.path.abspath(p) for p in sys.argv[1:4])
    work = tempfile.mkdtemp(prefix="vigil-dkim-e2e-")
    os.chmod(work, 0o755)
    keydir = os.path.join(work, "keys")
    os.mkdir(keydir, 0o700)
    rsa_key, rsa_line, rsa_txt = keygen(vigil, keydir, "rsa", "rsa1")
    ed_key, ed_line, ed_txt = keygen(vigil, keydir, "ed25519", "ed1")
    records = {f"rsa1._domainkey.{DOMAIN}": rsa_txt, f"ed1._domainkey.{DOMAIN}": ed_txt}
    zone = os.path.join(work, "dk.test.zone")
    with open(zone, "w") as f:
        f.write(ZONE_HEAD.format(domain=DOMAIN) + rsa_line + "\n" + ed_line + "\n")

    user = "vigil"
    try:
        pw = pwd.getpwnam(user)
        allow_root = "false"
        # The daemon reads its keys again on SIGUSR1, after it has dropped to its user.
        for p in (keydir, rsa_key, ed_key):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    except KeyError:
        user, allow_root = "", "true"

    dns, dns_port = start_dns(dns_bin, zone)
    port = free_port()
    conf = os.path.join(work, "vigil.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, user=user, allow_root=allow_root, authserv=AUTHSERV, dns_port=dns_port,
                              domain=DOMAIN, rsa_key=rsa_key, ed_key=ed_key))
    os.chmod(conf, 0o644)
    log = open(os.path.join(work, "milter.log"), "wb")
    milter = subprocess.Popen([milter_bin, "-f", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    pf = None

    def dnsfunc(name, timeout=5):
        return records.get(name.decode().rstrip("."), "").encode()

    try:
        wait_listening(port, milter)
        pf = postfix_harness.PostfixInstance(os.path.join(work, "postfix"), milter=f"inet:127.0.0.1:{port}")
        pf.start()
        delivered = 0

        # Outbound: signed by Vigil, verified by dkimpy on the bytes Postfix delivered.
        signed = {}
        for name, (extra, body) in CASES.items():
            subject = f"out {name}"
            r = pf.send(f"joe@{DOMAIN}", ["rcpt@vigil.test"], message(subject, body, extra),
                        xclient={"ADDR": "192.0.2.7", "NAME": "client.vigil.test"},
                        mail_options=["BODY=8BITMIME"] if name == "8bit" else [])
            check(r.ok, f"outbound {name} accepted ({r.data})")
            delivered += 1
            pf.wait_delivered(delivered)
            m = find(pf, subject)
            check(m is not None, f"outbound {name} delivered")
            if m is None:
                continue
            m = strip_transport(m)
            sigs = re.findall(rb"^DKIM-Signature:.*?s=(\w+);", m, re.M | re.S)
            check(len(sigs) == 2, f"outbound {name}: two DKIM-Signature fields ({sigs})")
            results = [dkimpy_verify(m, i, dnsfunc) for i in range(2)]
            check(results == [True, True], f"outbound {name}: dkimpy verifies both signatures ({results})")
            bad = bytearray(m)
            pos = m.rfind(b"\r\n\r\n") + 4
            if pos < len(m) and name != "empty":
                bad[pos] = ord("Z") if bad[pos] != ord("Z") else ord("Y")
            else:  # no body to change: change a signed header byte
                i = m.index(b"Subject: out ") + len(b"Subject: out ")
                bad[i] = ord("X")
            results = [dkimpy_verify(bytes(bad), i, dnsfunc) for i in range(2)]
            check(results == [False, False], f"outbound {name}: one changed byte fails both in dkimpy ({results})")
            check(not our_ar(m), f"outbound {name}: no Authentication-Results of ours")
            signed[name] = m

        # Inbound: the signed copies come back from outside.
        def inbound(subject, data):
            nonlocal delivered
            r = pf.send(f"joe@{DOMAIN}", ["rcpt@vigil.test"], data,
                        xclient={"ADDR": "203.0.113.9", "NAME": "[UNAVAILABLE]"}, mail_options=["BODY=8BITMIME"])
            check(r.ok, f"inbound {subject} accepted ({r.data})")
            delivered += 1
            pf.wait_delivered(delivered)
            found = [m for m in pf.delivered(crlf=True) if re.search(
                rb"^X-Probe: " + re.escape(subject.encode()) + rb"\r?$", m, re.M)]
            check(len(found) == 1, f"inbound {subject} delivered")
            return our_ar(found[0]) if found else []

        for name, m in signed.items():
            ar = inbound(f"back {name}", b"X-Probe: back " + name.encode() + b"\r\n" + m)
            text = ar[0] if ar else ""
            ok = (len(ar) == 1 and "dkim=pass header.d=dk.test" in text and "header.s=rsa1" in text and
                  "header.s=ed1" in text and "dkim=fail" not in text)
            check(ok, f"inbound {name}: our A-R has dkim=pass for rsa1 and ed1: {text}")

        # X-Folded is not in h=, so changing it changes nothing; a signed header or the body does.
        m = signed["folded"]
        for what, tampered in (("unsigned header", m.replace(b"second  part", b"second  parT")),
                               ("signed header", m.replace(b"Subject: out folded", b"Subject: out fOlded")),
                               ("body", m.replace(b"Hello.", b"Hellp."))):
            ar = inbound(f"tampered {what}", f"X-Probe: tampered {what}\r\n".encode() + tampered)
            text = ar[0] if ar else ""
            if what == "unsigned header":
                check(text.count("dkim=pass") == 2, f"inbound, {what} changed: still dkim=pass: {text}")
            else:
                check(text.count("dkim=fail") == 2 and "dkim=pass" not in text,
                      f"inbound, {what} changed: dkim=fail for both: {text}")

        # A message dkimpy signed with the same RSA key passes in Vigil.
        raw = message("dkimpy signed", b"Signed by dkimpy.\r\n")
        sig = dkim.sign(raw, b"rsa1", DOMAIN.encode(), open(rsa_key, "rb").read(),
                        include_headers=[b"from", b"to", b"subject", b"date"])
        ar = inbound("dkimpy", b"X-Probe: dkimpy\r\n" + sig + raw)
        text = ar[0] if ar else ""
        check("dkim=pass header.d=dk.test" in text and "header.s=rsa1" in text, f"inbound dkimpy-signed: pass: {text}")
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
        print(f"{len(failures)} failure(s); milter log: {os.path.join(work, 'milter.log')}")
        return 1
    print("all DKIM checks through Postfix passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
