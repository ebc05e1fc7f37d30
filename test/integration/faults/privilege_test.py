#!/usr/bin/env python3
"""Least privilege, verified on the real daemon and the shipped systemd unit.

    python3 test/integration/faults/privilege_test.py VIGIL_MILTER SYSTEMD_UNIT

  1. Started as root on a privileged port (< 1024), vigil-milter binds it and then runs as `vigil`:
     real, effective, saved and file-system uid and gid all the user's, no supplementary group 0,
     no capabilities left, no_new_privs set.
  2. It refuses to run as root unless allowed ([milter] user = "root" without allow_root: exit 1).
  3. It refuses DKIM signing keys that group or others may read (0640, 0604), accepts 0600.
  4. Under the unit's own CapabilityBoundingSet (applied with setpriv), a key owned by `vigil` with
     mode 0600 is read at start (as root) and again on SIGUSR1 reload (as vigil). A key owned by root
     is read at start but not on reload: the reload fails with a clear log line and the old
     configuration keeps serving.
  5. A unix socket gets the configured socket_mode (0600 here; 0660 is in milter_protocol_test.py)
     and belongs to the milter's user.
  6. The unit: NoNewPrivileges, ProtectSystem=strict, PrivateTmp, RestrictAddressFamilies limited to
     AF_UNIX AF_INET AF_INET6, ReadWritePaths only /run/vigil, /var/lib/vigil (and, optional,
     /var/spool/postfix/vigil); `systemd-analyze verify` accepts it and `systemd-analyze security
     --offline=yes` rates its exposure at most 3.0.
Needs root and the user `vigil` (scripts/bootstrap.sh creates it): exit 77 (skipped) otherwise.
Exit 0 = all passed, 1 = a check failed. About 10 s.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))
import milter_client as mc  # noqa: E402

failures: list[str] = []


def check(cond, what: str) -> bool:
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)
    return bool(cond)


CONFIG = """\
[milter]
socket = "{socket}"
socket_mode = "{mode}"
user = "{user}"
allow_root = false
[server]
hostname = "mx.vigil.test"
authserv_id = "mx.vigil.test"
[dns]
server = "127.0.0.1:9"
[checks.dkim]
enabled = true
{keys}
"""


def write_conf(work: str, name: str, socket_spec: str, user: str = "vigil", mode: str = "0660",
               key: str | None = None) -> str:
    keys = f'[[checks.dkim.key]]\ndomain = "vigil.test"\nselector = "s1"\nfile = "{key}"\n' if key else ""
    path = os.path.join(work, f"{name}.conf")
    with open(path, "w") as f:
        f.write(CONFIG.format(socket=socket_spec, mode=mode, user=user, keys=keys))
    os.chmod(path, 0o644)
    return path


class Daemon:
    def __init__(self, argv: list[str], log_path: str):
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_for(self, text: str, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def status(self) -> dict[str, str]:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_low_port() -> int:
    for port in range(700, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port below 1024")


def unit_settings(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in open(unit):
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def bounding_set(unit: str) -> str:
    """The unit's CapabilityBoundingSet as a setpriv --bounding-set argument."""
    caps = " ".join(unit_settings(unit).get("CapabilityBoundingSet", [])).split()
    return ",".join(["-all"] + ["+" + c.lower().removeprefix("cap_") for c in caps])


def run_with_unit_caps(binary: str, unit: str, args: list[str]) -> list[str]:
    return ["setpriv", f"--bounding-set={bounding_set(unit)}", binary] + args


def message_ok(address: str) -> bool:
    res = mc.send_message(address, "a@example.org", ["b@vigil.test"],
                          b"From: a@example.org\r\nSubject: x\r\n\r\nhello\r\n", client_ip="203.0.113.9")
    return res.action == "ACCEPT"


