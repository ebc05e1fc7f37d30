"""DKIM through a real Postfix: Vigil signs what leaves, and verifies what arrives.

A private Postfix instance with vigil-milter attached; vigil-test-dns serves the public keys that
`vigil dkim keygen` made (RSA-2048 and Ed25519, both signing every message from dk.test).
- Outbound (a trusted network, via XCLIENT): messages with folded headers, long lines, an 8-bit body,
  an empty body and trailing blank lines are delivered with two DKIM-Signature fields, and dkimpy
  (python3-dkim) verifies both on the delivered bytes; one changed byte makes both fail.
- Inbound: the delivered, signed copies sent again from outside get `dkim=pass` for both signatures
  in our Authentication-Results; a changed byte gets `dkim=fail`; a message dkimpy signed passes.

    pytest test/integration/postfix_dkim.py [--vigil-milter PATH --vigil-cli PATH --vigil-test-dns PATH]

Needs root (Postfix's master runs as root) and python3-dkim: skipped otherwise.
"""
import os
import pwd
import re
import subprocess

import pytest

import vigil_fixtures as vf
from vigil_fixtures import AUTHSERV

pytestmark = vf.needs_postfix
dkim = pytest.importorskip("dkim", reason="python3-dkim (dkimpy) is not installed")

DOMAIN = "dk.test"

