#!/usr/bin/env python3
"""Every symbol the code knows must be documented in the README's symbol table (and vice versa)."""
import json
import re
import subprocess
import sys

vigil, readme = sys.argv[1], sys.argv[2]
symbols = {s["name"] for s in json.loads(subprocess.check_output([vigil, "--config", "/dev/null", "symbols", "--json"]))}
text = open(readme, encoding="utf-8").read()
table = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", text, re.M))
missing = sorted(symbols - table)
stale = sorted(table - symbols)
print(f"{len(symbols)} symbols in the code, {len(table)} in the README table")
if missing:
    print("not documented in README:", ", ".join(missing))
if stale:
    print("documented but unknown to the code:", ", ".join(stale))
sys.exit(1 if missing or stale else 0)
