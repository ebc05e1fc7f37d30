#!/usr/bin/env python3
"""ctest driver for the OpenSPF conformance suites.

Finds the suite (Debian's python3-spf copy first, else ../shared/conformance/openspf-test-suite/
next to the source tree), converts it with suite_to_cases.py and runs vigil-spf-conformance on it.
Exits 77 (ctest SKIP_RETURN_CODE) with a clear message when the suite or PyYAML is missing.

  run_suite.py RUNNER SOURCE_DIR SUITE [runner options...]     SUITE: rfc7208 | rfc4408
"""
import os
import subprocess
import sys
import tempfile

SKIP = 77


def find_suite(source_dir, suite):
    candidates = [
        "/usr/share/doc/python3-spf/%s-tests.yml.gz" % suite,
        os.path.join(source_dir, "..", "shared", "conformance", "openspf-test-suite", "%s-tests.yml" % suite),
    ]
    for path in candidates:
        if os.path.exists(path):
            return path
    return None


def main():
    runner, source_dir, suite = sys.argv[1:4]
    path = find_suite(source_dir, suite)
    if path is None:
        print("SKIP: %s-tests.yml not found (install python3-spf, or provide ../shared/conformance/"
              "openspf-test-suite/)" % suite)
        return SKIP
    here = os.path.dirname(os.path.abspath(__file__))
    conv = subprocess.run([sys.executable, os.path.join(here, "suite_to_cases.py"), path], capture_output=True)
    if conv.returncode == 3:
        print("SKIP: PyYAML (python3-yaml) is not installed; cannot read %s" % path)
        return SKIP
    if conv.returncode != 0:
        sys.stderr.write(conv.stderr.decode(errors="replace"))
        return 1
    with tempfile.NamedTemporaryFile(prefix="spf-%s-" % suite, suffix=".cases") as f:
        f.write(conv.stdout)
        f.flush()
        print("suite: %s" % path)
        sys.stdout.flush()
        return subprocess.call([runner, f.name, "--name", suite] + sys.argv[4:])


if __name__ == "__main__":
    sys.exit(main())
