#!/usr/bin/env python3
"""Run Vigil's libFuzzer targets with seeds taken from the test data.

    # what `ctest -L fuzz` runs for each target (a build with -DVIGIL_FUZZ=ON):
    python3 fuzz/run_fuzz.py --binary build-fuzz/fuzz/fuzz_session --seconds 20 --work build-fuzz/fuzz/work
    # long runs: every target (or --target NAME...) for an hour each, 2 processes per target:
    python3 fuzz/run_fuzz.py --build build-fuzz --seconds 3600 --jobs 2

Seeds are extracted at run time from the repository's unit tests (string literals), conf/vigil.conf,
../shared/conformance (dkimpy and RFC 8463 messages and key records, the OpenSPF suites' records,
OpenDMARC's record and From tables) and, for the mime target, every tenth message of the
SpamAssassin corpus stored beside that conformance data; nothing third-party is copied into the repository. Small own
seeds may live in fuzz/corpus/NAME/. What a run finds stays in WORK/corpus/NAME (reused by the next run);
crashes are written to WORK/artifacts/ and printed with the command that reproduces them.
Exit status: 0 when no target crashed, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import time

FUZZ_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ_DIR)
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "conformance"))
MAX_SEED = 64 * 1024

# --------------------------------------------------------------------------- seed sources


def c_literals(path: str) -> list[bytes]:
    """The string literals of a C++ file, adjacent ones joined, escapes decoded (raw strings too)."""
    src = open(path, "rb").read()
    out: list[bytes] = []
    cur: bytearray | None = None
    i, n = 0, len(src)
    while i < n:
        c = src[i:i + 1]
        if src.startswith(b"//", i):
            i = src.find(b"\n", i)
            i = n if i < 0 else i
            continue
        if src.startswith(b"/*", i):
            j = src.find(b"*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        m = re.compile(rb'R"([^(\s]{0,16})\(').match(src, i)
        if m and (i == 0 or not (src[i - 1:i].isalnum() or src[i - 1:i] == b"_")):
            end = src.find(b")" + m.group(1) + b'"', m.end())
            if end < 0:
                break
            cur = (cur or bytearray()) + src[m.end():end]
            i = end + len(m.group(1)) + 2
            continue
        if c == b"'":
            j = i + 1
            while j < n and src[j:j + 1] != b"'":
                j += 2 if src[j:j + 1] == b"\\" else 1
            i = j + 1
            continue
        if c == b'"':
            j, buf = i + 1, bytearray()
            while j < n and src[j:j + 1] != b'"':
                if src[j:j + 1] == b"\\":
                    e = src[j + 1:j + 2]
                    simple = {b"n": 10, b"r": 13, b"t": 9, b"\\": 92, b'"': 34, b"'": 39, b"a": 7, b"b": 8,
                              b"f": 12, b"v": 11, b"?": 63}
                    if e in simple:
                        buf.append(simple[e])
                        j += 2
                    elif e == b"x":
                        k = j + 2
                        while k < n and src[k:k + 1] in b"0123456789abcdefABCDEF" and src[k:k + 1]:
                            k += 1
                        buf.append(int(src[j + 2:k] or b"0", 16) & 0xFF)
                        j = k
                    elif e.isdigit():
                        k = j + 1
                        while k < j + 4 and src[k:k + 1].isdigit():
                            k += 1
                        buf.append(int(src[j + 1:k], 8) & 0xFF)
                        j = k
                    else:
                        buf += e
                        j += 2
                else:
                    buf += src[j:j + 1]
                    j += 1
            cur = (cur or bytearray()) + buf
            i = j + 1
            continue
        if cur is not None and not c.isspace():
            out.append(bytes(cur))
            cur = None
        i += 1
    if cur is not None:
        out.append(bytes(cur))
    return out


def literals(where: str, *needles: bytes) -> list[bytes]:
    """Literals of test files under test/unit/WHERE (a file or a directory) that contain any needle."""
    path = os.path.join(ROOT, "test", "unit", where)
    files = sorted(glob.glob(os.path.join(path, "**", "*.cpp"), recursive=True)) if os.path.isdir(path) else \
        ([path] if os.path.exists(path) else [])
    found = []
    for f in files:
        found += [s for s in c_literals(f) if len(s) >= 2 and (not needles or any(x in s for x in needles))]
    return found


def files(*patterns: str) -> list[bytes]:
    out = []
    for p in patterns:
        for f in sorted(glob.glob(p)):
            if os.path.isfile(f):
                out.append(open(f, "rb").read())
    return out


def messages() -> list[bytes]:
    d = os.path.join(SHARED, "dkimpy-testdata", "data")
    return files(os.path.join(d, "*.msg"), os.path.join(d, "*.message*"), os.path.join(d, "message.mbox"),
                 os.path.join(SHARED, "rfc8463-appendix-a", "*.eml"))


def header_values(name: bytes, msgs: list[bytes]) -> list[bytes]:
    """Values (after the colon, folding kept) of every field called `name`."""
    out = []
    pat = re.compile(rb"^" + re.escape(name) + rb":(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
    for m in msgs:
        head = re.split(rb"\r?\n\r?\n", m, maxsplit=1)[0]
        out += [x.group(1) for x in pat.finditer(head)]
    return out


def tsv_column(path: str, col: int) -> list[bytes]:
    if not os.path.exists(path):
        return []
    out = []
    for line in open(path, "rb"):
        if line.startswith(b"#"):
            continue
        parts = line.rstrip(b"\r\n").split(b"\t")
        if len(parts) > col:
            out.append(parts[col])
    return out[1:] if out and out[0] in (b"record", b"TXT value") else out


def spf_records() -> list[bytes]:
    """Every TXT/SPF string in the OpenSPF suites' zone data."""
    try:
        import yaml
    except ImportError:
        return []
    out = []
    for f in sorted(glob.glob(os.path.join(SHARED, "openspf-test-suite", "*.yml"))):
        with open(f, "rb") as fh:
            for doc in yaml.safe_load_all(fh):
                for records in (doc or {}).get("zonedata", {}).values():
                    for r in records or []:
                        if not isinstance(r, dict):
                            continue
                        for k in ("TXT", "SPF"):
                            v = r.get(k)
                            if isinstance(v, list):
                                v = "".join(v)
                            if isinstance(v, str):
                                out.append(v.encode("utf-8", "surrogateescape"))
    return out


