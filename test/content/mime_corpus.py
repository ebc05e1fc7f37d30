#!/usr/bin/env python3
"""Parse every message of a corpus tarball with mime::parse (via vigil-mime-bench --corpus).

    python3 test/content/mime_corpus.py --bench build/test/content/vigil-mime-bench \
        --tarball PATH/messages.tar.xz --work build/test/content/corpus

(ctest -R mime_corpus runs it with the SpamAssassin public corpus tarball that sits beside the
repository on development machines and CI; see test/content/CMakeLists.txt.)

The tarball is unpacked once into WORK (kept for later runs). Exit 77 (ctest: skipped) when the
tarball is absent; otherwise the bench's status: a crash or an error fails the test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--tarball", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    if not os.path.exists(a.tarball):
        print(f"SKIP: corpus not found at {os.path.normpath(a.tarball)}; nothing to parse")
        return 77
    done = os.path.join(a.work, ".unpacked")
    if not os.path.exists(done):
        os.makedirs(a.work, exist_ok=True)
        with tarfile.open(a.tarball) as t:
            t.extractall(a.work, filter="data") if hasattr(tarfile, "data_filter") else t.extractall(a.work)
        open(done, "w").close()
    proc = subprocess.run([a.bench, "--corpus", a.work, "--slowest", "5"])
    if proc.returncode != 0:
        print(f"FAIL: vigil-mime-bench exited with status {proc.returncode}")
        return 1
    print("ok: every message parsed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
