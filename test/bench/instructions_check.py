#!/usr/bin/env python3
"""The recorded cost, kept: vigil-milter's user-space instructions per message (callgrind, repeatable to
about 0.01 %) must not grow more than LIMIT above the last figure in test/bench/instructions.txt.

    python3 test/bench/instructions_check.py BUILD/tools/vigil-bench [--messages N] [--limit 0.03]

A change that adds cost fails here; if the cost is worth it, re-measure with the README command and
add the new line to instructions.txt in the same commit. Only meaningful for the GCC RelWithDebInfo build
the figures were taken with (CMake registers it only there), on a CPU with the same features as the
one recorded in instructions.txt. Exit 77 (skip) without valgrind or on another kind of CPU.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def recorded() -> tuple[int, str]:
    last = None
    with open(os.path.join(HERE, "instructions.txt"), encoding="utf-8") as f:
        for line in f:
            # Persistent-connection figures only (the --callgrind default); per-connection lines say so.
            m = re.match(r"vigil-milter\s+(\d+)\s+(.*)", line)
            if m and "--per-connection" not in m.group(2):
                last = (int(m.group(1)), m.group(2).strip())
    if last is None:
        sys.exit("instructions.txt has no vigil-milter figure")
    return last


# The CPU features that choose OpenSSL's and glibc's code paths (also under valgrind, which passes most
# of them through): a figure recorded on another set of them is not comparable.
FEATURES = ("adx", "avx2", "avx512f", "avx512ifma", "bmi2", "erms", "fsrm", "sha_ni", "vaes", "vpclmulqdq")


def cpu_features() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return " ".join(x for x in FEATURES if x in have)
    return ""


def recorded_features() -> str | None:
    with open(os.path.join(HERE, "instructions.txt"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"# cpu features: (.*)", line)
            if m:
                return m.group(1).strip()
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bench")
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--limit", type=float, default=0.03)
    a = ap.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("SKIP: valgrind is not installed (apt-get install valgrind)")
        return 77
    want, what = recorded()
    here, there = cpu_features(), recorded_features()
    if there is not None and here != there:
        print(f"SKIP: this CPU has [{here}], the figures were recorded on [{there}]: not comparable")
        return 77
    with tempfile.TemporaryDirectory(prefix="vigil-instr-") as work:
        p = subprocess.run([os.path.abspath(a.bench), "--callgrind", str(a.messages), "--filters", "vigil"],
                           cwd=work, capture_output=True, text=True, timeout=600)
    m = re.search(r"^vigil\s+(\d+) instructions per message", p.stdout, re.M)
    if p.returncode != 0 or not m:
        print(p.stdout[-3000:], p.stderr[-3000:])
        print("FAIL: vigil-bench --callgrind did not report a figure")
        return 1
    got = int(m.group(1))
    change = got / want - 1
    print(f"vigil-milter: {got:,} instructions per message; recorded {want:,} ({what}); {change:+.2%}")
    if change > a.limit:
        print(f"FAIL: more than {a.limit:.0%} above the recorded figure: find the new cost with "
              f"callgrind_annotate, or record the new figure in test/bench/instructions.txt if it is worth it")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