def from_values() -> list[bytes]:
    path = os.path.join(SHARED, "opendmarc-unit-tables", "from-domain-extraction.json")
    if not os.path.exists(path):
        return []
    return [e["from_header_value"].encode() for e in json.load(open(path)) if "from_header_value" in e]


def corpus_messages(every: int) -> list[bytes]:
    """Every Nth message of the SpamAssassin corpus tarball beside the conformance data (if present)."""
    path = os.path.join(os.path.dirname(SHARED), "corpus", "spamassassin", "messages.tar.xz")
    if not os.path.exists(path):
        return []
    import tarfile
    out = []
    with tarfile.open(path) as t:
        for i, m in enumerate(m for m in t.getmembers() if m.isfile()):
            if i % every == 0:
                out.append(t.extractfile(m).read())
    return out


def seeds_for(name: str) -> list[bytes]:
    msgs = messages
    table = {
        "dkim_signature": lambda: literals("auth/dkim", b"v=1", b"a=rsa", b"a=ed25519", b"bh=") +
                                  header_values(b"DKIM-Signature", msgs()),
        "dkim_key": lambda: literals("auth/dkim", b"p=") +
                            tsv_column(os.path.join(SHARED, "dkimpy-testdata", "dns-records.tsv"), 1) +
                            tsv_column(os.path.join(SHARED, "rfc8463-appendix-a", "dns-records.tsv"), 1),
        "dkim_canon": lambda: msgs() + literals("auth/dkim/canon_test.cpp"),
        "spf_record": lambda: spf_records() + literals("auth/spf", b"v=spf1"),
        "spf_macro": lambda: literals("auth/spf/macro_test.cpp") + [r for r in spf_records() if b"%" in r],
        "dns_answer": lambda: literals("dns/rdata_test.cpp"),
        "config": lambda: files(os.path.join(ROOT, "conf", "*.conf")) + literals("policy", b"=") +
                          literals("auth", b"[checks") + literals("reputation", b"[checks"),
        "mime": lambda: literals("mime") + msgs() + corpus_messages(10),
        "message": lambda: msgs() + literals("core/message_test.cpp") + literals("auth/authentication_results_test.cpp"),
        "session": lambda: msgs() + literals("engine/session_test.cpp", b"\r\n"),
        "dmarc_record": lambda: tsv_column(os.path.join(SHARED, "opendmarc-unit-tables", "dmarc-record-parse.tsv"), 1) +
                                literals("auth/dmarc", b"v=DMARC1"),
        "dmarc_from": lambda: from_values() + literals("auth/dmarc", b"@"),
        "bayes_tokenize": lambda: msgs() + literals("content/bayes/tokenizer_test.cpp") +
                                  literals("content/bayes/filter_test.cpp"),
        "authentication_results": lambda: literals("auth/authentication_results_test.cpp") +
                                          literals("auth/authentication_results_dnssec_test.cpp"),
    }
    return table.get(name, lambda: [])()


