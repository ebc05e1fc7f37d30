"""A private, throwaway Postfix instance for Vigil's end-to-end milter tests.

Usage (from another test script)::

    sys.path.insert(0, os.path.join(REPO, "test", "support"))
    import postfix_harness

    with postfix_harness.PostfixInstance(workdir, milter="inet:127.0.0.1:8891") as pf:
        r = pf.send("alice@example.org", ["bob@vigil.test"], raw_message_bytes)
        assert r.ok, r
        [msg] = pf.wait_delivered(1)
        assert postfix_harness.strip_added_headers(msg) == raw_message_bytes.replace(b"\r\n", b"\n")

Python 3.11 standard library only.  Must run as root (Postfix's master is started by
root).  Several instances may run at once: everything lives under ``workdir``
(``etc/`` config_directory, ``spool/`` queue_directory, ``data/`` data_directory,
``mail/inbox/`` Maildir, ``postfix.log``, ``watchdog.log``) and the SMTP port is chosen
per instance.  /etc/postfix and the system instance are never touched.  The self-test
is test/integration/postfix_selftest.py.

API
---
``PostfixInstance(workdir, milter=None, smtp_port=0, extra_main_cf=None, *,
domains=("vigil.test",), extra_master_cf=(), smtpd_options=None, quick_start=False,
smtpd_chroot=False)``
    ``milter``: e.g. ``"inet:127.0.0.1:8891"`` or ``"unix:/path"`` (the socket is
    reached as user postfix); becomes both ``smtpd_milters`` and
    ``non_smtpd_milters``.  ``None``: no milter.
    ``smtp_port``: 0 picks a free port in 20000-32000 on 127.0.0.1 (below the
    ephemeral range; start() retries twice with a new port on "Address already in
    use").
    ``extra_main_cf``: settings that replace the harness's own or are added to
    main.cf (e.g. ``{"milter_command_timeout": "60s"}``; inline tables such as
    ``check_client_access inline:{{127.0.0.1=HOLD}}`` work).
    ``domains`` (extension): virtual mailbox domains; every recipient in them is
    accepted and delivered into the one Maildir ``workdir/mail/inbox/``.  The
    single entry ``"*"`` makes every domain a delivery domain (outbound/signing
    tests sending to e.g. example.com).  Other domains are refused at RCPT with
    "554 5.7.1 <addr>: Relay access denied"; localhost with 550 (local delivery is
    disabled).  Nothing is ever relayed off the machine.
    ``extra_master_cf`` (extension): raw lines appended to master.cf.
    ``smtpd_options`` (extension): ``-o name=value`` on the smtpd listener only.
    ``quick_start`` (extension): the harness creates the queue directories itself
    (owners and modes from Postfix's own /etc/postfix/postfix-files) and makes
    ``postfix start`` skip its check-fatal/check-warn (``quick-start`` file): about
    0.1 s instead of 0.5 s.  Default False: Postfix creates its directories and
    runs its own checks.
    ``smtpd_chroot`` (extension): the smtpd listener runs chrooted in the queue
    directory, as Debian's master.cf has it; the harness copies into its ``etc/``
    the files Debian's postfix service copies into the jail (CHROOT_FILES below).
    Every other service stays unchrooted.

Methods
    ``start(timeout=30)``  writes main.cf/master.cf, runs ``postfix -c DIR start``
        (``master -w``: fails if the master cannot initialise, e.g. bind error) and
        waits until this instance's master holds a socket LISTENing on
        127.0.0.1:port (/proc/net/tcp + /proc/PID/fd).  It never connects to the
        port: an SMTP connection would already contact the milter.  Also starts
        the watchdog (see stop()).
    ``stop()``  ``postfix -c DIR stop`` (SIGTERM to the master, which terminates
        its children; SIGTERM sent directly if the command fails), waits for the
        master, then SIGKILLs any process still belonging to the instance: same
        session as the master, or ``MAIL_CONFIG`` = this config directory (Postfix
        passes it to every child).  Never by process name.  Idempotent; also run by
        ``__exit__`` and ``atexit``.  A watchdog process (this file with
        ``--watchdog``, in its own session) stops the instance when the test process
        dies without stop(), including SIGTERM/SIGKILL (e.g. a ctest timeout).
    ``running()`` -> bool.
    ``send(mail_from, rcpts, data, helo="client.example.net", timeout=30, *,
        xclient=None, mail_options=(), rcpt_options=())`` -> SmtpResult
        smtplib to 127.0.0.1:port for the commands, the message written raw: only
        dot-stuffing (a '.' at the start of the data or after any LF is doubled,
        since Postfix splits lines at LF) and a CRLF appended if ``data`` does not
        end with one.  (smtplib's own data() rewrites bare LF/CR, so it is not
        used.)  ``mail_from=""`` sends ``MAIL FROM:<>``.  ``xclient`` (extension),
        e.g. ``{"ADDR": "192.0.2.7", "NAME": "mail.example.com", "HELO":
        "mail.example.com"}``: XCLIENT after the first EHLO, then EHLO again;
        Postfix gives the milter a new connect event with that name/address
        (``smtpd_authorized_xclient_hosts = 127.0.0.0/8``).  Never raises on a
        4xx/5xx reply, a refused or dropped connection or a timeout: everything is
        recorded in the SmtpResult (code 0 = no reply).
    ``send_swaks(mail_from, rcpts, data, helo="client.example.net", timeout=30)``
        -> SmtpResult  the same through ``swaks --no-data-fixup --suppress-data``
        (the harness dot-stuffs and ends the data; swaks sends it unchanged);
        parsed from swaks' transcript, which is kept in ``raw_output`` with
        ``exit_code``.
    ``sendmail(mail_from, rcpts, data)`` (extension) -> CompletedProcess
        ``sendmail -C DIR -i -f FROM -- RCPTS``: local submission through
        pickup, i.e. what ``non_smtpd_milters`` sees.  cleanup adds Date/Message-ID
        to locally submitted mail, as usual.
    ``delivered(crlf=False)`` -> list[bytes]  every delivered message, oldest first
        (Maildir name order), exactly as virtual(8) wrote it.  Postfix stores mail
        with LF line ends, so CRLF comes back as LF; ``crlf=True`` turns every LF
        into CRLF (the exact inverse when the sent message used CRLF throughout).
        Delivery prepends ``Return-Path:``, ``X-Original-To:``, ``Delivered-To:``
        and Postfix's ``Received:``; ``strip_added_headers()`` removes exactly those.
        One file per recipient.
    ``delivered_to(rcpt, crlf=False)`` (extension) -> list[bytes]  messages whose
        Delivered-To is ``rcpt``.
    ``wait_delivered(count, timeout=30, crlf=False)`` -> list[bytes]  waits for at
        least ``count`` delivered messages; TimeoutError with the queue state and
        the log tail otherwise.
    ``wait_message(pattern, timeout=30, crlf=False)`` (extension) -> bytes | None
        the first delivered message in which the regular expression ``pattern`` is
        found (re.M, on the LF text), waiting up to ``timeout`` s; None if none came.
    ``hold_queue()`` -> list[str]  queue ids in the hold queue (quarantine).
    ``queue_ids()`` -> dict[str, list[str]]  maildrop, incoming, active, deferred,
        hold, corrupt (read from the queue directories).
    ``queued_message(queue_id)`` (extension) -> bytes  header + body of a queued
        (e.g. held) message, ``postcat -c DIR -h -b -q ID`` (LF line ends).
    ``release(queue_id)`` (extension)  ``postsuper -c DIR -H ID`` then flush().
    ``flush()``  ``postfix -c DIR flush``.
    ``log_text()`` -> str  Postfix's own log (``maillog_file`` = workdir/postfix.log,
        written by postlogd; lines can lag a few ms behind an SMTP reply).
    ``wait_log(regex, timeout=10)`` (extension) -> re.Match.
    ``postconf(name)`` (extension) -> str  effective value (``postconf -c DIR -h``).

Module level: ``strip_added_headers(msg, myhostname="mx.vigil.test")``,
``parse_swaks_transcript(text)``, ``SmtpResult``/``Reply``, ``HarnessError``.

SmtpResult fields: ``banner, ehlo, xclient, mail, data_cmd, data`` (Reply(code, text)
or None if not reached), ``rcpts`` [(address, Reply)], ``failed_stage`` (None, or
"connect", "ehlo", "xclient", "mail", "rcpt" = no recipient accepted, "data_cmd" =
reply to DATA, "data" = reply after the final dot), ``failed_reply``, ``queue_id``,
``ok`` (250 after the dot), ``transcript``.

Facts found while building this (Debian 12, Postfix 3.7.11, as root)
  * ``postfix -c DIR start|stop|flush|check``, ``postconf -c``, ``postsuper -c``,
    ``postcat -c`` and ``sendmail -C`` all work with a non-default config directory
    without alternate_config_directories / multi_instance_* in /etc/postfix/main.cf.
  * Postfix re-reads a main.cf whose mtime is less than a second old every 0.3 s
    until it "cools down"; a freshly written main.cf made ``postfix start`` take 2-4 s.
    The harness back-dates the files it writes (start then takes ~0.5 s).
  * The daemonised master keeps the stdout/stderr of ``postfix start``: reading them
    through pipes waits for it, so the output goes to temporary files.
  * virtual(8) refuses regexp results with $1 substitution ("regular expression
    substitution is not allowed"), hence one Maildir for all recipients.
  * With ``smtpd_peername_lookup = no`` the milter's connect callback gets the
    hostname ``[127.0.0.1]`` (Postfix sends an unknown name as [address]).
  * A dead milter (milter_default_action = tempfail) gives ``451 4.7.1 Service
    unavailable - try again later`` at MAIL FROM; the banner is still 220.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import pwd
import grp
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import Iterable, Mapping, Sequence

POSTFIX = shutil.which("postfix", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/postfix"
POSTSUPER = shutil.which("postsuper", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/postsuper"
POSTCAT = shutil.which("postcat", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/postcat"
POSTCONF = shutil.which("postconf", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/postconf"
SWAKS = shutil.which("swaks") or "/usr/bin/swaks"

HOST = "127.0.0.1"
MAILDIR_NAME = "inbox"   # workdir/mail/inbox/{new,cur,tmp}
POSTFIX_FILES = "/etc/postfix/postfix-files"

# The queues that Postfix keeps as directories under queue_directory.
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt")


class HarnessError(RuntimeError):
    """The harness could not set up, start or query the instance."""


# --------------------------------------------------------------------------------------
# SMTP results
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Reply:
    code: int          # 0 when no reply was received (connection refused/closed, timeout)
    text: str          # reply text, lines joined with "\n"; or the error description

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclasses.dataclass
class SmtpResult:
    """What happened in one SMTP transaction.

    ``failed_stage`` is None when the message was accepted (250 after the final dot),
    otherwise one of: "connect" (banner), "ehlo", "xclient", "mail", "rcpt" (no
    recipient accepted), "data_cmd" (reply to the DATA command), "data" (reply after the
    final dot).  Individual rejected recipients are in ``rcpts`` even when others were
    accepted.  Replies for stages never reached are None.
    """
    banner: Reply | None = None
    ehlo: Reply | None = None
    xclient: Reply | None = None
    mail: Reply | None = None
    rcpts: list[tuple[str, Reply]] = dataclasses.field(default_factory=list)
    data_cmd: Reply | None = None
    data: Reply | None = None
    failed_stage: str | None = None
    queue_id: str | None = None
    transcript: list[str] = dataclasses.field(default_factory=list)
    # send_swaks only
    exit_code: int | None = None
    raw_output: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_stage is None and self.data is not None and self.data.code == 250

    @property
    def failed_reply(self) -> Reply | None:
        """The reply of the failed stage (for "rcpt": the last recipient's)."""
        if self.failed_stage is None:
            return None
        if self.failed_stage == "connect":
            return self.banner
        if self.failed_stage == "rcpt":
            return self.rcpts[-1][1] if self.rcpts else None
        return getattr(self, self.failed_stage)

    def __str__(self) -> str:
        parts = [f"failed_stage={self.failed_stage}", f"queue_id={self.queue_id}"]
        for name in ("banner", "ehlo", "xclient", "mail"):
            v = getattr(self, name)
            if v is not None:
                parts.append(f"{name}={v.code}")
        for rcpt, rep in self.rcpts:
            parts.append(f"rcpt[{rcpt}]={rep.code}")
        for name in ("data_cmd", "data"):
            v = getattr(self, name)
            if v is not None:
                parts.append(f"{name}={v}")
        fr = self.failed_reply
        if fr is not None and self.failed_stage not in ("data",):
            parts.append(f"failed_reply={fr}")
        return "SmtpResult(" + ", ".join(parts) + ")"


_QUEUED_AS = re.compile(r"queued as ([0-9A-Za-z]+)")


def _dot_stuff(data: bytes) -> bytes:
    """Bytes to send after DATA: a '.' at the start of the data or of any line is doubled
    (Postfix splits lines at LF, so a '.' after a bare LF is a line start too), CRLF is
    added if the data does not end with it, then the terminating '.' CRLF."""
    stuffed = re.sub(rb"(^|\n)\.", rb"\1..", data)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _reply(code: int, msg: bytes | str) -> Reply:
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return Reply(code, msg)


# --------------------------------------------------------------------------------------
# Process helpers (all through /proc; never by process name)
# --------------------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    # state is the field after the ")" that closes comm; Z = zombie counts as gone
    state = stat.rsplit(b")", 1)[1].split()[0]
    return state not in (b"Z", b"X")


def _proc_session(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[4])  # state ppid pgrp session ...
    except (OSError, IndexError, ValueError):
        return None


def _proc_mail_config(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"MAIL_CONFIG="):
            return os.fsdecode(item[len(b"MAIL_CONFIG="):])
    return None


def _instance_pids(config_dir: str, master_pid: int | None) -> list[int]:
    """Processes of one instance: in the master's session, or with MAIL_CONFIG equal to
    this instance's config directory (Postfix passes MAIL_CONFIG to every child through
    import_environment)."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == me:
            continue
        if master_pid is not None and _proc_session(pid) == master_pid:
            found.append(pid)
        elif _proc_mail_config(pid) == config_dir:
            found.append(pid)
    return found


def _read_master_pid(queue_dir: str) -> int | None:
    try:
        with open(os.path.join(queue_dir, "pid", "master.pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _master_of(config_dir: str, queue_dir: str) -> int | None:
    """The live master pid of this instance, or None."""
    pid = _read_master_pid(queue_dir)
    if pid is None or not _pid_alive(pid):
        return None
    # Guard against pid reuse: the process must belong to this instance.
    if _proc_mail_config(pid) != config_dir:
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return None
        if cwd != queue_dir:
            return None
    return pid


def stop_instance(config_dir: str, queue_dir: str, timeout: float = 10.0) -> list[str]:
    """Stop one instance and kill its leftovers.  Returns notes on what had to be forced."""
    notes: list[str] = []
    master = _master_of(config_dir, queue_dir)
    if master is not None:
        # `postfix stop` sends SIGTERM to the master (postfix-script: kill `sed 1q
        # pid/master.pid`); the master then terminates its children.  If the command
        # fails (e.g. main.cf broken by a test), send the signal ourselves.
        env = {k: v for k, v in os.environ.items() if k != "MAIL_CONFIG"}
        try:
            rc = subprocess.run([POSTFIX, "-c", config_dir, "stop"], env=env, cwd="/",
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=timeout).returncode
        except (OSError, subprocess.TimeoutExpired):
            rc = -1
        if rc != 0:
            notes.append(f"postfix stop failed (exit {rc}); sent SIGTERM to master {master}")
            try:
                os.kill(master, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout / 2
        while _pid_alive(master) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _pid_alive(master):
            notes.append(f"master {master} ignored SIGTERM; killed")
            try:
                os.kill(master, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # Children get SIGTERM from the master; give them a moment, then force.
    deadline = time.monotonic() + timeout / 2
    while True:
        pids = [p for p in _instance_pids(config_dir, master) if _pid_alive(p)]
        if not pids:
            break
        if time.monotonic() >= deadline:
            notes.append(f"killed leftover processes {pids}")
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
            deadline = time.monotonic() + 1.0
            if not [p for p in _instance_pids(config_dir, master) if _pid_alive(p)]:
                break
            continue
        time.sleep(0.02)
    return notes


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------

# Copied into queue_directory/etc for a chrooted smtpd: the list Debian's postfix service
# (/usr/lib/postfix/configure-instance.sh) copies into the jail.
CHROOT_FILES = ("/etc/localtime", "/etc/services", "/etc/resolv.conf", "/etc/hosts", "/etc/host.conf",
                "/etc/nsswitch.conf")

# master.cf written from scratch: Debian's services, chroot off everywhere (a temp queue
# has no jail files), no port-25 "smtp inet" listener and no tlsmgr (no TLS in tests).
# Columns: service type private unpriv chroot wakeup maxproc command
_MASTER_CF_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _main_cf_settings(inst: "PostfixInstance") -> list[tuple[str, str, str]]:
    """(name, value, why) in the order written.  extra_main_cf comes after these."""
    pw = pwd.getpwnam("postfix")
    W = inst.workdir
    s: list[tuple[str, str, str]] = [
        ("compatibility_level", "3.6",
         "the Debian 12 level; avoids backwards-compatibility warnings in the log"),
        ("queue_directory", inst.queue_dir, "private queue; Postfix creates its subdirectories (the harness does with quick_start)"),
        ("data_directory", inst.data_dir, "must be owned by postfix (master.lock)"),
        ("mail_owner", "postfix", ""),
        ("setgid_group", "postdrop", ""),
        # ---- identity and addressing
        ("myhostname", "mx.vigil.test", ""),
        ("mydomain", "localdomain",
         "not a recipient domain: nothing in vigil.test (or any test domain) is local"),
        ("myorigin", "$myhostname", ""),
        ("mydestination", "" if inst.domains == ("*",) else "localhost",
         "local(8) domains; must not overlap the virtual domains (with domains=('*',) "
         "there are none: even localhost is a virtual domain then)"),
        ("local_transport", "error:5.1.1 local delivery is disabled in the Vigil test instance",
         "never deliver to /var/mail; only the Maildirs under workdir"),
        ("alias_maps", "", "no /etc/aliases (Debian's default also asks NIS)"),
        ("alias_database", "", ""),
        ("append_dot_mydomain", "no", ""),
        ("recipient_delimiter", "", "addresses are delivered as written (Debian's main.cf uses +)"),
        ("biff", "no", "no comsat notifications"),
        # ---- network
        ("inet_interfaces", HOST, "loopback only; the listener itself is in master.cf"),
        ("inet_protocols", "ipv4", ""),
        ("mynetworks", "127.0.0.0/8", ""),
        ("smtpd_relay_restrictions", "reject_unauth_destination",
         "no relaying even from mynetworks: other domains fail at RCPT (554 5.7.1), so no mail ever "
         "leaves the machine"),
        ("default_transport", "error:5.4.4 the Vigil test instance does not relay", "belt and braces"),
        ("relay_transport", "error:5.4.4 the Vigil test instance does not relay", ""),
        ("smtp_dns_support_level", "disabled",
         "no DNS from Postfix (replaces the deprecated disable_dns_lookups)"),
        ("smtp_host_lookup", "native", ""),
        ("lmtp_host_lookup", "native", ""),
        ("smtpd_peername_lookup", "no",
         "no reverse lookup of 127.0.0.1: the client name is 'unknown' (like a client without "
         "PTR; the milter's connect callback gets '[127.0.0.1]') and no resolver timeout can "
         "slow a test; use send(xclient=...) to present a name"),
        ("smtpd_authorized_xclient_hosts", "127.0.0.0/8",
         "lets tests impersonate any client address/name/HELO with XCLIENT"),
        ("smtpd_banner", "$myhostname ESMTP $mail_name", ""),
        # smtpd_delay_reject stays at its default (yes): it only moves client/HELO/sender
        # restriction rejects to RCPT and costs no time; milter replies are not affected.
        # enable_original_recipient stays yes: virtual(8) adds X-Original-To.
        # ---- speed
        ("smtpd_error_sleep_time", "0s",
         "default 1s sleep after every 4xx/5xx reply would slow every rejection test"),
        ("in_flow_delay", "0s", "no throttling of fast test clients"),
        ("delay_warning_time", "0h", ""),
        # ---- content as sent
        ("local_header_rewrite_clients", "",
         "127.0.0.1 is otherwise a 'local' client whose headers get rewritten and Date/"
         "Message-ID added (breaks DKIM tests)"),
        ("always_add_missing_headers", "no", "same reason"),
        ("smtpd_forbid_bare_newline", "no", "tests may send bare LF on purpose"),
        # ---- milter
        ("milter_protocol", "6", ""),
        ("milter_default_action", "tempfail",
         "a dead milter must give 451 4.7.1, never an accept"),
        ("milter_connect_timeout", "5s", "defaults 30s/30s/300s are too long for tests"),
        ("milter_command_timeout", "15s", "generous for sanitizer builds"),
        ("milter_content_timeout", "30s", ""),
        # ---- delivery into Maildirs under workdir
        ("virtual_mailbox_domains", "static:all" if inst.domains == ("*",) else
         " ".join(inst.domains), ""),
        ("virtual_mailbox_base", inst.mail_dir, ""),
        ("virtual_mailbox_maps", f"static:{MAILDIR_NAME}/",
         "every recipient in those domains is valid and delivered into one Maildir "
         "(trailing /); virtual(8) refuses $1-style regexp results, so per-recipient "
         "Maildirs would need a map listing each recipient. delivered_to() filters on "
         "Delivered-To"),
        ("virtual_uid_maps", f"static:{pw.pw_uid}", "the postfix user owns the Maildirs"),
        ("virtual_gid_maps", f"static:{pw.pw_gid}", ""),
        ("virtual_minimum_uid", str(min(pw.pw_uid, 100)), ""),
        # ---- logging
        ("maillog_file", inst.log_file, "log to a file under workdir (via postlogd) instead of syslog"),
        ("maillog_file_prefixes", W, "maillog_file must be under one of these (default /var)"),
    ]
    if inst.milter:
        s.append(("smtpd_milters", inst.milter, ""))
        s.append(("non_smtpd_milters", inst.milter, ""))
    return s




def _make_queue_dirs(queue_dir: str) -> None:
    """Create the queue subdirectories exactly as Postfix's own list (postfix-files:
    "$queue_directory/NAME:d:OWNER:GROUP:MODE:...") says; '-' group means root's."""
    owners = {"$mail_owner": "postfix", "root": "root"}
    groups = {"$setgid_group": "postdrop", "-": "root"}
    with open(POSTFIX_FILES) as f:
        for line in f:
            fields = line.strip().split(":")
            if len(fields) < 5 or fields[1] != "d" or not fields[0].startswith("$queue_directory/"):
                continue
            path = os.path.join(queue_dir, fields[0][len("$queue_directory/"):])
            uid = pwd.getpwnam(owners.get(fields[2], fields[2])).pw_uid
            gid = grp.getgrnam(groups.get(fields[3], fields[3])).gr_gid
            os.makedirs(path, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, int(fields[4], 8))


