#!/usr/bin/env python3
"""RSA signing keys under 1024 bits (RFC 8301 §3.2) are refused where an operator meets them.

Keys are made by the openssl command line at test time (512, 768, 1024, 2048 bits). For each:
`vigil dkim sign --key` must refuse the short ones with the reason on stderr and sign with the others;
`vigil-milter -t` must print the same reason for a config naming a short key and exit non-zero, and
report the configuration OK for the others.

usage: dkim_key_size.py VIGIL_CLI VIGIL_MILTER
Exit 77 = skipped (no openssl command).
"""
import os
import shutil
import subprocess
import sys
import tempfile

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


MESSAGE = b"From: Joe <joe@example.com>\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"

CONFIG = """
[milter]
socket = "inet:18891@127.0.0.1"
allow_root = true
user = ""

[server]
hostname = "mx.example.com"

[checks.dkim]
enabled = true

[[checks.dkim.key]]
domain = "example.com"
selector = "s{bits}"
file = "{key}"
"""


def main():
    cli, milter = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    openssl = shutil.which("openssl")
    if not openssl:
        print("SKIP: no openssl command to make the keys")
        return 77
    work = tempfile.mkdtemp(prefix="vigil-dkim-size-")
    try:
        for bits in (512, 768, 1024, 2048):
            key = os.path.join(work, f"rsa{bits}.pem")
            subprocess.run([openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
                            "-out", key], check=True, capture_output=True)
            os.chmod(key, 0o600)
            short = bits < 1024
            reason = f"RSA key of {bits} bits; RFC 8301 forbids signing with RSA keys under 1024 bits"

            r = subprocess.run([cli, "dkim", "sign", "--key", key, "--domain", "example.com", "--selector",
                                f"s{bits}"], input=MESSAGE, capture_output=True)
            err = r.stderr.decode(errors="replace")
            if short:
                check(r.returncode == 1 and reason in err and not r.stdout,
                      f"vigil dkim sign, RSA-{bits}: refused (exit {r.returncode}: {err.strip()})")
            else:
                check(r.returncode == 0 and r.stdout.startswith(b"DKIM-Signature:"),
                      f"vigil dkim sign, RSA-{bits}: signed (exit {r.returncode}: {err.strip()})")

            conf = os.path.join(work, f"vigil{bits}.conf")
            with open(conf, "w") as f:
                f.write(CONFIG.format(bits=bits, key=key))
            r = subprocess.run([milter, "-t", "-c", conf], capture_output=True)
            out = (r.stdout + r.stderr).decode(errors="replace")
            if short:
                check(r.returncode != 0 and reason in out and conf in out,
                      f"vigil-milter -t, RSA-{bits}: refused with the reason (exit {r.returncode}: {out.strip()})")
            else:
                check(r.returncode == 0 and "configuration OK" in out,
                      f"vigil-milter -t, RSA-{bits}: OK (exit {r.returncode}: {out.strip()})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"\n{len(failures)} check(s) failed")
        return 1
    print("all key-size checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