def write_seeds(name: str, work: str) -> tuple[str, int]:
    d = os.path.join(work, "seeds", name)
    os.makedirs(d, exist_ok=True)
    count = 0
    for s in seeds_for(name):
        s = s[:MAX_SEED]
        path = os.path.join(d, hashlib.sha1(s).hexdigest())
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(s)
        count += 1
    return d, count


# --------------------------------------------------------------------------- running


def run_target(binary: str, seconds: int, work: str, jobs: int) -> bool:
    name = os.path.basename(binary).removeprefix("fuzz_")
    seeds, n = write_seeds(name, work)
    corpus = os.path.join(work, "corpus", name)
    artifacts = os.path.join(work, "artifacts")
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    dirs = [corpus, seeds]
    own = os.path.join(FUZZ_DIR, "corpus", name)
    if os.path.isdir(own):
        dirs.append(own)
    cmd = [binary, f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
           f"-artifact_prefix={artifacts}/{name}-"]
    if jobs > 1:
        cmd.append(f"-fork={jobs}")
    cmd += dirs
    env = dict(os.environ)
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    print(f"fuzz {name}: {n} seeds from the test data, {len(os.listdir(corpus))} inputs in {corpus}; "
          f"running {seconds} s", flush=True)
    before = set(os.listdir(artifacts))
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = proc.stdout.decode("utf-8", "replace")
    new = sorted(set(os.listdir(artifacts)) - before)
    stats = [l for l in text.splitlines() if l.startswith("stat::") or " DONE " in l or "Done " in l]
    if proc.returncode == 0 and not new:
        print("\n".join(stats[-6:]))
        print(f"ok    fuzz {name}: no crash in {time.monotonic() - started:.0f} s", flush=True)
        return True
    print(text[-20000:])
    print(f"FAIL  fuzz {name}: exit status {proc.returncode}")
    for a in new:
        print(f"      reproduce: {binary} {os.path.join(artifacts, a)}")
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", action="append", default=[], help="a fuzz target executable (repeatable)")
    ap.add_argument("--build", help="a -DVIGIL_FUZZ=ON build directory: run its targets")
    ap.add_argument("--target", action="append", default=[], help="with --build: only this target (repeatable)")
    ap.add_argument("--seconds", type=int, default=20, help="per target (default 20)")
    ap.add_argument("--jobs", type=int, default=1, help="fuzzing processes per target (libFuzzer -fork)")
    ap.add_argument("--work", help="corpus/seeds/artifacts directory (default BUILD/fuzz/work)")
    ap.add_argument("--seeds-only", action="store_true", help="write the seed directories and stop")
    a = ap.parse_args()
    binaries = [os.path.abspath(b) for b in a.binary]
    if a.build:
        found = sorted(glob.glob(os.path.join(a.build, "fuzz", "fuzz_*")))
        found = [b for b in found if os.access(b, os.X_OK) and os.path.isfile(b)]
        if a.target:
            found = [b for b in found if os.path.basename(b).removeprefix("fuzz_") in a.target]
        binaries += [os.path.abspath(b) for b in found]
    if not binaries:
        ap.error("no fuzz target given or found (build with -DVIGIL_FUZZ=ON)")
    work = os.path.abspath(a.work or os.path.join(a.build or os.path.dirname(os.path.dirname(binaries[0])),
                                                  "fuzz", "work"))
    if a.seeds_only:
        for b in binaries:
            name = os.path.basename(b).removeprefix("fuzz_")
            d, n = write_seeds(name, work)
            print(f"{name}: {n} seeds in {d}")
        return 0
    ok = [run_target(b, a.seconds, work, a.jobs) for b in binaries]
    print(f"{sum(ok)} passed, {len(ok) - sum(ok)} failed")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