# --------------------------------------------------------------------------------------
# The instance
# --------------------------------------------------------------------------------------

_live_instances: "weakref.WeakSet[PostfixInstance]" = weakref.WeakSet()


def _stop_all_at_exit() -> None:
    for inst in list(_live_instances):
        try:
            inst.stop()
        except Exception as e:  # noqa: BLE001 - best effort at exit
            print(f"postfix_harness: stop at exit failed for {inst.workdir}: {e}", file=sys.stderr)


atexit.register(_stop_all_at_exit)


def _free_port() -> int:
    """A port on 127.0.0.1 that is free right now, chosen at random below Linux's
    ephemeral range (32768-60999) so that outgoing connections (e.g. Postfix's own
    connections to the milter) cannot take it between this check and the master's bind.
    A remaining race with another process is handled by start() retrying."""
    import random
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    raise HarnessError("no free port found in 20000-32000 on 127.0.0.1")


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes LISTENing on 127.0.0.1:port or 0.0.0.0:port (from /proc/net/tcp)."""
    want = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] in want and fields[3] == "0A":
                    inodes.add(fields[9])
    except OSError:
        pass
    return inodes


def _pid_has_socket(pid: int, inodes: set[str]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


class PostfixInstance:
    def __init__(self, workdir: str, milter: str | None = None, smtp_port: int = 0,
                 extra_main_cf: Mapping[str, str] | None = None, *,
                 domains: Sequence[str] = ("vigil.test",),
                 extra_master_cf: Iterable[str] = (),
                 smtpd_options: Mapping[str, str] | None = None,
                 quick_start: bool = False, smtpd_chroot: bool = False):
        if os.geteuid() != 0:
            raise HarnessError("PostfixInstance must run as root (Postfix's master needs it)")
        self.workdir = os.path.realpath(workdir)
        self.milter = milter
        self.requested_port = smtp_port
        self.port = smtp_port
        self.extra_main_cf = dict(extra_main_cf or {})
        self.domains = tuple(d.lower() for d in domains)
        self.extra_master_cf = list(extra_master_cf)
        self.smtpd_options = dict(smtpd_options or {})
        self.quick_start = quick_start
        self.smtpd_chroot = smtpd_chroot
        self.config_dir = os.path.join(self.workdir, "etc")
        self.queue_dir = os.path.join(self.workdir, "spool")
        self.data_dir = os.path.join(self.workdir, "data")
        self.mail_dir = os.path.join(self.workdir, "mail")
        self.log_file = os.path.join(self.workdir, "postfix.log")
        self.master_pid: int | None = None
        self._watchdog: subprocess.Popen | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- context manager
    def __enter__(self) -> "PostfixInstance":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PostfixInstance({self.workdir!r}, port={self.port}, milter={self.milter!r})"

    # ---------------------------------------------------------------- commands
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAIL_CONFIG", "MAIL_DEBUG", "MAIL_VERBOSE")}
        env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        env["LANG"] = "C"
        return env

    def _run(self, argv: list[str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a Postfix command; stdout and stderr go to temporary files, not pipes: the
        daemonised master inherits them and a pipe would make us wait until it lets go
        (measured: `postfix start` took 2.8 s with pipes, 0.6 s without)."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(argv, env=self._env(), stdin=subprocess.DEVNULL, stdout=out,
                               stderr=err, timeout=timeout, cwd="/")
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise HarnessError(f"{' '.join(argv)} failed with exit code {p.returncode}:\n"
                               f"{p.stdout.decode(errors='replace')}{p.stderr.decode(errors='replace')}")
        return p

    def postconf(self, name: str) -> str:
        p = self._run([POSTCONF, "-c", self.config_dir, "-h", name])
        return p.stdout.decode().strip()

    # ---------------------------------------------------------------- set-up
    def _check_traversable(self) -> None:
        """virtual(8) runs as the postfix user and opens absolute paths under mail_dir, so
        every directory above it must be searchable by 'other'.  The harness adds that
        search bit (never read or write) to the workdir and to its ancestors inside the
        temp directory (mkdtemp() makes 0700 directories); anything else is an error."""
        tmp = os.path.realpath(tempfile.gettempdir())
        d = self.workdir
        while True:
            st = os.stat(d)
            if not st.st_mode & 0o001:
                if d == self.workdir or d.startswith(tmp + os.sep):
                    os.chmod(d, (st.st_mode & 0o7777) | 0o001)
                else:
                    raise HarnessError(f"{d} is not searchable by the postfix user (mode "
                                       f"{st.st_mode & 0o7777:o}); use a workdir under {tmp} "
                                       f"or make it o+x")
            if d == "/":
                break
            d = os.path.dirname(d)

    def _write_config(self) -> None:
        pw = pwd.getpwnam("postfix")
        os.makedirs(self.workdir, exist_ok=True)
        self._check_traversable()
        for d in (self.config_dir, self.queue_dir, self.data_dir, self.mail_dir):
            if os.path.exists(d):
                shutil.rmtree(d)  # a previous run's state (its master is stopped before this)
        if os.path.exists(self.log_file):
            os.unlink(self.log_file)
        os.makedirs(self.config_dir, mode=0o755)
        os.makedirs(self.queue_dir, mode=0o755)   # root-owned; Postfix makes the rest
        os.makedirs(self.data_dir, mode=0o700)
        os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
        os.makedirs(self.mail_dir, mode=0o700)
        os.chown(self.mail_dir, pw.pw_uid, pw.pw_gid)

        lines = ["# Written by test/support/postfix_harness.py for a throwaway test instance.", ""]
        for name, value, why in _main_cf_settings(self):
            if name in self.extra_main_cf:
                continue
            if why:
                lines.append(f"# {why}")
            lines.append(f"{name} = {value}")
        if self.extra_main_cf:
            lines.append("")
            lines.append("# extra_main_cf")
            for name, value in self.extra_main_cf.items():
                lines.append(f"{name} = {value}")
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            f.write("\n".join(lines) + "\n")

        chroot = "y" if self.smtpd_chroot else "n"
        smtpd = f"{HOST}:{self.port} inet  n       -       {chroot}       -       -       smtpd"
        for k, v in self.smtpd_options.items():
            smtpd += f"\n  -o {k}={v}"
        with open(os.path.join(self.config_dir, "master.cf"), "w") as f:
            f.write("# Written by test/support/postfix_harness.py. No port-25 listener, chroot off"
                    f"{' (but for smtpd)' if self.smtpd_chroot else ''}.\n")
            f.write(smtpd + "\n")
            f.write(_MASTER_CF_SERVICES)
            for line in self.extra_master_cf:
                f.write(line.rstrip("\n") + "\n")
        # Postfix re-reads a "hot" main.cf (mtime within the last second) every 0.3 s
        # until it cools down (dict_load_file: "pausing to let ... cool down"); each
        # postconf/master invocation in `postfix start` paid that: 1.5-2 s in total.
        # Back-date the files we just wrote.
        past = time.time() - 10
        for name in os.listdir(self.config_dir):
            os.utime(os.path.join(self.config_dir, name), (past, past))
        if self.smtpd_chroot:
            # What Debian's postfix service copies into the jail before it starts Postfix.
            os.makedirs(os.path.join(self.queue_dir, "etc"), mode=0o755)
            for name in CHROOT_FILES:
                if os.path.exists(name):
                    shutil.copy2(name, os.path.join(self.queue_dir, "etc", os.path.basename(name)))
        if self.quick_start:
            _make_queue_dirs(self.queue_dir)
            # postfix-script start skips check-fatal/check-warn (post-install create-missing
            # and a few find(1) runs, ~0.4 s) when this file exists, and removes it.
            with open(os.path.join(self.queue_dir, "quick-start"), "w"):
                pass

    # ---------------------------------------------------------------- start / stop
    def start(self, timeout: float = 30) -> None:
        with self._lock:
            if self.master_pid is not None and _pid_alive(self.master_pid):
                raise HarnessError(f"{self!r} is already running")
            # A previous run in the same workdir that was never stopped.
            if os.path.isdir(self.queue_dir):
                stop_instance(self.config_dir, self.queue_dir)
            # The watchdog first: a test process killed while `postfix start` runs (a ctest
            # timeout, SIGKILL) must not leave behind the instance it was starting.
            os.makedirs(self.workdir, exist_ok=True)
            self._start_watchdog()
            try:
                self._start(timeout)
            except BaseException:
                if os.path.isdir(self.queue_dir):
                    stop_instance(self.config_dir, self.queue_dir)
                _live_instances.discard(self)
                self._stop_watchdog()
                raise

    def _start(self, timeout: float) -> None:
        attempts = 3 if self.requested_port == 0 else 1
        last_error = None
        for _ in range(attempts):
            self.port = self.requested_port or _free_port()
            self._write_config()
            p = self._run([POSTFIX, "-c", self.config_dir, "start"], check=False, timeout=timeout)
            if p.returncode == 0:
                break
            last_error = (f"postfix -c {self.config_dir} start failed (exit {p.returncode}):\n"
                          f"{p.stdout.decode(errors='replace')}{p.stderr.decode(errors='replace')}"
                          f"{self._log_tail()}")
            stop_instance(self.config_dir, self.queue_dir)
            if "Address already in use" not in last_error:
                break
        else:
            raise HarnessError(last_error or "postfix start failed")
        if p.returncode != 0:
            raise HarnessError(last_error or "postfix start failed")
        _live_instances.add(self)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            master = _master_of(self.config_dir, self.queue_dir)
            if master is not None and _pid_has_socket(master, _listening_inodes(self.port)):
                self.master_pid = master
                return
            if time.monotonic() >= deadline:
                raise HarnessError(f"Postfix master for {self.workdir} not listening on "
                                   f"{HOST}:{self.port} after {timeout}s{self._log_tail()}")
            time.sleep(0.02)

    def _start_watchdog(self) -> None:
        """A separate process (own session, so a process-group kill of the test does not
        take it along) that stops this instance when our end of its stdin pipe closes,
        i.e. when this process exits for any reason, including SIGKILL."""
        log = open(os.path.join(self.workdir, "watchdog.log"), "ab")
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--watchdog", self.config_dir, self.queue_dir],
                stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True,
                close_fds=True, cwd="/")
        finally:
            log.close()

    def _stop_watchdog(self) -> None:
        """Tells the watchdog that the instance is stopped and waits for it to exit."""
        if self._watchdog is None:
            return
        try:
            self._watchdog.stdin.write(b"stopped\n")
            self._watchdog.stdin.close()
        except OSError:
            pass
        try:
            self._watchdog.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._watchdog.kill()
            self._watchdog.wait()
        self._watchdog = None

    def stop(self) -> None:
        with self._lock:
            notes = stop_instance(self.config_dir, self.queue_dir) if os.path.isdir(self.queue_dir) else []
            for n in notes:
                print(f"postfix_harness: {self.workdir}: {n}", file=sys.stderr)
            self.master_pid = None
            _live_instances.discard(self)
            self._stop_watchdog()

    def running(self) -> bool:
        return _master_of(self.config_dir, self.queue_dir) is not None

    def flush(self) -> None:
        self._run([POSTFIX, "-c", self.config_dir, "flush"])

    # ---------------------------------------------------------------- SMTP
    def send(self, mail_from: str, rcpts: Sequence[str], data: bytes | str,
             helo: str = "client.example.net", timeout: float = 30, *,
             xclient: Mapping[str, str] | None = None,
             mail_options: Sequence[str] = (), rcpt_options: Sequence[str] = ()) -> SmtpResult:
        if isinstance(data, str):
            data = data.encode("utf-8")
        res = SmtpResult()
        t = res.transcript
        smtp = smtplib.SMTP(timeout=timeout)
        smtp.command_encoding = "utf-8"  # allow SMTPUTF8 addresses in MAIL/RCPT
        stage = "connect"

        def cmd(line: str) -> Reply:
            t.append(f"C: {line}")
            smtp.putcmd(line)
            code, msg = smtp.getreply()
            r = _reply(code, msg)
            t.append(f"S: {r}")
            return r

        try:
            code, msg = smtp.connect(HOST, self.port)
            res.banner = _reply(code, msg)
            t.append(f"S: {res.banner}")
            if code != 220:
                res.failed_stage = "connect"
                return res
            stage = "ehlo"
            res.ehlo = cmd(f"EHLO {helo}")
            if res.ehlo.code != 250:
                res.failed_stage = "ehlo"
                return res
            if xclient:
                stage = "xclient"
                attrs = " ".join(f"{k}={v}" for k, v in xclient.items())
                res.xclient = cmd(f"XCLIENT {attrs}")
                if res.xclient.code != 220:
                    res.failed_stage = "xclient"
                    return res
                stage = "ehlo"
                res.ehlo = cmd(f"EHLO {xclient.get('HELO', helo)}")
                if res.ehlo.code != 250:
                    res.failed_stage = "ehlo"
                    return res
            stage = "mail"
            opts = "".join(" " + o for o in mail_options)
            res.mail = cmd(f"MAIL FROM:<{mail_from}>{opts}")
            if res.mail.code != 250:
                res.failed_stage = "mail"
                return res
            stage = "rcpt"
            ropts = "".join(" " + o for o in rcpt_options)
            accepted = 0
            for rcpt in rcpts:
                r = cmd(f"RCPT TO:<{rcpt}>{ropts}")
                res.rcpts.append((rcpt, r))
                if r.code in (250, 251):
                    accepted += 1
            if accepted == 0:
                res.failed_stage = "rcpt"
                return res
            stage = "data_cmd"
            res.data_cmd = cmd("DATA")
            if res.data_cmd.code != 354:
                res.failed_stage = "data_cmd"
                return res
            stage = "data"
            payload = _dot_stuff(data)
            t.append(f"C: <{len(data)} message bytes, {len(payload)} on the wire>")
            smtp.sock.sendall(payload)
            code, msg = smtp.getreply()
            res.data = _reply(code, msg)
            t.append(f"S: {res.data}")
            m = _QUEUED_AS.search(res.data.text)
            if m:
                res.queue_id = m.group(1)
            if code != 250:
                res.failed_stage = "data"
            return res
        except (smtplib.SMTPException, OSError) as e:
            r = Reply(0, f"{type(e).__name__}: {e}")
            t.append(f"!: {r.text}")
            res.failed_stage = stage
            if stage == "connect":
                res.banner = r
            elif stage == "rcpt":
                res.rcpts.append(("", r))
            else:
                setattr(res, stage, r)
            return res
        finally:
            try:
                if smtp.sock is not None:
                    if res.failed_stage is None or res.failed_reply is None or res.failed_reply.code != 0:
                        smtp.putcmd("QUIT")
                        smtp.getreply()
            except (smtplib.SMTPException, OSError):
                pass
            smtp.close()

    def send_swaks(self, mail_from: str, rcpts: Sequence[str], data: bytes | str,
                   helo: str = "client.example.net", timeout: float = 30) -> SmtpResult:
        """The same transaction through swaks.  With --no-data-fixup swaks sends the data
        exactly as given followed by CRLF, so the harness dot-stuffs it and adds the final
        dot itself (no trailing CRLF; swaks supplies it)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        payload = _dot_stuff(data)[:-2]  # swaks appends the CRLF after the final "."
        fd, path = tempfile.mkstemp(prefix="swaks-data-", dir=self.workdir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            argv = [SWAKS, "--server", HOST, "--port", str(self.port), "--from", mail_from,
                    "--to", ",".join(rcpts), "--helo", helo, "--no-data-fixup", "--suppress-data",
                    "--timeout", f"{int(timeout)}s", "--data", f"@{path}"]
            try:
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=timeout * 3 + 10, env=self._env())
            except subprocess.TimeoutExpired as e:
                res = SmtpResult(failed_stage="connect", banner=Reply(0, f"swaks timed out: {e}"))
                return res
        finally:
            os.unlink(path)
        out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
        res = parse_swaks_transcript(out)
        res.exit_code = p.returncode
        res.raw_output = out
        return res

    def sendmail(self, mail_from: str, rcpts: Sequence[str], data: bytes | str,
                 timeout: float = 30) -> subprocess.CompletedProcess:
        """Local submission with Postfix's sendmail(1) -C DIR (postdrop -> maildrop ->
        pickup -> cleanup), the path that non_smtpd_milters see.  Works as root without
        alternate_config_directories.  Note: cleanup adds Date/Message-ID/From to locally
        submitted mail when missing, as it does for any local submission.  sendmail's
        -i is used, so a lone '.' line does not end the message."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        sendmail = shutil.which("sendmail", path="/usr/sbin:/usr/lib") or "/usr/sbin/sendmail"
        argv = [sendmail, "-C", self.config_dir, "-i", "-f", mail_from, "--", *rcpts]
        return subprocess.run(argv, input=data, capture_output=True, timeout=timeout,
                              env=self._env(), cwd="/")

    # ---------------------------------------------------------------- delivered mail
    def _maildir_files(self, base: str) -> list[str]:
        files = []
        for root, dirs, names in os.walk(base):
            if os.path.basename(root) in ("new", "cur"):
                files.extend(os.path.join(root, n) for n in names)
        return files

    @staticmethod
    def _order_key(path: str) -> tuple:
        # Postfix Maildir names: <sec>.V<dev>I<ino>M<usec>.<host>
        name = os.path.basename(path)
        m = re.match(r"(\d+)\.V[0-9a-fA-F]+I[0-9a-fA-F]+M(\d+)\.", name)
        if m:
            return (int(m.group(1)), int(m.group(2)), name)
        st = os.stat(path)
        return (int(st.st_mtime), int(st.st_mtime_ns // 1000 % 1_000_000), name)

    def _read_files(self, files: list[str], crlf: bool) -> list[bytes]:
        out = []
        for path in sorted(files, key=self._order_key):
            with open(path, "rb") as f:
                b = f.read()
            out.append(b.replace(b"\n", b"\r\n") if crlf else b)
        return out

    def delivered(self, crlf: bool = False) -> list[bytes]:
        return self._read_files(self._maildir_files(self.mail_dir), crlf)

    def delivered_to(self, rcpt: str, crlf: bool = False) -> list[bytes]:
        """Delivered messages whose first Delivered-To header (added by virtual(8)) is
        rcpt (compared case-insensitively)."""
        want = rcpt.lower().encode()
        out = []
        for msg in self.delivered(crlf=False):
            m = re.search(rb"^Delivered-To: (.*?)\r?$", msg, re.M)
            if m and m.group(1).strip().lower() == want:
                out.append(msg.replace(b"\n", b"\r\n") if crlf else msg)
        return out

    def wait_delivered(self, count: int, timeout: float = 30, crlf: bool = False) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while True:
            files = self._maildir_files(self.mail_dir)
            if len(files) >= count:
                return self._read_files(files, crlf)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(files)} of {count} messages delivered after {timeout}s; "
                                   f"queues: {self.queue_ids()}{self._log_tail()}")
            time.sleep(0.05)

    def wait_message(self, pattern: bytes | str, timeout: float = 30, crlf: bool = False) -> bytes | None:
        """The first delivered message (oldest first) in which the regular expression `pattern`
        (re.M; the message has LF line ends) is found, waiting up to `timeout` seconds; None when
        none came. Returned with CRLF line ends when `crlf`."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.delivered():
                if rx.search(msg):
                    return msg.replace(b"\n", b"\r\n") if crlf else msg
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    # ---------------------------------------------------------------- queues
    def queue_ids(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for q in QUEUES:
            ids = []
            for root, dirs, names in os.walk(os.path.join(self.queue_dir, q)):
                ids.extend(names)
            result[q] = sorted(ids)
        return result

    def hold_queue(self) -> list[str]:
        return self.queue_ids()["hold"]

    def queued_message(self, queue_id: str) -> bytes:
        p = self._run([POSTCAT, "-c", self.config_dir, "-h", "-b", "-q", queue_id])
        return p.stdout

    def release(self, queue_id: str) -> None:
        self._run([POSTSUPER, "-c", self.config_dir, "-H", queue_id])
        self.flush()

    # ---------------------------------------------------------------- log
    def log_text(self) -> str:
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, regex: str, timeout: float = 10) -> re.Match:
        pat = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = pat.search(self.log_text())
            if m:
                return m
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no log line matching {regex!r} after {timeout}s{self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self, n: int = 30) -> str:
        lines = self.log_text().splitlines()[-n:]
        if not lines:
            return f"\n(no Postfix log at {self.log_file})"
        return f"\nlast lines of {self.log_file}:\n" + "\n".join("  " + l for l in lines)