CONFIG = """
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


def our_ar(msg):
    head = msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    unfolded = re.sub(r"\r\n[ \t]+", " ", head)
    return [h for h in unfolded.split("\r\n") if h.lower().startswith("authentication-results: " + AUTHSERV)]


def dkimpy_verify(msg, idx, dnsfunc):
    try:
        return dkim.DKIM(msg).verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.ValidationError:
        return False


class Dk:
    """The keys, the DNS server publishing them, the signing milter and Postfix; and the outbound
    messages, each sent once by the first test that needs it."""

    def __init__(self, launch, binaries, workdir):
        keydir = os.path.join(workdir, "keys")
        os.mkdir(keydir, 0o700)
        self.rsa_key, rsa_line, rsa_txt = keygen(binaries.cli, keydir, "rsa", "rsa1")
        ed_key, ed_line, ed_txt = keygen(binaries.cli, keydir, "ed25519", "ed1")
        self.records = {f"rsa1._domainkey.{DOMAIN}": rsa_txt, f"ed1._domainkey.{DOMAIN}": ed_txt}
        zone = vf.write(os.path.join(workdir, "dk.test.zone"),
                        ZONE_HEAD.format(domain=DOMAIN) + rsa_line + "\n" + ed_line + "\n")
        user, _ = vf.milter_user()
        if user:
            # The daemon reads its keys again on SIGUSR1, after it has dropped to its user.
            pw = pwd.getpwnam(user)
            for p in (keydir, self.rsa_key, ed_key):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        dns = launch.dns([zone])
        self.milter = launch.milter("milter", CONFIG.format(authserv=AUTHSERV, dns_port=dns.port, domain=DOMAIN,
                                                            rsa_key=self.rsa_key, ed_key=ed_key))
        self.pf = launch.postfix("postfix", self.milter)
        self.outbound_results = {}

    def dnsfunc(self, name, timeout=5):
        return self.records.get(name.decode().rstrip("."), "").encode()

    def outbound(self, name):
        """(SmtpResult, the delivered copy without the transport headers or None) of CASES[name]."""
        if name not in self.outbound_results:
            extra, body = CASES[name]
            subject = f"out {name}"
            r = self.pf.send(f"joe@{DOMAIN}", ["rcpt@vigil.test"], message(subject, body, extra),
                             xclient={"ADDR": "192.0.2.7", "NAME": "client.vigil.test"},
                             mail_options=["BODY=8BITMIME"] if name == "8bit" else [])
            m = self.pf.wait_message(rb"^Subject: " + re.escape(subject.encode()) + rb"$", crlf=True) if r.ok else None
            self.outbound_results[name] = (r, None if m is None else strip_transport(m))
        return self.outbound_results[name]

    def inbound(self, probe, data):
        """Sends `data` from outside with an X-Probe field on top; our A-R fields of the delivered copy."""
        r = self.pf.send(f"joe@{DOMAIN}", ["rcpt@vigil.test"], f"X-Probe: {probe}\r\n".encode() + data,
                         xclient={"ADDR": "203.0.113.9", "NAME": "[UNAVAILABLE]"}, mail_options=["BODY=8BITMIME"])
        assert r.ok, f"inbound {probe} accepted ({r.data})"
        pattern = rb"^X-Probe: " + re.escape(probe.encode()) + rb"\r?$"
        self.pf.wait_message(pattern)
        found = [m for m in self.pf.delivered(crlf=True) if re.search(pattern, m, re.M)]
        assert len(found) == 1, f"inbound {probe} delivered"
        return our_ar(found[0])


@pytest.fixture(scope="module")
def dk(module_launch, binaries, workdir):
    return Dk(module_launch, binaries, workdir)


@pytest.mark.parametrize("name", list(CASES))
def test_outbound_signed(dk, name):
    """Signed by Vigil, verified by dkimpy on the bytes Postfix delivered."""
    r, m = dk.outbound(name)
    assert r.ok, f"outbound {name} accepted ({r.data})"
    assert m is not None, f"outbound {name} delivered"
    sigs = re.findall(rb"^DKIM-Signature:.*?s=(\w+);", m, re.M | re.S)
    assert len(sigs) == 2, f"outbound {name}: two DKIM-Signature fields ({sigs})"
    results = [dkimpy_verify(m, i, dk.dnsfunc) for i in range(2)]
    assert results == [True, True], f"outbound {name}: dkimpy verifies both signatures ({results})"
    bad = bytearray(m)
    pos = m.rfind(b"\r\n\r\n") + 4
    if pos < len(m) and name != "empty":
        bad[pos] = ord("Z") if bad[pos] != ord("Z") else ord("Y")
    else:  # no body to change: change a signed header byte
        i = m.index(b"Subject: out ") + len(b"Subject: out ")
        bad[i] = ord("X")
    results = [dkimpy_verify(bytes(bad), i, dk.dnsfunc) for i in range(2)]
    assert results == [False, False], f"outbound {name}: one changed byte fails both in dkimpy ({results})"
    assert not our_ar(m), f"outbound {name}: no Authentication-Results of ours"


@pytest.mark.parametrize("name", list(CASES))
def test_inbound_verifies_our_signatures(dk, name):
    """The signed copies come back from outside."""
    _, m = dk.outbound(name)
    assert m is not None, f"outbound {name} delivered"
    ar = dk.inbound(f"back {name}", m)
    text = ar[0] if ar else ""
    ok = (len(ar) == 1 and "dkim=pass header.d=dk.test" in text and "header.s=rsa1" in text and
          "header.s=ed1" in text and "dkim=fail" not in text)
    assert ok, f"inbound {name}: our A-R has dkim=pass for rsa1 and ed1: {text}"


# X-Folded is not in h=, so changing it changes nothing; a signed header or the body does.
TAMPERED = {
    "unsigned header": (b"second  part", b"second  parT"),
    "signed header": (b"Subject: out folded", b"Subject: out fOlded"),
    "body": (b"Hello.", b"Hellp."),
}


@pytest.mark.parametrize("what", list(TAMPERED))
def test_inbound_tampered(dk, what):
    _, m = dk.outbound("folded")
    assert m is not None, "outbound folded delivered"
    ar = dk.inbound(f"tampered {what}", m.replace(*TAMPERED[what]))
    text = ar[0] if ar else ""
    if what == "unsigned header":
        assert text.count("dkim=pass") == 2, f"inbound, {what} changed: still dkim=pass: {text}"
    else:
        assert text.count("dkim=fail") == 2 and "dkim=pass" not in text, \
            f"inbound, {what} changed: dkim=fail for both: {text}"


def test_inbound_signed_by_dkimpy(dk):
    """A message dkimpy signed with the same RSA key passes in Vigil."""
    raw = message("dkimpy signed", b"Signed by dkimpy.\r\n")
    with open(dk.rsa_key, "rb") as f:
        sig = dkim.sign(raw, b"rsa1", DOMAIN.encode(), f.read(), include_headers=[b"from", b"to", b"subject", b"date"])
    ar = dk.inbound("dkimpy", sig + raw)
    text = ar[0] if ar else ""
    assert "dkim=pass header.d=dk.test" in text and "header.s=rsa1" in text, f"inbound dkimpy-signed: pass: {text}"
