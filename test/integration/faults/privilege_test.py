"""Least privilege, verified on the real daemon and the shipped systemd unit.

    pytest test/integration/faults/privilege_test.py [--vigil-milter PATH]

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
The unit is contrib/systemd/vigil-milter.service. Needs root and the user `vigil` (scripts/bootstrap.sh
creates it): skipped otherwise. About 10 s.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import stat
import subprocess

import pytest

import milter_client as mc
import vigil_fixtures as vf


def _why_skipped():
    if os.geteuid() != 0:
        return "needs root (the daemon starts as root and drops privileges)"
    try:
        pwd.getpwnam("vigil")
    except KeyError:
        return "no user 'vigil' (scripts/bootstrap.sh creates it)"
    return None


pytestmark = pytest.mark.skipif(_why_skipped() is not None, reason=str(_why_skipped()))

UNIT = os.path.join(vf.REPO, "contrib", "systemd", "vigil-milter.service")

CONFIG = """\
[milter]
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


def config(user: str = "vigil", mode: str = "0660", key: str | None = None) -> str:
    keys = f'[[checks.dkim.key]]\ndomain = "vigil.test"\nselector = "s1"\nfile = "{key}"\n' if key else ""
    return CONFIG.format(mode=mode, user=user, keys=keys)


def write_conf(work: str, name: str, user: str = "vigil", key: str | None = None) -> str:
    """A config file for a vigil-milter run that is not a daemon (-t, or refused at start)."""
    return vf.write(os.path.join(work, f"{name}.conf"),
                    vf.milter_config(config(user=user, key=key), mc.free_inet_address(), user, False), 0o644)


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


def unit_caps() -> list[str]:
    """setpriv with the unit's capability bounding set: the command prefix to run the daemon under."""
    return ["setpriv", f"--bounding-set={bounding_set(UNIT)}"]


def message_ok(address: str) -> bool:
    res = mc.send_message(address, "a@example.org", ["b@vigil.test"],
                          b"From: a@example.org\r\nSubject: x\r\n\r\nhello\r\n", client_ip="203.0.113.9")
    return res.action == "ACCEPT"


def start(launch, name: str, text: str, **kw) -> tuple[vf.Milter, bool]:
    """(the daemon, whether it came up: logged "starting: listening")."""
    m = launch.milter(name, text, start=False, **kw)
    try:
        m.start()
        return m, True
    except RuntimeError as e:
        print(e)
        return m, False


@pytest.fixture(scope="module")
def vigil():
    return pwd.getpwnam("vigil")


def test_bind_as_root_then_run_as_vigil(launch, vigil):
    """1. bind a privileged port as root, then run as vigil."""
    port = free_low_port()
    m, up = start(launch, "drop", config(), socket=f"inet:{port}@127.0.0.1", prefix=unit_caps())
    assert up, f"the daemon listens on privileged port {port} under the unit's capability set"
    st = m.status()
    uids, gids = st["Uid"].split(), st["Gid"].split()
    assert uids == [str(vigil.pw_uid)] * 4, f"real/effective/saved/fs uid are vigil's ({st['Uid']})"
    assert gids == [str(vigil.pw_gid)] * 4, f"real/effective/saved/fs gid are vigil's ({st['Gid']})"
    groups = st.get("Groups", "").split()
    assert "0" not in groups, f"no supplementary group root ({groups})"
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, \
        f"no capabilities left (CapEff {st['CapEff']}, CapPrm {st['CapPrm']})"
    assert st.get("NoNewPrivs") == "1", f"no_new_privs is set (NoNewPrivs {st.get('NoNewPrivs')})"
    assert message_ok(f"inet:{port}@127.0.0.1"), "a message goes through the privileged port"


