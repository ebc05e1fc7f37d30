#!/usr/bin/env python3
"""A private Postfix reaching vigil-milter over a unix socket, set up the way the README says.

The socket lives in a directory of its own under Postfix's queue directory (owner vigil, group
postfix, mode 0750), is created with `socket_mode = "0660"` and `socket_group = "postfix"`, and
main.cf names it relative to the queue directory (`unix:vigil/vigil.sock`, which also works for a
chrooted smtpd). Checks: the socket's owner, group and mode; a clean message delivered with our
Authentication-Results; GTUBE refused after DATA; an access rule's refusal at RCPT; the decision lines.
Then again without the access rule, where nothing can refuse before DATA and Vigil lets Postfix go on
without waiting for its RCPT answer: a message to two recipients delivered, GTUBE still refused.
Last, the same socket path with smtpd chrooted in the queue directory (Debian's default master.cf):
smtpd is seen running in the jail, mail is delivered with our header and GTUBE refused.

usage: postfix_unix_socket.py VIGIL_MILTER_BINARY
Needs root (Postfix's master runs as root) and the users vigil and postfix. Exit 77 = skipped.
"""
import grp
import os
import pwd
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
import postfix_harness  # noqa: E402
from postfix_e2e import AUTHSERV, GTUBE, check, failures, message  # noqa: E402

CONFIG = """
[milter]
socket = "unix:{socket}"
socket_mode = "0660"
socket_group = "postfix"
user = "vigil"
timeout = 30

[server]
hostname = "{authserv}"
authserv_id = "{authserv}"
trusted_networks = ["192.0.2.0/24"]

[log]
format = "text"

[[checks.access.rule]]
match = "rcpt"
pattern = "blocked@vigil.test"
action = "reject"
reply = "550 5.1.1 No such user here"
"""

def delivered_with_our_header(pf, r, subject, count):
    """The message was accepted and is the count-th delivered, carrying our Authentication-Results."""
    check(r.ok and all(rep.code == 250 for _, rep in r.rcpts), f"{subject}: accepted ({r.data})")
    m = next((d for d in pf.wait_delivered(count) if subject.encode() in d), None)
    check(m is not None and f"Authentication-Results: {AUTHSERV};".encode() in m,
          f"{subject}: delivered with our Authentication-Results")


