#!/usr/bin/env python3
"""Fails when a file under lib/ includes a header of a higher floor (docs/ARCHITECTURE.md, "Floors").

The floors and their directories are read from lib/CMakeLists.txt, the one place they are defined.
The build already refuses such an include in every .cpp a floor compiles; this also covers headers
that no .cpp of their own floor happens to include, libmilter in lib/, and lib/ reaching into the
programs or the test doubles.
"""
import os
import re
import sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
cmake = open(os.path.join(root, "lib", "CMakeLists.txt"), encoding="utf-8").read()
order = re.search(r"set\(VIGIL_FLOORS ([^)]*)\)", cmake).group(1).split()
floor_of = {}
for i, floor in enumerate(order):
    dirs = re.search(r"set\(VIGIL_FLOOR_%s ([^)]*)\)" % re.escape(floor), cmake).group(1).split()
    for d in dirs:
        floor_of[d] = (i, floor)

include = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
problems = []
checked = 0
for base, _, files in os.walk(os.path.join(root, "lib")):
    for name in sorted(files):
        if not name.endswith((".hpp", ".cpp", ".h", ".c")):
            continue
        path = os.path.join(base, name)
        rel = os.path.relpath(path, root)
        top = rel.split(os.sep)[1]
        if top not in floor_of:
            problems.append(f"{rel}: directory lib/{top} is in no floor of lib/CMakeLists.txt")
            continue
        mine, my_floor = floor_of[top]
        text = open(path, encoding="utf-8", errors="replace").read()
        checked += 1
        for m in include.finditer(text):
            kind, target = m.group(1), m.group(2)
            line = text.count("\n", 0, m.start()) + 1
            first = target.split("/")[0]
            if "libmilter" in target or target == "mfapi.h":
                problems.append(f"{rel}:{line}: includes libmilter ({target}); lib/ decides, milter/ translates")
            elif kind == '"' and first in ("milter", "tools", "fakes"):
                problems.append(f"{rel}:{line}: includes {target}, which is not part of lib/")
            elif kind == '"' and first in floor_of:
                theirs, their_floor = floor_of[first]
                if theirs > mine:
                    problems.append(f"{rel}:{line}: the {my_floor} floor includes {target} of the higher "
                                    f"{their_floor} floor")

for p in problems:
    print(p)
print(f"check_floors: {checked} files, floors {' < '.join(order)}: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
