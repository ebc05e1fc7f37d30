#!/usr/bin/env python3
"""DKIM interop: Vigil's signatures verify in dkimpy (python3-dkim) and OpenDKIM (opendkim -t with
TestPublicKeys); dkimpy's signatures verify in Vigil; one modified byte makes every verifier fail.

Exit 0: all passed; 1: a failure; 77: the other implementation is not installed (skipped)."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

MESSAGES = {
    "plain": b"From: Joe <joe@example.com>\r\nTo: Suzie <suzie@example.net>\r\nSubject: dinner\r\n"
             b"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\nMessage-ID: <1@example.com>\r\n\r\n"
             b"Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n",
    "folded-headers": b"From: Joe\r\n  <joe@example.com>\r\nTo: a@example.net,\r\n\tb@example.net,\r\n  c@example.net\r\n"
                      b"Subject:   a   subject  with\r\n\t   odd   spacing   \r\nCc: x@example.org\r\n\r\nbody\r\n",
    "long-lines": b"From: joe@example.com\r\nSubject: long\r\n\r\n" + b"x" * 5000 + b"\r\n" + b"y " * 3000 + b"\r\n",
    "8bit-body": b"From: joe@example.com\r\nSubject: 8bit\r\nContent-Type: text/plain; charset=latin1\r\n"
                 b"Content-Transfer-Encoding: 8bit\r\n\r\n\xe9t\xe9 \xe0 la plage\r\n\xff\xfe\r\n",
    "empty-body": b"From: joe@example.com\r\nSubject: empty\r\n\r\n",
    "trailing-blank-lines": b"From: joe@example.com\r\nSubject: blank\r\n\r\nline  \t \r\n\r\n\r\n  \r\n\r\n",
    "repeated-headers": b"Received: one\r\nReceived: two\r\nFrom: joe@example.com\r\nSubject: first\r\n"
                        b"Subject: second\r\n\r\nbody\r\n",
}
CANONS = ["simple/simple", "simple/relaxed", "relaxed/simple", "relaxed/relaxed"]

failures = 0
passes = 0


def report(ok, what):
    global failures, passes
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if ok:
        passes += 1
    else:
        failures += 1


def tamper(msg):
    """Change one byte of the body (or of the Subject when the body is empty)."""
    sep = msg.find(b"\r\n\r\n") + 4
    if sep < len(msg) and msg[sep:].strip():
        i = sep + next(k for k, c in enumerate(msg[sep:]) if c not in b" \t\r\n")
    else:
        i = msg.find(b"Subject:") + 9
    return msg[:i] + bytes([msg[i] ^ 0x01]) + msg[i + 1:]


def keygen(vigil, tmp, kind):
    out = subprocess.run([vigil, "dkim", "keygen", "--domain", "example.com", "--selector", kind, "--type", kind,
                          "--out", tmp], check=True, capture_output=True).stdout.decode()
    record = "".join(re.findall(r'"([^"]*)"', out))
    path = os.path.join(tmp, f"example.com.{kind}.pem")
    mode = os.stat(path).st_mode & 0o777
    report(mode == 0o600, f"keygen {kind}: key file mode {oct(mode)}, record {record[:40]}...")
    return path, record


def vigil_sign(vigil, key, selector, canon, msg):
    return subprocess.run([vigil, "dkim", "sign", "--key", key, "--domain", "example.com", "--selector", selector,
                           "--canon", canon], input=msg, check=True, capture_output=True).stdout


def vigil_verify(vigil, records, msg):
    import json
    args = [vigil, "dkim", "verify", "--json"]
    for name, txt in records.items():
        args += ["--key-record", f"{name}={txt}"]
    out = subprocess.run(args, input=msg, capture_output=True).stdout.decode()
    return [s["result"] for s in json.loads(out)["signatures"]]


def run_dkimpy(vigil, tmp):
    try:
        import dkim
    except ImportError:
        print("python3-dkim (dkimpy) not installed: skipped")
        return 77
    keys = {kind: keygen(vigil, tmp, kind) for kind in ("rsa", "ed25519")}
    records = {f"{k}._domainkey.example.com": rec for k, (_, rec) in keys.items()}

    def dnsfunc(name, timeout=5):
        return records.get(name.decode().rstrip("."), "").encode()

    for kind, (key, _) in keys.items():
        for canon in CANONS:
            for name, msg in MESSAGES.items():
                signed = vigil_sign(vigil, key, kind, canon, msg)
                ok = dkim.verify(signed, dnsfunc=dnsfunc)
                bad = dkim.verify(tamper(signed), dnsfunc=dnsfunc)
                report(ok and not bad, f"vigil signs ({kind}, c={canon}, {name}) -> dkimpy: {ok}, tampered: {bad}")
    # dkimpy signs, Vigil verifies.
    for kind, (key, _) in keys.items():
        pem = open(key, "rb").read()
        if kind == "ed25519":
            # dkimpy wants the raw 32-byte seed, base64.
            from cryptography.hazmat.primitives import serialization
            priv = serialization.load_pem_private_key(pem, password=None)
            import base64
            pem = base64.b64encode(priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                      serialization.NoEncryption()))
        for canon in CANONS:
            h, b = canon.split("/")
            for name, msg in MESSAGES.items():
                sig = dkim.sign(msg, kind.encode(), b"example.com", pem, canonicalize=(h.encode(), b.encode()),
                                signature_algorithm=(b"rsa-sha256" if kind == "rsa" else b"ed25519-sha256"))
                signed = sig + msg
                res = vigil_verify(vigil, records, signed)
                bad = vigil_verify(vigil, records, tamper(signed))
                report(res == ["pass"] and bad == ["fail"], f"dkimpy signs ({kind}, c={canon}, {name}) -> vigil: {res}, tampered: {bad}")
    return 0


def run_opendkim(vigil, tmp):
    opendkim = shutil.which("opendkim") or ("/usr/sbin/opendkim" if os.path.exists("/usr/sbin/opendkim") else None)
    if not opendkim:
        print("opendkim not installed: skipped")
        return 77
    keys = {kind: keygen(vigil, tmp, kind) for kind in ("rsa", "ed25519")}
    testkeys = os.path.join(tmp, "testkeys")
    with open(testkeys, "w") as f:
        for kind, (_, rec) in keys.items():
            f.write(f"{kind}._domainkey.example.com {rec}\n")
    conf = os.path.join(tmp, "opendkim.conf")
    with open(conf, "w") as f:
        f.write(f"Mode v\nTestPublicKeys {testkeys}\nSyslog no\nAlwaysAddARHeader yes\nMinimumKeyBits 1024\n")

    def opendkim_verify(msg):
        path = os.path.join(tmp, "msg.eml")
        with open(path, "wb") as f:
            f.write(msg)
        p = subprocess.run([opendkim, "-x", conf, "-t", path], capture_output=True, text=True)
        text = p.stdout + p.stderr
        return "verification (s=" in text and "succeeded" in text and "failed" not in text, text.strip()

    for kind, (key, _) in keys.items():
        for canon in CANONS:
            for name, msg in MESSAGES.items():
                signed = vigil_sign(vigil, key, kind, canon, msg)
                ok, text = opendkim_verify(signed)
                bad, bad_text = opendkim_verify(tamper(signed))
                if name == "folded-headers" and canon.startswith("simple/") and not ok:
                    # `opendkim -t` reads the file itself and loses header folding, so c=simple/* over
                    # folded fields fails there whoever signed (dkimpy's own signature fails the same
                    # way; dkimpy verifies Vigil's). Reported, not counted.
                    print(f"skip vigil signs ({kind}, c={canon}, {name}) -> opendkim -t: known test-mode limitation")
                    continue
                report(ok and not bad, f"vigil signs ({kind}, c={canon}, {name}) -> opendkim: {text[-70:]!r}; tampered: {bad_text[-50:]!r}")
    return 0


def main():
    # Debian's python3-dkim lives in the system interpreter's path; a pyenv/venv python3 on PATH
    # does not see it, so run under /usr/bin/python3 then.
    try:
        import dkim  # noqa: F401
    except ImportError:
        if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigil-dkim", required=True, help="vigil-dkim (or vigil) binary")
    ap.add_argument("--only", choices=["dkimpy", "opendkim"])
    a = ap.parse_args()
    rc = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("dkimpy", run_dkimpy), ("opendkim", run_opendkim)):
            if a.only and a.only != name:
                continue
            sub = os.path.join(tmp, name)
            os.mkdir(sub)
            rc.append(fn(a.vigil_dkim, sub))
    print(f"# {passes} passed, {failures} failed")
    if failures:
        return 1
    if rc and all(r == 77 for r in rc):
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
