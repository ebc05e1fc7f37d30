"""pytest wiring for the integration tests: the binaries under test, a work directory per module,
and launchers (test/support/vigil_fixtures.py) whose processes are stopped when their scope ends.

    pytest test/integration/postfix_e2e.py -k gtube                   # binaries from build/
    pytest test/integration/faults/faults_test.py --vigil-milter=build-sanitize/milter/vigil-milter

Binaries: --vigil-milter, --vigil-cli, --vigil-test-dns, --vigil-noop-milter, else the environment
variables VIGIL_MILTER, VIGIL_CLI, VIGIL_TEST_DNS, VIGIL_NOOP_MILTER, else the build in build/.
ctest passes all four (test/CMakeLists.txt, vigil_add_pytest).

When a test fails, the logs of the daemons and Postfix instances it used are added to its report,
and the module's work directory is kept (its path is printed at the end). A run in which every
test was skipped (not root, no Postfix, ...) exits with 77, ctest's skip code.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
pytest.register_assert_rewrite("vigil_fixtures")
import vigil_fixtures as vf  # noqa: E402

SKIPPED_EXIT = 77

_BINARIES = (("milter", "--vigil-milter", "VIGIL_MILTER", "vigil-milter"),
             ("cli", "--vigil-cli", "VIGIL_CLI", "the vigil command line tool"),
             ("dns", "--vigil-test-dns", "VIGIL_TEST_DNS", "vigil-test-dns (test/support/dns_server)"),
             ("noop", "--vigil-noop-milter", "VIGIL_NOOP_MILTER", "vigil-noop-milter (test/support/noop_milter)"))


def pytest_addoption(parser):
    group = parser.getgroup("vigil", "Vigil's binaries under test")
    for _, option, env, what in _BINARIES:
        group.addoption(option, default=None, metavar="PATH", help=f"{what} (default: ${env}, else build/)")


@pytest.fixture(scope="session")
def binaries(request) -> vf.Binaries:
    return vf.Binaries({key: request.config.getoption(option) or os.environ.get(env)
                        for key, option, env, _ in _BINARIES})


_failed_modules: set[str] = set()
_kept: list[str] = []


@pytest.fixture(scope="module")
def workdir(request) -> str:
    """A directory for the module's files (configs, logs, Postfix instances): removed afterwards
    unless a test of the module failed."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    path = vf.make_workdir(f"vigil-{name}-")
    yield path
    if request.module.__name__ in _failed_modules:
        _kept.append(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _launcher(binaries, workdir):
    launcher = vf.Launcher(binaries, workdir)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture
def launch(binaries, workdir):
    """Starts processes for one test; they are stopped after it."""
    yield from _launcher(binaries, workdir)


@pytest.fixture(scope="class")
def class_launch(binaries, workdir):
    yield from _launcher(binaries, workdir)


@pytest.fixture(scope="module")
def module_launch(binaries, workdir):
    yield from _launcher(binaries, workdir)


def pytest_runtest_setup(item):
    item.stash[_started_key] = time.monotonic()


_started_key = pytest.StashKey[float]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    _failed_modules.add(item.module.__name__ if item.module else "")
    if report.when == "teardown":
        return
    for entry in vf.used_since(item.stash.get(_started_key, 0.0)):
        section = entry.failure_report()
        if section and section[1].strip():
            report.sections.append(section)


def pytest_terminal_summary(terminalreporter):
    for path in _kept:
        terminalreporter.write_line(f"work directory kept (a test failed): {path}")


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter else {}
    if exitstatus == 0 and stats.get("skipped") and not stats.get("passed"):
        session.exitstatus = SKIPPED_EXIT