def start_milter(milter_bin, conf, log_path):
    with open(log_path, "wb") as log:
        milter = subprocess.Popen([milter_bin, "-f", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    wait_started(milter, log_path)
    return milter


def socket_dir(pf, vigil, postfix):
    """The README's set-up: a directory of its own under the queue directory, vigil:postfix 0750."""
    sockdir = os.path.join(pf.queue_dir, "vigil")
    os.makedirs(sockdir)
    os.chown(sockdir, vigil.pw_uid, postfix.gr_gid)
    os.chmod(sockdir, 0o750)
    return os.path.join(sockdir, "vigil.sock")


def chroot_of_smtpd(pf):
    """The root directories of this instance's smtpd processes (an idle smtpd stays after a session)."""
    roots = set()
    for pid in postfix_harness._instance_pids(pf.config_dir, pf.master_pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "smtpd":
                    roots.add(os.readlink(f"/proc/{pid}/root"))
        except OSError:
            pass
    return roots


def wait_started(milter, log_path):
    deadline = time.time() + 15
    while time.time() < deadline and milter.poll() is None:
        with open(log_path, errors="replace") as f:
            if "starting: listening" in f.read():
                return
        time.sleep(0.05)
    raise RuntimeError(f"vigil-milter did not start (status {milter.poll()})")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    if os.geteuid() != 0:
        print("SKIP: needs root (Postfix's master runs as root)")
        return 77
    try:
        vigil, postfix = pwd.getpwnam("vigil"), grp.getgrnam("postfix")
    except KeyError as e:
        print(f"SKIP: needs the users vigil and postfix ({e})")
        return 77
    milter_bin = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="vigil-unix-")
    os.chmod(work, 0o755)
    pf = postfix_harness.PostfixInstance(os.path.join(work, "postfix"), milter="unix:vigil/vigil.sock",
                                         quick_start=True)
    pf.start()  # first: the harness sets up the queue directory afresh
    milter = None
    log_path = os.path.join(work, "milter.log")
    try:
        sock = socket_dir(pf, vigil, postfix)
        conf = os.path.join(work, "vigil.conf")
        with open(conf, "w") as f:
            f.write(CONFIG.format(socket=sock, authserv=AUTHSERV))
        os.chmod(conf, 0o644)
        milter = start_milter(milter_bin, conf, log_path)
        st = os.stat(sock)
        check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == vigil.pw_uid
              and st.st_gid == postfix.gr_gid,
              f"socket vigil:postfix 0660 (uid {st.st_uid}, gid {st.st_gid}, mode {oct(stat.S_IMODE(st.st_mode))})")

        r = pf.send("sender@example.org", ["rcpt@vigil.test"], message("over the unix socket"))
        delivered_with_our_header(pf, r, "over the unix socket", 1)

        r = pf.send("sender@example.org", ["rcpt@vigil.test"], message("gtube", body=GTUBE + b"\r\n"))
        check(r.failed_stage == "data" and r.data is not None and r.data.code == 554,
              f"GTUBE refused after DATA with 554 ({r.data})")

        r = pf.send("sender@example.org", ["blocked@vigil.test", "rcpt2@vigil.test"], message("one blocked"))
        codes = {a: rep.code for a, rep in r.rcpts}
        check(codes.get("blocked@vigil.test") == 550 and codes.get("rcpt2@vigil.test") == 250 and r.ok,
              f"the access rule refuses one recipient at RCPT, the other is accepted ({codes})")

        time.sleep(0.3)
        with open(log_path, errors="replace") as f:
            text = f.read()
        check(text.count(" inbound action=") == 3 and "action=reject" in text,
              "one decision line per message that reached end of message")

        # Without a rule that refuses before DATA, Vigil does not make Postfix wait at RCPT either.
        milter.terminate()
        check(milter.wait(timeout=10) == 0, "vigil-milter stopped cleanly for the second configuration")
        with open(conf, "w") as f:
            f.write(CONFIG.split("[[checks.access.rule]]")[0].format(socket=sock, authserv=AUTHSERV))
        milter = start_milter(milter_bin, conf, log_path)
        r = pf.send("sender@example.org", ["rcpt@vigil.test", "rcpt2@vigil.test"], message("rcpt not answered"))
        delivered_with_our_header(pf, r, "rcpt not answered", 3)
        r = pf.send("sender@example.org", ["rcpt@vigil.test"], message("gtube again", body=GTUBE + b"\r\n"))
        check(r.failed_stage == "data" and r.data is not None and r.data.code == 554,
              f"GTUBE still refused after DATA with 554 ({r.data})")

        # smtpd chrooted in the queue directory, as Debian runs it: main.cf's relative
        # unix:vigil/vigil.sock is then looked up inside the jail, which is the queue directory.
        milter.terminate()
        check(milter.wait(timeout=10) == 0, "vigil-milter stopped cleanly before the chroot pass")
        pf.stop()
        pf = postfix_harness.PostfixInstance(os.path.join(work, "postfix-chroot"), milter="unix:vigil/vigil.sock",
                                             quick_start=True, smtpd_chroot=True)
        pf.start()
        sock = socket_dir(pf, vigil, postfix)
        with open(conf, "w") as f:
            f.write(CONFIG.split("[[checks.access.rule]]")[0].format(socket=sock, authserv=AUTHSERV))
        milter = start_milter(milter_bin, conf, log_path)
        r = pf.send("sender@example.org", ["rcpt@vigil.test"], message("chrooted smtpd"))
        delivered_with_our_header(pf, r, "chrooted smtpd", 1)
        roots = chroot_of_smtpd(pf)
        check(roots == {pf.queue_dir}, f"smtpd ran chrooted in the queue directory ({roots})")
        r = pf.send("sender@example.org", ["rcpt@vigil.test"], message("gtube chrooted", body=GTUBE + b"\r\n"))
        check(r.failed_stage == "data" and r.data is not None and r.data.code == 554,
              f"GTUBE refused after DATA through the chrooted smtpd ({r.data})")
    finally:
        if milter is not None and milter.poll() is None:
            milter.terminate()
            milter.wait(timeout=10)
        pf.stop()
    check(milter is not None and milter.returncode == 0,
          f"vigil-milter stopped cleanly (status {milter.returncode if milter else None})")
    if failures:
        print(f"\n{len(failures)} check(s) failed; kept in {work}")
        with open(log_path, errors="replace") as f:
            print("".join(f.readlines()[-30:]))
        return 1
    subprocess.run(["rm", "-rf", work])
    print("all unix-socket checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
