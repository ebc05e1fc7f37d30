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

    pytest test/integration/postfix_unix_socket.py [--vigil-milter PATH]

Needs root (Postfix's master runs as root) and the users vigil and postfix: skipped otherwise.
"""
import grp
import os
import pwd
import stat
import time

import pytest

import postfix_harness
import vigil_fixtures as vf
from postfix_e2e import message
from vigil_fixtures import AUTHSERV, GTUBE


def _users_missing():
    try:
        pwd.getpwnam("vigil")
        grp.getgrnam("postfix")
    except KeyError as e:
        return f"needs the users vigil and postfix ({e})"
    return None


pytestmark = [vf.needs_postfix, pytest.mark.skipif(_users_missing() is not None, reason=str(_users_missing()))]

CONFIG = """
[milter]
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
""".format(authserv=AUTHSERV)

ACCESS_RULE = """
[[checks.access.rule]]
match = "rcpt"
pattern = "blocked@vigil.test"
action = "reject"
reply = "550 5.1.1 No such user here"
"""


def socket_dir(pf):
    """The README's set-up: a directory of its own under the queue directory, vigil:postfix 0750."""
    sockdir = os.path.join(pf.queue_dir, "vigil")
    os.makedirs(sockdir)
    os.chown(sockdir, pwd.getpwnam("vigil").pw_uid, grp.getgrnam("postfix").gr_gid)
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


def assert_delivered_with_our_header(pf, r, subject):
    """The message was accepted and delivered, carrying our Authentication-Results."""
    assert r.ok and all(rep.code == 250 for _, rep in r.rcpts), f"{subject}: accepted ({r.data})"
    m = pf.wait_message(subject.encode())
    assert m is not None and f"Authentication-Results: {AUTHSERV};".encode() in m, \
        f"{subject}: delivered with our Authentication-Results"


def assert_gtube_refused(pf, subject, what):
    r = pf.send("sender@example.org", ["rcpt@vigil.test"], message(subject, body=GTUBE + b"\r\n"))
    assert r.failed_stage == "data" and r.data is not None and r.data.code == 554, f"{what} ({r.data})"


class Mx:
    def __init__(self, pf, milter):
        self.pf, self.milter = pf, milter
        self.sent = {}

    def send(self, subject, rcpts, body=b"Hello.\r\n"):
        """Sends the message with this subject once; later calls return the first result."""
        if subject not in self.sent:
            self.sent[subject] = self.pf.send("sender@example.org", rcpts, message(subject, body=body))
        return self.sent[subject]


@pytest.fixture(scope="module")
def postfix(module_launch):
    """Postfix for the first two configurations: the harness sets up its queue directory afresh, so
    it starts first and the milter's socket directory is made in it afterwards."""
    pf = module_launch.postfix("postfix", milter="unix:vigil/vigil.sock", quick_start=True)
    return pf, socket_dir(pf)


class TestWithAccessRule:
    """The README's set-up with a rule that refuses a recipient at RCPT."""

    @pytest.fixture(scope="class")
    def mx(self, postfix, class_launch):
        pf, sock = postfix
        return Mx(pf, class_launch.milter("rule", CONFIG + ACCESS_RULE, socket=f"unix:{sock}"))

    def test_socket_owner_group_mode(self, mx):
        st = os.stat(mx.milter.socket_path)
        vigil, postfix = pwd.getpwnam("vigil"), grp.getgrnam("postfix")
        assert (stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == vigil.pw_uid
                and st.st_gid == postfix.gr_gid), \
            f"socket vigil:postfix 0660 (uid {st.st_uid}, gid {st.st_gid}, mode {oct(stat.S_IMODE(st.st_mode))})"

    def test_clean_message_delivered(self, mx):
        r = mx.send("over the unix socket", ["rcpt@vigil.test"])
        assert_delivered_with_our_header(mx.pf, r, "over the unix socket")

    def test_gtube_refused(self, mx):
        r = mx.send("gtube", ["rcpt@vigil.test"], body=GTUBE + b"\r\n")
        assert r.failed_stage == "data" and r.data is not None and r.data.code == 554, \
            f"GTUBE refused after DATA with 554 ({r.data})"

    def test_rule_refuses_one_recipient(self, mx):
        r = mx.send("one blocked", ["blocked@vigil.test", "rcpt2@vigil.test"])
        codes = {a: rep.code for a, rep in r.rcpts}
        assert codes.get("blocked@vigil.test") == 550 and codes.get("rcpt2@vigil.test") == 250 and r.ok, \
            f"the access rule refuses one recipient at RCPT, the other is accepted ({codes})"

    def test_one_decision_line_per_message(self, mx):
        """One decision line per message that reached end of message (the three above)."""
        mx.send("over the unix socket", ["rcpt@vigil.test"])
        mx.send("gtube", ["rcpt@vigil.test"], body=GTUBE + b"\r\n")
        mx.send("one blocked", ["blocked@vigil.test", "rcpt2@vigil.test"])
        time.sleep(0.3)
        text = mx.milter.log()
        assert text.count(" inbound action=") == 3 and "action=reject" in text, \
            "one decision line per message that reached end of message"

    def test_stops_cleanly(self, mx):
        rc = mx.milter.stop()
        assert rc == 0, f"vigil-milter stopped cleanly for the second configuration (status {rc})"


class TestNothingRefusesBeforeData:
    """Without a rule that refuses before DATA, Vigil does not make Postfix wait at RCPT either."""

    @pytest.fixture(scope="class")
    def mx(self, postfix, class_launch):
        pf, sock = postfix
        return Mx(pf, class_launch.milter("norule", CONFIG, socket=f"unix:{sock}"))

    def test_two_recipients_delivered(self, mx):
        r = mx.send("rcpt not answered", ["rcpt@vigil.test", "rcpt2@vigil.test"])
        assert_delivered_with_our_header(mx.pf, r, "rcpt not answered")

    def test_gtube_still_refused(self, mx):
        assert_gtube_refused(mx.pf, "gtube again", "GTUBE still refused after DATA with 554")

    def test_stops_cleanly(self, mx):
        rc = mx.milter.stop()
        assert rc == 0, f"vigil-milter stopped cleanly before the chroot pass (status {rc})"


class TestChrootedSmtpd:
    """smtpd chrooted in the queue directory, as Debian runs it: main.cf's relative
    unix:vigil/vigil.sock is then looked up inside the jail, which is the queue directory."""

    @pytest.fixture(scope="class")
    def mx(self, class_launch):
        pf = class_launch.postfix("postfix-chroot", milter="unix:vigil/vigil.sock", quick_start=True,
                                  smtpd_chroot=True)
        return Mx(pf, class_launch.milter("chroot", CONFIG, socket=f"unix:{socket_dir(pf)}"))

    def test_delivered_through_chrooted_smtpd(self, mx):
        r = mx.send("chrooted smtpd", ["rcpt@vigil.test"])
        assert_delivered_with_our_header(mx.pf, r, "chrooted smtpd")
        roots = chroot_of_smtpd(mx.pf)
        assert roots == {mx.pf.queue_dir}, f"smtpd ran chrooted in the queue directory ({roots})"

    def test_gtube_refused(self, mx):
        assert_gtube_refused(mx.pf, "gtube chrooted", "GTUBE refused after DATA through the chrooted smtpd")

    def test_stops_cleanly(self, mx):
        rc = mx.milter.stop()
        assert rc == 0, f"vigil-milter stopped cleanly (status {rc})"