def strip_added_headers(msg: bytes, myhostname: str = "mx.vigil.test") -> bytes:
    """Undo what delivery added, to compare a delivered message with what was sent:
    the leading Return-Path:, X-Original-To: and Delivered-To: headers (virtual(8)) and
    the one Received: header of this instance ("by <myhostname> (Postfix) with"), wherever
    it is in the header block.  Works on LF or CRLF text; everything else is kept
    byte for byte (including headers a milter added)."""
    nl = b"\r\n" if b"\r\n" in msg.split(b"\n", 1)[0] + b"\n" else b"\n"
    lines = msg.split(nl)
    # split the header block into fields (a field = first line + continuation lines)
    fields: list[list[bytes]] = []
    i = 0
    while i < len(lines) and lines[i] != b"":
        if lines[i][:1] in (b" ", b"\t") and fields:
            fields[-1].append(lines[i])
        else:
            fields.append([lines[i]])
        i += 1
    rest = lines[i:]
    while fields and fields[0][0].split(b":", 1)[0].lower() in (
            b"return-path", b"x-original-to", b"delivered-to"):
        fields.pop(0)
    marker = b"by " + myhostname.encode() + b" (Postfix) with"
    for k, f in enumerate(fields):
        if f[0].lower().startswith(b"received:") and marker in b" ".join(x.strip() for x in f):
            del fields[k]
            break
    return nl.join([l for f in fields for l in f] + rest)