def t_drop(binary: str, unit: str, work: str, vigil: pwd.struct_passwd) -> None:
    print("-- 1. bind as root, then run as vigil")
    port = free_low_port()
    conf = write_conf(work, "drop", f"inet:{port}@127.0.0.1")
    d = Daemon(run_with_unit_caps(binary, unit, ["-f", "-c", conf]), os.path.join(work, "drop.log"))
    try:
        up = d.wait_for("starting: listening")
        check(up, f"the daemon listens on privileged port {port} under the unit's capability set")
        if not up:
            print(d.log())
            return
        st = d.status()
        uids, gids = st["Uid"].split(), st["Gid"].split()
        check(uids == [str(vigil.pw_uid)] * 4, f"real/effective/saved/fs uid are vigil's ({st['Uid']})")
        check(gids == [str(vigil.pw_gid)] * 4, f"real/effective/saved/fs gid are vigil's ({st['Gid']})")
        groups = st.get("Groups", "").split()
        check("0" not in groups, f"no supplementary group root ({groups})")
        check(int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0,
              f"no capabilities left (CapEff {st['CapEff']}, CapPrm {st['CapPrm']})")
        check(st.get("NoNewPrivs") == "1", f"no_new_privs is set (NoNewPrivs {st.get('NoNewPrivs')})")
        check(message_ok(f"inet:{port}@127.0.0.1"), "a message goes through the privileged port")
    finally:
        d.stop()


def t_refuse_root(binary: str, work: str) -> None:
    print("-- 2. refuses to run as root")
    for user in ("root", ""):
        conf = write_conf(work, f"root{user}", mc.free_inet_address(), user=user)
        done = subprocess.run([binary, "-f", "-c", conf], capture_output=True, text=True, timeout=30)
        check(done.returncode != 0 and "refusing to run as root" in done.stdout + done.stderr,
              f"user = {user!r} without allow_root: exit {done.returncode}, 'refusing to run as root'")


def make_key(work: str, name: str, mode: int, owner: pwd.struct_passwd | None) -> str:
    keydir = os.path.join(work, f"keys-{name}")
    os.mkdir(keydir)
    os.chmod(keydir, 0o755)
    done = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", os.path.join(keydir, "k.pem")],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"openssl genpkey: {done.stderr}")
    path = os.path.join(keydir, "k.pem")
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def t_key_modes(binary: str, work: str) -> None:
    print("-- 3. private key modes")
    for mode, good in ((0o640, False), (0o604, False), (0o600, True)):
        key = make_key(work, f"mode{mode:o}", mode, None)
        conf = write_conf(work, f"key{mode:o}", mc.free_inet_address(), key=key)
        done = subprocess.run([binary, "-t", "-c", conf], capture_output=True, text=True, timeout=30)
        text = done.stdout + done.stderr
        if good:
            check(done.returncode == 0, f"a {mode:04o} key is accepted (vigil-milter -t exit {done.returncode})")
        else:
            check(done.returncode != 0 and "readable by group or others" in text,
                  f"a {mode:04o} key is refused: exit {done.returncode}, {text.strip().splitlines()[:1]}")


def t_key_owner_reload(binary: str, unit: str, work: str, vigil: pwd.struct_passwd) -> None:
    print("-- 4. key ownership, start as root and reload as vigil, under the unit's capabilities")
    root = pwd.getpwuid(0)
    for owner, reload_ok in ((vigil, True), (root, False)):
        key = make_key(work, f"owner-{owner.pw_name}", 0o600, owner)
        address = mc.free_inet_address()
        conf = write_conf(work, f"owner-{owner.pw_name}", address, key=key)
        d = Daemon(run_with_unit_caps(binary, unit, ["-f", "-c", conf]), os.path.join(work, f"owner-{owner.pw_name}.log"))
        try:
            up = d.wait_for("starting: listening")
            check(up, f"key owned by {owner.pw_name} (0600): read at start as root")
            if not up:
                print(d.log())
                continue
            d.proc.send_signal(signal.SIGUSR1)
            if reload_ok:
                check(d.wait_for("reloaded configuration", 10), f"key owned by {owner.pw_name}: SIGUSR1 reload re-reads it")
            else:
                got = d.wait_for("keeping the running configuration", 10)
                check(got and "cannot open key file" in d.log(),
                      f"key owned by root: the reload (as vigil) cannot read it, says so and keeps the old config")
            check(message_ok(address), f"key owned by {owner.pw_name}: still serving after the reload")
        finally:
            d.stop()


