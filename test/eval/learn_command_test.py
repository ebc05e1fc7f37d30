#!/usr/bin/env python3
"""`vigil learn` end to end: files, directories and mboxes learned into an LMDB store; the same
message twice is a no-op, the other class moves it, --forget takes it out; --stats, --expire,
--dump-tokens; the store path from the configuration's state_dir; errors as exit codes.

usage: learn_command_test.py PATH/TO/vigil
"""
import os
import re
import stat
import subprocess
import sys
import tempfile

VIGIL = sys.argv[1]
failures = []


def run(*args, expect=0):
    p = subprocess.run([VIGIL, *args], capture_output=True, text=True)
    if p.returncode != expect:
        failures.append(f"{' '.join(args)}: exit {p.returncode}, expected {expect}\n{p.stdout}{p.stderr}")
    return p.stdout + p.stderr


def check(cond, what):
    if not cond:
        failures.append(what)


def msg(n, words):
    return (f"Message-ID: <{n}@test.example>\nFrom: sender{n}@example.com\nSubject: test {n}\n\n"
            f"{words} unique{n}\n")


with tempfile.TemporaryDirectory() as tmp:
    store = os.path.join(tmp, "bayes.lmdb")
    spam1 = os.path.join(tmp, "spam1.eml")
    with open(spam1, "w") as f:  # with an mbox envelope line first
        f.write("From someone@example.com Mon Jun 24 17:53:33 2002\n" + msg(1, "cheap pills offer"))
    hamdir = os.path.join(tmp, "ham")
    os.mkdir(hamdir)
    for i in range(2, 6):
        with open(os.path.join(hamdir, f"{i}.eml"), "w") as f:
            f.write(msg(i, "meeting agenda patch review"))
    os.mkdir(os.path.join(hamdir, "subdir"))  # not descended into
    mbox = os.path.join(tmp, "spam.mbox")
    with open(mbox, "w") as f:
        for i in range(10, 13):
            f.write(f"From x@y Mon Jun 24 17:53:3{i - 10} 2002\n" + msg(i, "free money now") + "\n")

    out = run("learn", "--spam", "--store", store, spam1)
    check("learned 1 messages as spam (1 new" in out, f"first learn: {out}")
    mode = stat.S_IMODE(os.stat(store).st_mode)
    check(mode == 0o600, f"store mode {oct(mode)}")
    out = run("learn", "--spam", "--store", store, spam1)
    check("0 new, 0 moved from ham, 1 already learned" in out, f"second learn: {out}")
    out = run("learn", "--ham", "--store", store, spam1)
    check("1 moved from spam" in out, f"relearn: {out}")
    out = run("learn", "--forget", "--store", store, spam1)
    check("forgot 1 messages (0 were not learned)" in out, f"forget: {out}")
    out = run("learn", "--forget", "--store", store, spam1)
    check("forgot 0 messages (1 were not learned)" in out, f"forget again: {out}")

    out = run("learn", "--ham", "--store", store, hamdir)
    check("learned 4 messages as ham (4 new" in out, f"directory: {out}")
    out = run("learn", "--spam", "--verbose", "--store", store, mbox)
    check("learned 3 messages as spam (3 new" in out, f"mbox: {out}")
    check(out.count("spam.mbox#") == 3, f"verbose lines: {out}")

    out = run("learn", "--stats", "--store", store)
    check(re.search(r"learned: 3 spam, 4 ham \(7 message records\)", out) is not None, f"stats: {out}")
    check(re.search(r"tokens: \d+", out) is not None, f"stats tokens: {out}")

    out = run("learn", "--expire", "--store", store, "--max-tokens", "8")
    m = re.search(r"expire: (\d+) tokens, removed (\d+) rare .* and (\d+) least recently learned; (\d+) left", out)
    check(m is not None and int(m.group(4)) == 6, f"expire: {out}")

    out = run("learn", "--dump-tokens", spam1)
    check("Hf:example.com" in out and " cheap\n" in out and "message id " in out, f"dump: {out}")

    # The store path from [server] state_dir.
    state = os.path.join(tmp, "state")
    os.mkdir(state)
    conf = os.path.join(tmp, "vigil.conf")
    with open(conf, "w") as f:
        f.write(f'[server]\nstate_dir = "{state}"\n')
    out = run("-c", conf, "learn", "--spam", spam1)
    check(os.path.exists(os.path.join(state, "bayes.lmdb")), f"state_dir store: {out}")

    # Errors: a missing file (the rest is still learned), a store in a missing directory, usage.
    out = run("learn", "--ham", "--store", store, os.path.join(tmp, "nope.eml"), spam1, expect=1)
    check("no such file" in out and "as ham (1 new" in out, f"missing file: {out}")
    out = run("learn", "--ham", "--store", os.path.join(tmp, "no", "dir", "bayes.lmdb"), spam1, expect=2)
    check("No such file or directory" in out, f"missing dir: {out}")
    run("learn", "--spam", "--ham", spam1, expect=2)
    run("learn", "--spam", "--store", store, expect=2)
    run("learn", "--stats", "--store", os.path.join(tmp, "absent.lmdb"), expect=2)

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok")