@pytest.mark.parametrize("user", ["root", ""], ids=["root", "empty"])
def test_refuses_to_run_as_root(binaries, workdir, user):
    """2. [milter] user = "root" (or none) without allow_root: exit 1."""
    conf = write_conf(workdir, f"root{user}", user=user)
    done = subprocess.run([binaries.milter, "-f", "-c", conf], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "refusing to run as root" in done.stdout + done.stderr, \
        f"user = {user!r} without allow_root: exit {done.returncode}, 'refusing to run as root'"


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


@pytest.mark.parametrize("mode,good", [(0o640, False), (0o604, False), (0o600, True)], ids=["0640", "0604", "0600"])
def test_private_key_mode(binaries, workdir, mode, good):
    """3. DKIM signing keys that group or others may read are refused, 0600 is accepted."""
    key = make_key(workdir, f"mode{mode:o}", mode, None)
    conf = write_conf(workdir, f"key{mode:o}", key=key)
    done = subprocess.run([binaries.milter, "-t", "-c", conf], capture_output=True, text=True, timeout=30)
    text = done.stdout + done.stderr
    if good:
        assert done.returncode == 0, f"a {mode:04o} key is accepted (vigil-milter -t exit {done.returncode})"
    else:
        assert done.returncode != 0 and "readable by group or others" in text, \
            f"a {mode:04o} key is refused: exit {done.returncode}, {text.strip().splitlines()[:1]}"


@pytest.mark.parametrize("owner_name,reload_ok", [("vigil", True), ("root", False)])
def test_key_owner_and_reload(launch, workdir, owner_name, reload_ok):
    """4. Under the unit's capabilities, a 0600 key is read at start (as root) either way, and again on
    SIGUSR1 (as vigil) only when vigil owns it: else the reload fails with a clear line and the old
    configuration keeps serving."""
    owner = pwd.getpwnam(owner_name)
    key = make_key(workdir, f"owner-{owner.pw_name}", 0o600, owner)
    m, up = start(launch, f"owner-{owner.pw_name}", config(key=key), prefix=unit_caps())
    assert up, f"key owned by {owner.pw_name} (0600): read at start as root"
    outcome = m.reload()
    if reload_ok:
        assert outcome == "reloaded", f"key owned by {owner.pw_name}: SIGUSR1 reload re-reads it"
    else:
        assert outcome == "kept" and "cannot open key file" in m.log(), \
            "key owned by root: the reload (as vigil) cannot read it, says so and keeps the old config"
    assert message_ok(m.address), f"key owned by {owner.pw_name}: still serving after the reload"


def test_unix_socket_mode(launch, workdir, vigil):
    """5. A unix socket gets the configured socket_mode and belongs to the milter's user."""
    sockdir = os.path.join(workdir, "sock")
    os.mkdir(sockdir)
    os.chmod(sockdir, 0o755)
    path = os.path.join(sockdir, "m.sock")
    m, up = start(launch, "unix", config(mode="0600"), socket=f"unix:{path}")
    assert up, "the daemon starts on a unix socket"
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600, f"socket_mode 0600 gives mode {oct(stat.S_IMODE(st.st_mode))}"
    assert st.st_uid == vigil.pw_uid, f"the socket belongs to vigil (uid {st.st_uid})"
    assert message_ok(f"unix:{path}"), "a message goes through the unix socket"


def test_systemd_unit(binaries, workdir):
    """6. The unit's settings; `systemd-analyze verify` and `security --offline=yes` on a copy of it
    that names the binary under test."""
    binary, unit, work = binaries.milter, UNIT, workdir
    s = unit_settings(unit)
    assert s.get("NoNewPrivileges") == ["yes"], f"NoNewPrivileges=yes ({s.get('NoNewPrivileges')})"
    assert s.get("ProtectSystem") == ["strict"], f"ProtectSystem=strict ({s.get('ProtectSystem')})"
    assert s.get("PrivateTmp") == ["yes"], f"PrivateTmp=yes ({s.get('PrivateTmp')})"
    fams = " ".join(s.get("RestrictAddressFamilies", [])).split()
    assert sorted(fams) == ["AF_INET", "AF_INET6", "AF_UNIX"], \
        f"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 ({fams})"
    rw = " ".join(s.get("ReadWritePaths", [])).split()
    assert sorted(rw) == ["-/var/spool/postfix/vigil", "/run/vigil", "/var/lib/vigil"], \
        f"ReadWritePaths only /run/vigil, /var/lib/vigil and the optional Postfix socket directory ({rw})"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed: verify/security not run")
    copy = os.path.join(work, os.path.basename(unit))
    with open(unit) as f, open(copy, "w") as out:
        out.write(f.read().replace("/usr/local/sbin/vigil-milter", binary))
    done = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), \
        f"systemd-analyze verify: exit {done.returncode} {done.stderr.strip()!r}"
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes", copy], capture_output=True, text=True,
                          timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert m is not None and float(m.group(1)) <= 3.0, \
        f"systemd-analyze security: exposure {m.group(1) if m else '?'} (at most 3.0)"