# --------------------------------------------------------------------------------------
# swaks transcript parsing
# --------------------------------------------------------------------------------------

def parse_swaks_transcript(out: str) -> SmtpResult:
    """Turn swaks' transcript into an SmtpResult.  Lines: '=== ' info, ' -> ' sent,
    '<-  ' received, '<** ' received error reply, '*** ' swaks error."""
    res = SmtpResult()
    t = res.transcript
    last_cmd: str | None = "BANNER"
    reply_lines: list[str] = []
    stage_of: dict[str, str] = {}

    def finish(lines: list[str], cmd: str | None) -> None:
        if not lines or cmd is None:
            return
        m = re.match(r"(\d{3})[ -]?(.*)", lines[0])
        code = int(m.group(1)) if m else 0
        text = "\n".join(re.sub(r"^\d{3}[ -]?", "", l) for l in lines)
        r = Reply(code, text)
        t.append(f"S: {r}")
        if cmd == "BANNER":
            res.banner = r
        elif cmd.startswith(("EHLO", "HELO")):
            res.ehlo = r
        elif cmd.startswith("MAIL"):
            res.mail = r
        elif cmd.startswith("RCPT"):
            m2 = re.match(r"RCPT TO:<(.*)>", cmd)
            res.rcpts.append((m2.group(1) if m2 else cmd, r))
        elif cmd == "DATA":
            res.data_cmd = r
        elif cmd == "<message>":
            res.data = r
            m3 = _QUEUED_AS.search(text)
            if m3:
                res.queue_id = m3.group(1)

    for raw in out.splitlines():
        if raw.startswith(("<-  ", "<** ", "<~  ", "<~* ")):
            reply_lines.append(raw[4:])
            # a final line of a reply has a space (or nothing) after the code
            if re.match(r"\d{3}( |$)", raw[4:]):
                finish(reply_lines, last_cmd)
                reply_lines = []
                if last_cmd == "DATA":
                    last_cmd = "<message>" if res.data_cmd and res.data_cmd.code == 354 else None
                else:
                    last_cmd = None
        elif raw.startswith((" -> ", " ~> ")):
            line = raw[4:]
            if last_cmd == "<message>":
                t.append("C: <message data>")
                continue
            last_cmd = line
            t.append(f"C: {line}")
        elif raw.startswith("*** ") or raw.startswith("=== "):
            t.append(raw)
    # stage that failed
    if res.banner is None or res.banner.code != 220:
        res.failed_stage = "connect"
        if res.banner is None:
            res.banner = Reply(0, "no banner (see raw_output)")
    elif res.ehlo is None or res.ehlo.code != 250:
        res.failed_stage = "ehlo"
    elif res.mail is None or res.mail.code != 250:
        res.failed_stage = "mail"
    elif not any(r.code in (250, 251) for _, r in res.rcpts):
        res.failed_stage = "rcpt"
    elif res.data_cmd is None or res.data_cmd.code != 354:
        res.failed_stage = "data_cmd"
    elif res.data is None or res.data.code != 250:
        res.failed_stage = "data"
    return res


# --------------------------------------------------------------------------------------
# Watchdog entry point
# --------------------------------------------------------------------------------------

def _watchdog_main(config_dir: str, queue_dir: str) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    data = b""
    try:
        while True:
            chunk = os.read(0, 4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    if b"stopped" in data:
        return 0
    notes = stop_instance(config_dir, queue_dir)
    print(f"postfix_harness watchdog: test process went away; stopped {config_dir}"
          + (f" ({'; '.join(notes)})" if notes else ""), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--watchdog":
        sys.exit(_watchdog_main(sys.argv[2], sys.argv[3]))
    print(__doc__)
    sys.exit(2)
