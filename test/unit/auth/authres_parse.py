#!/usr/bin/env python3
"""Our Authentication-Results fields, read back by python3-authres (Debian's RFC 8601 parser).

Runs the unit-test binary's "[ar-samples]" test case, which builds fields with engine::header_edits()
(clean results with DNSSEC comments, IPv6 and address literals, the worst bytes, no results, forged
fields claiming our authserv-id) and writes them with the results they should carry to a JSON-lines
file. Each field must parse in authres with our authserv-id, the methods, results and properties
given; exactly one field per message may claim our authserv-id, and it must be the first; a mail
parser must see no header field other than ours in any of them.

authres 1.2.0 drops a quoted-string property value unless it is the last property of its resinfo
(its look-ahead after a quoted-string accepts only ";" or the end); that case is reported, not failed,
and only when the value was quoted and not last.

usage: authres_parse.py PATH/TO/vigil-unit-tests          (exit 77: python3-authres not installed)
"""

import email
import email.policy
import json
import os
import re
import subprocess
import sys
import tempfile

failures = []


def check(cond, what):
    print(f"  {'ok' if cond else 'FAIL'}: {what}")
    if not cond:
        failures.append(what)


def unfold(value):
    return re.sub(r"\r\n(?=[ \t])", "", value)


def unquote(value):
    # authres keeps the quoted-pairs of a quoted-string; a bare value has no backslash at all.
    return re.sub(r"\\(.)", r"\1", value)


def main():
    try:
        import authres
    except ImportError:
        # Debian's python3-authres lives in the system interpreter's path (not in a pyenv/venv one).
        if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        print("python3-authres not installed: skipped")
        return 77
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "samples.jsonl")
        run = subprocess.run([sys.argv[1], "[ar-samples]"], env=dict(os.environ, VIGIL_AR_SAMPLES=path),
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout, run.stderr)
            return 1
        with open(path, encoding="utf-8") as f:
            samples = [json.loads(line) for line in f]
    check(len(samples) >= 5, f"{len(samples)} samples written")
    known_limitation = 0
    for s in samples:
        print(f"-- {s['name']}")
        ours = s["authserv_id"]
        parsed = []
        for value in s["fields"]:
            check(re.search(r"\r(?!\n[ \t])|(?<!\r)\n|[^\t\r\n\x20-\x7e]", value) is None,
                  f"only printable ASCII and CRLF+WSP folds: {value[:60]!r}")
            msg = email.message_from_string("Authentication-Results:" + value + "\r\nSubject: x\r\n\r\n",
                                            policy=email.policy.compat32)
            check(msg.keys() == ["Authentication-Results", "Subject"], f"a mail parser sees no other field: {msg.keys()}")
            try:
                parsed.append(authres.parse("Authentication-Results:" + unfold(value)))
            except Exception as e:  # authres raises its own SyntaxError and others
                check(False, f"authres parses {value!r}: {type(e).__name__}: {e}")
                parsed.append(None)
        claims = [i for i, h in enumerate(parsed) if h is not None and h.authserv_id == ours]
        check(claims == [0], f"exactly one field claims {ours}, the first: {claims}")
        if not claims or parsed[0] is None:
            continue
        header = parsed[0]
        if s["name"] != "the worst bytes":
            widths = [len(line.expandtabs(8)) + (23 if i == 0 else 0)
                      for i, line in enumerate(s["fields"][0].split("\r\n"))]
            check(max(widths) <= 78, f"lines within 78 columns: {widths}")
        got = [(r.method, r.result) for r in header.results]
        want = [(e["method"], e["result"]) for e in s["expected"]]
        check(got == want, f"methods and results {got}")
        if got != want:
            continue
        for r, e in zip(header.results, s["expected"]):
            props = [(f"{p.type}.{p.name}", unquote(p.value)) for p in r.properties]
            expected = [tuple(p) for p in e["properties"]]
            if props == expected:
                check(True, f"{r.method}={r.result}: {len(props)} properties")
                continue
            missing = [p for p in expected if p not in props]
            extra = [p for p in props if p not in expected]
            field = unfold(s["fields"][0])
            # The authres limitation: a quoted value followed by another property is dropped.
            explained = all(re.search(re.escape(f"{name}=\""), field) and (name, value) != expected[-1]
                            for name, value in missing)
            if explained and not extra:
                known_limitation += 1
                print(f"  note: authres 1.2.0 dropped quoted non-last {missing} of {r.method}={r.result}")
            check(explained and not extra, f"{r.method}={r.result}: properties {props} (expected {expected})")
    print(f"{len(failures)} failures; {known_limitation} properties dropped by authres's quoted-string look-ahead")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
