"""The processes Vigil's integration tests run, started and stopped in one place.

    sys.path.insert(0, "test/support")
    import vigil_fixtures as vf

    with vf.DnsServer(dns_binary, zones=["a.zone"], args=["--servfail", "*.sf.test"]) as dns:
        with vf.Milter(milter_binary, workdir, "inbound", CONFIG, dns_port=dns.port) as m:
            res = milter_client.send_message(m.address, ...)
            m.decisions()          # the decision lines logged so far, parsed

Under pytest, test/integration/conftest.py wraps these in fixtures (`launch`, `module_launch`,
`class_launch`: a Launcher whose processes are stopped when the scope ends, whatever happened) and
adds the logs of the processes a failed test used to its report.

- DnsServer: vigil-test-dns (test/support/dns_server) on 127.0.0.1 with the given zone files and
  fault options; `.port` once it said "port N"; stop() returns its exit status and keeps its stderr.
- Milter: vigil-milter in the foreground with a config written to the work directory. The [milter]
  keys socket, user and allow_root are filled in unless the config sets them: a free 127.0.0.1 port,
  and the user the daemon drops to (`vigil` when running as root and that user exists; else root
  with allow_root, or, not root, the current user). start() waits for the "starting: listening"
  line, which comes after the socket is listening and privileges are dropped. Its stdout and stderr
  go to WORKDIR/NAME.log.
- NoopMilter: vigil-noop-milter (test/support/noop_milter), the libmilter floor.
- Postfix: test/support/postfix_harness.py's PostfixInstance (Launcher.postfix starts one in
  WORKDIR/NAME; the harness's own watchdog stops it should the test process die).

Every process started here is also known to a reaper process of its own session: should the test
process die without stopping them (SIGKILL, a crash), the reaper kills them. Never by name: by pid,
checked against the process's start time.

Python 3.11 standard library; with pytest importable, `needs_postfix` is a mark that skips a module
where a private Postfix cannot run (test/bench/soak.py uses the rest without pytest).
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Iterable, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import milter_client as mc  # noqa: E402
import postfix_harness  # noqa: E402

HOST = "127.0.0.1"
AUTHSERV = "mx.vigil.test"
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

# One decision line of vigil-milter's text log (README, "Logging").
DECISION_RE = re.compile(
    r"vigil-milter\[\d+\]: (?P<qid>\S+): (?P<dir>inbound|outbound) action=(?P<action>\S+) "
    r"score=(?P<score>[-\d.]+)/(?P<reject>[-\d.]+) symbols=(?P<symbols>\S+)(?: forced=\"[^\"]*\")? "
    r"ip=(?P<ip>\S+) helo=(?P<helo>\S+) from=<(?P<from>[^>]*)> rcpts=(?P<rcpts>\d+) ms=(?P<ms>\d+)")

# Where a build puts the binaries (`cmake -B build`), for a plain `pytest FILE` without options.
DEFAULT_BINARIES = {
    "milter": "build/milter/vigil-milter",
    "cli": "build/tools/vigil",
    "dns": "build/test/support/dns_server/vigil-test-dns",
    "noop": "build/test/support/noop_milter/vigil-noop-milter",
}


# ------------------------------------------------------------------------------------------- helpers


def free_port(host: str = HOST) -> int:
    """A TCP port on `host` that was free just now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A UDP+TCP port on 127.0.0.1 nobody listens on (a DNS server that is down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def make_workdir(prefix: str) -> str:
    """A fresh directory under the temp directory that the daemon's user (vigil, after the privilege
    drop) and Postfix's may traverse: it re-reads its config on SIGUSR1 as that user."""
    work = tempfile.mkdtemp(prefix=prefix)
    os.chmod(work, 0o755)
    return work


def write(path: str, text: str | bytes, mode: int | None = None) -> str:
    with open(path, "wb" if isinstance(text, bytes) else "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)
    return path


def wait_until(predicate, timeout: float, interval: float = 0.02):
    """predicate()'s first true value within `timeout` seconds, else its last (false) value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wait_listening_tcp(port: int, proc: subprocess.Popen | None = None, timeout: float = 10) -> None:
    """Waits until a socket LISTENs on 127.0.0.1:port, read from /proc/net/tcp: connecting to find
    out would look like a broken MTA to a milter."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process exited with {proc.returncode} before listening on {port}")
        if postfix_harness._listening_inodes(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def milter_user() -> tuple[str, bool]:
    """(user, allow_root) for a test daemon: `vigil` when we are root and that user exists (the
    daemon drops to it, as in production); root, explicitly allowed, when it does not; as another
    user, that user."""
    if os.geteuid() != 0:
        return "", False
    try:
        pwd.getpwnam("vigil")
        return "vigil", False
    except KeyError:
        return "", True


def milter_config(text: str, socket_spec: str, user: str, allow_root: bool) -> str:
    """`text` with socket, user and allow_root in its [milter] table where it does not set them
    (a [milter] table is added at the top when there is none)."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == "[milter]"), None)
    if start is None:
        lines[:0] = ["[milter]", ""]
        start = 0
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    present = {line.split("=", 1)[0].strip() for line in lines[start + 1:end] if "=" in line}
    wanted = [("socket", f'"{socket_spec}"'), ("user", f'"{user}"'), ("allow_root", "true" if allow_root else "false")]
    lines[start + 1:start + 1] = [f"{k} = {v}" for k, v in wanted if k not in present]
    return "\n".join(lines)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes from a stream socket; ConnectionError when the peer closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"({path}: {e})"


# ------------------------------------------------------------------------------------------- reaper


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


class _Reaper:
    """A process in its own session that kills what we started if we go away without stopping it.
    Lines on its stdin: "+PID STARTTIME" (watch), "-PID" (stopped). At end of file it sends SIGKILL
    to every watched pid whose start time still matches."""

    _lock = threading.Lock()
    _proc: subprocess.Popen | None = None

    @classmethod
    def _send(cls, line: str) -> None:
        with cls._lock:
            if cls._proc is None or cls._proc.poll() is not None:
                cls._proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--reaper"],
                                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                                             cwd="/")
            try:
                cls._proc.stdin.write(line.encode() + b"\n")
                cls._proc.stdin.flush()
            except OSError:
                pass

    @classmethod
    def watch(cls, pid: int) -> None:
        cls._send(f"+{pid} {_start_time(pid)}")

    @classmethod
    def forget(cls, pid: int) -> None:
        if cls._proc is not None:
            cls._send(f"-{pid}")


def _reaper_main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    watched: dict[int, str] = {}
    for raw in sys.stdin:
        line = raw.strip()
        if line.startswith("+"):
            pid, _, started = line[1:].partition(" ")
            watched[int(pid)] = started
        elif line.startswith("-"):
            watched.pop(int(line[1:]), None)
    for pid, started in watched.items():
        if _start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return 0


# What is running now (for the stop at exit), and everything started (for the failure report).
_running: list["_Process"] = []
_history: list = []
_running_lock = threading.Lock()


def _remember(entry) -> None:
    with _running_lock:
        _history.append(entry)


def used_since(t: float) -> list:
    """What ran at some point since monotonic time `t`: processes and Postfix instances."""
    with _running_lock:
        return [e for e in _history if e.stopped_at is None or e.stopped_at >= t]


def running() -> list["_Process"]:
    with _running_lock:
        return list(_running)


def _stop_all_at_exit() -> None:
    for p in running():
        try:
            p.stop()
        except Exception as e:  # noqa: BLE001 - best effort at exit
            print(f"vigil_fixtures: stopping {p!r} at exit failed: {e}", file=sys.stderr)


atexit.register(_stop_all_at_exit)


class _Process:
    """A child process the fixtures started: registered while it runs, stopped with SIGTERM (then
    SIGKILL after `stop_timeout` s)."""

    stop_timeout = 10.0

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.stop_seconds: float | None = None

    def _spawned(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.started_at, self.stopped_at = time.monotonic(), None
        _Reaper.watch(proc.pid)
        with _running_lock:
            _running.append(self)
            if self not in _history:
                _history.append(self)

    def _gone(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        with _running_lock:
            if self in _running:
                _running.remove(self)
        if self.proc is not None:
            _Reaper.forget(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        """Sends `sig` and waits; returns the exit status, None if it had to be killed. Keeps in
        stop_seconds how long it took."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self._gone()
            return self.proc.returncode
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=self.stop_timeout if timeout is None else timeout)
            self.stop_seconds = time.monotonic() - started
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self._finish()
        self._gone()
        return rc

    def stop(self) -> int | None:
        """SIGTERM; the exit status (None when it had to be killed). Harmless when already stopped."""
        return self.signal_stop(signal.SIGTERM)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._finish()
        self._gone()

    def _finish(self) -> None:
        """After the process ended: collect what it left (stderr)."""

    def failure_report(self) -> tuple[str, str] | None:
        """(title, text) for the report of a failed test that used this process."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------- DNS


class DnsServer(_Process):
    """vigil-test-dns on 127.0.0.1 serving `zones` with fault options `args` (see its --help).
    port=0 lets it pick a port (read from its "port N" line); a given port restarts a server where
    the test expects it. `log`: its query log (--log). Its stderr is kept in .stderr after stop()."""

    stop_timeout = 5.0

    def __init__(self, binary: str, zones: Iterable[str] = (), args: Sequence[str] = (), *, port: int = 0,
                 log: str | None = None, start: bool = True) -> None:
        super().__init__()
        self.binary = binary
        self.zones = list(zones)
        self.args = list(args)
        self.port = port
        self.log = log
        self.stderr = ""
        self._err = None
        if start:
            self.start()

    def start(self) -> "DnsServer":
        cmd = [self.binary, "--listen", HOST, "--port", str(self.port)]
        for z in self.zones:
            cmd += ["--zone", z]
        if self.log:
            cmd += ["--log", self.log]
        cmd += self.args
        self._err = tempfile.TemporaryFile()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err, text=True)
        self._spawned(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        line = proc.stdout.readline() if ready else ""
        m = re.fullmatch(r"port (\d+)\n", line)
        if not m:
            self.kill()
            raise RuntimeError(f"vigil-test-dns did not print 'port N' (got {line!r}): {self.stderr}")
        self.port = int(m.group(1))
        return self

    def _finish(self) -> None:
        if self._err is not None:
            self._err.seek(0)
            self.stderr = self._err.read().decode("utf-8", "replace")
            self._err.close()
            self._err = None
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def failure_report(self) -> tuple[str, str] | None:
        if self._err is not None:
            self._err.seek(0)
            text = self._err.read().decode("utf-8", "replace")
        else:
            text = self.stderr
        return (f"vigil-test-dns on port {self.port}: stderr", text) if text else None

    def __repr__(self) -> str:
        return f"DnsServer(port={self.port}, zones={[os.path.basename(z) for z in self.zones]})"


# ------------------------------------------------------------------------------------------- milter


class Milter(_Process):
    """vigil-milter -f with `config` (TOML text) written to WORKDIR/NAME.conf, logging to
    WORKDIR/NAME.log. socket: a libmilter socket spec (default: a free 127.0.0.1 port); user /
    allow_root: see milter_user(); dns_port: passed as --dns 127.0.0.1:PORT; env: added to the
    environment; prefix: a command to run it under (setpriv, taskset); args: more arguments."""

    def __init__(self, binary: str, workdir: str, name: str, config: str, *, socket: str | None = None,
                 user: str | None = None, allow_root: bool | None = None, dns_port: int | None = None,
                 env: dict[str, str] | None = None, prefix: Sequence[str] = (), args: Sequence[str] = (),
                 start: bool = True, start_timeout: float = 20.0) -> None:
        super().__init__()
        self.binary = binary
        self.name = name
        self.address = socket or mc.free_inet_address()
        auto_user, auto_allow = milter_user()
        self.user = auto_user if user is None else user
        self.allow_root = auto_allow if allow_root is None else allow_root
        self.conf = os.path.join(workdir, f"{name}.conf")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.dns_port = dns_port
        self.env = dict(env or {})
        self.prefix = list(prefix)
        self.args = list(args)
        self.start_timeout = start_timeout
        self.write_config(config)
        if start:
            self.start()

    def write_config(self, config: str) -> None:
        """Writes the config file (read again on SIGUSR1)."""
        write(self.conf, milter_config(config, self.address, self.user, self.allow_root), 0o644)

    @property
    def socket_path(self) -> str | None:
        return self.address[5:] if self.address.startswith("unix:") else None

    def start(self, env: dict[str, str] | None = None) -> "Milter":
        cmd = [*self.prefix, self.binary, "-f", "-c", self.conf]
        if self.dns_port is not None:
            cmd += ["--dns", f"{HOST}:{self.dns_port}"]
        cmd += self.args
        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **self.env, **(env or {})})
        self._spawned(proc)
        if not wait_until(lambda: "starting: listening" in self.log() or proc.poll() is not None,
                          self.start_timeout) or proc.poll() is not None:
            status = proc.poll()
            self.kill()
            raise RuntimeError(f"vigil-milter {self.name} did not start (status {status}):\n{self.log()}")
        return self

    def log(self) -> str:
        """What this run of the daemon logged (a restart appends to the same file)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(getattr(self, "_log_start", 0))
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern: str, timeout: float = 10.0) -> re.Match | None:
        """The first match of `pattern` in the log within `timeout` seconds, else None."""
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.log()), timeout)

    def decisions(self) -> list[re.Match]:
        return [m for m in (DECISION_RE.search(line) for line in self.log().splitlines()) if m]

    def decision_for(self, qid: str | None) -> re.Match | None:
        found = [m for m in self.decisions() if m["qid"] == qid]
        return found[-1] if found else None

    def reload(self, config: str | None = None, raw: str | None = None, timeout: float = 10.0) -> str:
        """Writes `config` (or `raw` text as it is) if given, sends SIGUSR1 and waits for the outcome
        line: "reloaded" or "kept" (the broken file was refused), "" when none came."""
        if config is not None:
            self.write_config(config)
        elif raw is not None:
            write(self.conf, raw, 0o644)
        before = self._reload_lines()
        self.proc.send_signal(signal.SIGUSR1)
        got = wait_until(lambda: self._reload_lines() != before, timeout)
        if not got:
            return ""
        return "reloaded" if self._reload_lines()[0] > before[0] else "kept"

    def _reload_lines(self) -> tuple[int, int]:
        text = self.log()
        return text.count("reloaded configuration"), text.count("keeping the running configuration")

    def rss_kb(self) -> int:
        return int(self.status()["VmRSS"].split()[0])

    def status(self) -> dict[str, str]:
        """/proc/PID/status as a dict."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)

    def failure_report(self) -> tuple[str, str] | None:
        return f"vigil-milter {self.name} ({self.log_path}), last 40 lines", tail(self.log_path)

    def __repr__(self) -> str:
        return f"Milter({self.name!r}, {self.address})"


class NoopMilter(_Process):
    """vigil-noop-milter -p ADDRESS FLAGS..., up once something accepts connections there."""

    # libmilter leaves smfi_main() on SIGTERM only at its next ~5 s poll; nothing needs a clean exit.
    stop_timeout = 0.5

    def __init__(self, binary: str, *flags: str, address: str | None = None) -> None:
        super().__init__()
        self.address = address or mc.free_inet_address()
        proc = subprocess.Popen([binary, "-p", self.address, *flags], stdin=subprocess.DEVNULL)
        self._spawned(proc)
        try:
            mc.wait_until_listening(self.address, timeout=10, proc=proc)
        except Exception:
            self.kill()
            raise

    def __repr__(self) -> str:
        return f"NoopMilter({self.address})"


# ------------------------------------------------------------------------------------------- Postfix


def postfix_missing() -> str | None:
    """Why a private Postfix cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (Postfix's master runs as root)"
    if not os.path.exists(postfix_harness.POSTFIX):
        return f"Postfix is not installed ({postfix_harness.POSTFIX})"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no user postfix"
    return None


class _PostfixEntry:
    """A Postfix instance in the history, for the failure report."""

    def __init__(self, pf: postfix_harness.PostfixInstance) -> None:
        self.pf = pf
        self.started_at: float | None = time.monotonic()
        self.stopped_at: float | None = None

    def failure_report(self) -> tuple[str, str]:
        return f"Postfix {self.pf.workdir}, last 30 log lines", self.pf._log_tail().lstrip("\n")


def postfix_milter_spec(milter: "Milter | str | None") -> str | None:
    """What main.cf's smtpd_milters says for a Milter (Postfix writes inet:HOST:PORT)."""
    if milter is None or isinstance(milter, str):
        return milter
    family, addr = mc.parse_address(milter.address)
    return f"unix:{addr}" if family == socket.AF_UNIX else f"inet:{addr[0]}:{addr[1]}"


# ------------------------------------------------------------------------------------------- launcher


class Binaries:
    """The programs under test: given paths (pytest options, environment), else a build in build/."""

    def __init__(self, paths: dict[str, str | None]) -> None:
        self._paths = paths

    def __getattr__(self, key: str) -> str:
        if key.startswith("_") or key not in DEFAULT_BINARIES:
            raise AttributeError(key)
        path = self._paths.get(key) or os.path.join(REPO, DEFAULT_BINARIES[key])
        if not os.access(path, os.X_OK):
            raise FileNotFoundError(f"{path} is not an executable: build it, or name it with "
                                    f"--vigil-{ {'dns': 'test-dns', 'noop': 'noop-milter'}.get(key, key)}=PATH")
        return os.path.abspath(path)


class Launcher:
    """Starts the processes of one scope (a test, a class, a module) and stops them all in close(),
    the last started first, whatever happened in between."""

    def __init__(self, binaries: Binaries, workdir: str) -> None:
        self.binaries = binaries
        self.workdir = workdir
        self._stops: list = []

    def dns(self, zones: Iterable[str] = (), args: Sequence[str] = (), **kw) -> DnsServer:
        d = DnsServer(self.binaries.dns, zones, args, **kw)
        self._stops.append(d.stop)
        return d

    def milter(self, name: str, config: str, *, dns: DnsServer | int | None = None, **kw) -> Milter:
        if isinstance(dns, DnsServer):
            dns = dns.port
        m = Milter(self.binaries.milter, self.workdir, name, config, dns_port=dns, **kw)
        self._stops.append(m.stop)
        return m

    def noop(self, *flags: str, address: str | None = None) -> NoopMilter:
        n = NoopMilter(self.binaries.noop, *flags, address=address)
        self._stops.append(n.stop)
        return n

    def postfix(self, name: str, milter: "Milter | str | None" = None, **kw) -> postfix_harness.PostfixInstance:
        """A started private Postfix in WORKDIR/NAME (keyword arguments: PostfixInstance's)."""
        pf = postfix_harness.PostfixInstance(os.path.join(self.workdir, name), milter=postfix_milter_spec(milter),
                                             **kw)
        entry = _PostfixEntry(pf)
        _remember(entry)

        def stop() -> None:
            entry.stopped_at = time.monotonic()
            pf.stop()

        self._stops.append(stop)
        pf.start()
        return pf

    def close(self) -> None:
        errors = []
        while self._stops:
            try:
                self._stops.pop()()
            except Exception as e:  # noqa: BLE001 - stop the rest, then report
                errors.append(e)
        if errors:
            raise errors[0]


# ------------------------------------------------------------------------------------------- marks

try:
    import pytest
except ImportError:  # the fixtures without pytest (test/bench/soak.py)
    pytest = None

if pytest is not None:
    # pytestmark = vf.needs_postfix: every test of the module is skipped (ctest: exit 77) when a
    # private Postfix cannot run here.
    needs_postfix = pytest.mark.skipif(postfix_missing() is not None, reason=str(postfix_missing()))


if __name__ == "__main__":
    if sys.argv[1:] == ["--reaper"]:
        sys.exit(_reaper_main())
    print(__doc__)
    sys.exit(2)