def t_socket_mode(binary: str, work: str, vigil: pwd.struct_passwd) -> None:
    print("-- 5. unix socket mode")
    sockdir = os.path.join(work, "sock")
    os.mkdir(sockdir)
    os.chmod(sockdir, 0o755)
    path = os.path.join(sockdir, "m.sock")
    conf = write_conf(work, "unix", f"unix:{path}", mode="0600")
    d = Daemon([binary, "-f", "-c", conf], os.path.join(work, "unix.log"))
    try:
        if not check(d.wait_for("starting: listening"), "the daemon starts on a unix socket"):
            print(d.log())
            return
        st = os.stat(path)
        check(stat.S_IMODE(st.st_mode) == 0o600, f"socket_mode 0600 gives mode {oct(stat.S_IMODE(st.st_mode))}")
        check(st.st_uid == vigil.pw_uid, f"the socket belongs to vigil (uid {st.st_uid})")
        check(message_ok(f"unix:{path}"), "a message goes through the unix socket")
    finally:
        d.stop()


def t_unit(binary: str, unit: str, work: str) -> None:
    print("-- 6. the systemd unit")
    s = unit_settings(unit)
    check(s.get("NoNewPrivileges") == ["yes"], f"NoNewPrivileges=yes ({s.get('NoNewPrivileges')})")
    check(s.get("ProtectSystem") == ["strict"], f"ProtectSystem=strict ({s.get('ProtectSystem')})")
    check(s.get("PrivateTmp") == ["yes"], f"PrivateTmp=yes ({s.get('PrivateTmp')})")
    fams = " ".join(s.get("RestrictAddressFamilies", [])).split()
    check(sorted(fams) == ["AF_INET", "AF_INET6", "AF_UNIX"], f"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 ({fams})")
    rw = " ".join(s.get("ReadWritePaths", [])).split()
    check(sorted(rw) == ["-/var/spool/postfix/vigil", "/run/vigil", "/var/lib/vigil"],
          f"ReadWritePaths only /run/vigil, /var/lib/vigil and the optional Postfix socket directory ({rw})")
    if shutil.which("systemd-analyze") is None:
        print("note  systemd-analyze not installed: verify/security not run")
        return
    copy = os.path.join(work, os.path.basename(unit))
    with open(unit) as f, open(copy, "w") as out:
        out.write(f.read().replace("/usr/local/sbin/vigil-milter", binary))
    done = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, text=True, timeout=60)
    check(done.returncode == 0 and not done.stderr.strip(), f"systemd-analyze verify: exit {done.returncode} {done.stderr.strip()!r}")
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes", copy], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    check(m is not None and float(m.group(1)) <= 3.0,
          f"systemd-analyze security: exposure {m.group(1) if m else '?'} (at most 3.0)")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    binary, unit = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if os.geteuid() != 0:
        print("skipped: needs root (the daemon starts as root and drops privileges)")
        return 77
    try:
        vigil = pwd.getpwnam("vigil")
    except KeyError:
        print("skipped: no user 'vigil' (scripts/bootstrap.sh creates it)")
        return 77
    grp.getgrgid(vigil.pw_gid)
    work = tempfile.mkdtemp(prefix="vigil-priv-")
    os.chmod(work, 0o755)
    started = time.monotonic()
    try:
        for t, args in ((t_drop, (binary, unit, work, vigil)), (t_refuse_root, (binary, work)),
                        (t_key_modes, (binary, work)), (t_key_owner_reload, (binary, unit, work, vigil)),
                        (t_socket_mode, (binary, work, vigil)), (t_unit, (binary, unit, work))):
            try:
                t(*args)
            except Exception as e:  # noqa: BLE001
                check(False, f"{t.__name__} raised {type(e).__name__}: {e}")
    finally:
        if failures:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failed, {time.monotonic() - started:.1f} s")
    for f in failures:
        print(f"FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
