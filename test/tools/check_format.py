#!/usr/bin/env python3
"""Fails when a C or C++ file of the project is not formatted as .clang-format says.

Run by ctest (label unit) so CI keeps the tree clean; `clang-format -i FILE` fixes a file.
"""
import os
import shutil
import subprocess
import sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
tool = shutil.which("clang-format")
if tool is None:
    print("check_format: clang-format is not installed (scripts/bootstrap.sh installs it); skipped")
    sys.exit(77)
files = []
for top in ("lib", "milter", "tools", "test", "fuzz"):
    for base, _, names in os.walk(os.path.join(root, top)):
        for n in sorted(names):
            if n.endswith((".cpp", ".hpp", ".c", ".h")):
                files.append(os.path.join(base, n))
bad = []
for i in range(0, len(files), 50):
    batch = files[i:i + 50]
    r = subprocess.run([tool, "--dry-run", "-Werror", "--style=file"] + batch, cwd=root,
                       capture_output=True, text=True)
    if r.returncode != 0:
        for line in r.stderr.splitlines():
            if "error:" in line:
                path = line.split(":", 1)[0]
                if path not in bad:
                    bad.append(path)
for b in bad:
    print(f"not clang-format clean: {os.path.relpath(b, root)}")
print(f"check_format: {len(files)} files, {len(bad)} not formatted")
sys.exit(1 if bad else 0)
