#!/usr/bin/env python3
"""An MTA-side milter protocol (version 6) client that talks like Postfix 3.7.

Integration tests and benchmarks use it to drive a mail filter (vigil-milter, the
noop filter, anything built on libmilter) without a real MTA.  Standard library
only, Python 3.11.

Everything below that claims "Postfix does X" was checked against a real
Postfix 3.7.11 (Debian 12) talking to a packet-logging fake filter, and against
strace of its smtpd/cleanup processes:

* OPTNEG: version 6, actions 0x1FF, protocol flags 0x1FFFFF (SMFI_CURR_PROT,
  which includes SMFIP_RCPT_REJ, SMFIP_SKIP and SMFIP_HDR_LEADSPC).  A symbol
  list appended to the filter's OPTNEG reply replaces Postfix's own macro list
  for that stage.
* Before every event Postfix sends an SMFIC_MACRO packet for that event, even
  when no macro in the list has a value (the packet is then just the stage
  letter).  For CONNECT, HELO, MAIL, RCPT, DATA and UNKNOWN it does so even when
  the filter asked to skip the event; for skipped headers, EOH and body it
  sends nothing at all.  Macros without a value are left out.  Headers and EOH
  use the end-of-header list, body chunks and EOM the end-of-data list.  ABORT
  and QUIT carry none.
* The queue id macro ``i`` is undefined at MAIL and at the first RCPT: with the
  default smtpd_delay_open_until_valid_rcpt=yes the queue file (and its id)
  exists only once a recipient was accepted.  The envelope macros ({mail_*},
  {rcpt_*}) are defined only for MAIL, RCPT and DATA (at DATA {rcpt_*} showed
  the first recipient); for headers, EOH, body and EOM the cleanup server
  defines connection macros ({client_*}, j, _, v, {daemon_*}) and ``i`` only.
* Header fields: name and value as two NUL-terminated strings.  One space after
  the colon is removed unless SMFIP_HDR_LEADSPC was negotiated (a tab is never
  removed).  A folded header keeps its line breaks as a bare "\\n" (LF, no CR)
  before each continuation line, e.g. ``"folded\\n second line\\n\\tthird"``.
  Postfix's own Received: header is not shown to the filter.
* Body: lines end in CRLF (a final line without a newline gets one), sent in
  SMFIC_BODY chunks of exactly 65535 bytes except the last; an empty body sends
  no SMFIC_BODY at all.  A SKIP reply stops the body; EOM follows.
* Postfix writes each event (macros + command) in one write(2) and batches
  no-reply events (e.g. headers with SMFIP_NR_HDR) with the next event that
  needs a reply.  One more write boundary: smtpd hands the filter connection to
  the cleanup server after the DATA event, flushing whatever it buffered, and
  cleanup then writes the message events.  This client does the same (output
  buffered, flushed before any read, after DATA, and past 64 KiB) because it
  matters for timing: if nothing after the last reply needed one (filter skips
  DATA or set SMFIP_NR_DATA), the MTA writes twice without reading, Nagle on
  the MTA side holds the EOM write until the filter's delayed ACK, and every
  message costs ~40 ms over TCP.  Measured with real Postfix 3.7 too.
* After every message transaction Postfix sends SMFIC_ABORT (no reply), and at
  the end of the SMTP session ABORT then QUIT.
* SMFIR_QUARANTINE at EOM is a modification: Postfix keeps reading until the
  final reply (the message is put on hold).
* Reply packets longer than 2 * 65535 bytes are treated as a protocol error,
  as Postfix's milter8.c does (read in its source, not provoked in Postfix).
* Not checked: which auth macros cleanup defines after MAIL (no SMTP AUTH was
  set up); this client keeps whatever ``macros`` says for every stage.

Example::

    with MilterClient("inet:8899@127.0.0.1") as c:
        c.negotiate()
        c.connect("mail.example.org", "192.0.2.1", 40000)
        c.helo("mail.example.org")
        c.mail("<alice@example.org>")
        c.rcpt("<bob@example.com>")
        c.header("Subject", " hello")
        c.eoh()
        c.body(b"hi\\r\\n")
        result = c.eom()        # EomResult(reply, modifications)

    # or all of it, as one SMTP session with one message:
    res = send_message("unix:/run/vigil/milter.sock", "alice@example.org",
                       ["bob@example.com"], open("msg.eml", "rb").read())
    res.action, res.smtp_reply, res.added_headers, res.quarantine

Command line (prints JSON)::

    python3 test/support/milter_client.py inet:8899@127.0.0.1            # negotiate only
    python3 test/support/milter_client.py inet:8899@127.0.0.1 msg.eml \
        --from alice@example.org --rcpt bob@example.com --macro '{auth_authen}=alice'
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import random
import re
import socket
import struct
import sys
import time
from typing import Iterable, Sequence

# ---------------------------------------------------------------------------
# Protocol constants (libmilter/mfdef.h, protocol version 6)
# ---------------------------------------------------------------------------

SMFI_PROT_VERSION = 6

# Commands, MTA -> filter.
SMFIC_ABORT = b"A"
SMFIC_BODY = b"B"
SMFIC_CONNECT = b"C"
SMFIC_MACRO = b"D"
SMFIC_BODYEOB = b"E"
SMFIC_HELO = b"H"
SMFIC_QUIT_NC = b"K"
SMFIC_HEADER = b"L"
SMFIC_MAIL = b"M"
SMFIC_EOH = b"N"
SMFIC_OPTNEG = b"O"
SMFIC_QUIT = b"Q"
SMFIC_RCPT = b"R"
SMFIC_DATA = b"T"
SMFIC_UNKNOWN = b"U"

# Replies, filter -> MTA.
SMFIR_ADDRCPT = b"+"
SMFIR_DELRCPT = b"-"
SMFIR_ADDRCPT_PAR = b"2"
SMFIR_SHUTDOWN = b"4"
SMFIR_ACCEPT = b"a"
SMFIR_REPLBODY = b"b"
SMFIR_CONTINUE = b"c"
SMFIR_DISCARD = b"d"
SMFIR_CHGFROM = b"e"
SMFIR_CONN_FAIL = b"f"
SMFIR_ADDHEADER = b"h"
SMFIR_INSHEADER = b"i"
SMFIR_SETSYMLIST = b"l"
SMFIR_CHGHEADER = b"m"
SMFIR_PROGRESS = b"p"
SMFIR_QUARANTINE = b"q"
SMFIR_REJECT = b"r"
SMFIR_SKIP = b"s"
SMFIR_TEMPFAIL = b"t"
SMFIR_REPLYCODE = b"y"

REPLY_NAMES = {
    SMFIR_ADDRCPT: "ADDRCPT", SMFIR_DELRCPT: "DELRCPT", SMFIR_ADDRCPT_PAR: "ADDRCPT_PAR",
    SMFIR_SHUTDOWN: "SHUTDOWN", SMFIR_ACCEPT: "ACCEPT", SMFIR_REPLBODY: "REPLBODY",
    SMFIR_CONTINUE: "CONTINUE", SMFIR_DISCARD: "DISCARD", SMFIR_CHGFROM: "CHGFROM",
    SMFIR_CONN_FAIL: "CONN_FAIL", SMFIR_ADDHEADER: "ADDHEADER", SMFIR_INSHEADER: "INSHEADER",
    SMFIR_SETSYMLIST: "SETSYMLIST", SMFIR_CHGHEADER: "CHGHEADER", SMFIR_PROGRESS: "PROGRESS",
    SMFIR_QUARANTINE: "QUARANTINE", SMFIR_REJECT: "REJECT", SMFIR_SKIP: "SKIP",
    SMFIR_TEMPFAIL: "TEMPFAIL", SMFIR_REPLYCODE: "REPLYCODE",
}

# Replies that end an event (everything else is a modification or PROGRESS).
DECISION_REPLIES = frozenset({
    SMFIR_ACCEPT, SMFIR_CONTINUE, SMFIR_REJECT, SMFIR_TEMPFAIL, SMFIR_REPLYCODE,
    SMFIR_DISCARD, SMFIR_SKIP, SMFIR_SHUTDOWN, SMFIR_CONN_FAIL,
})
# Modifications are legal only in reply to EOM.
MODIFICATION_REPLIES = frozenset({
    SMFIR_ADDRCPT, SMFIR_DELRCPT, SMFIR_ADDRCPT_PAR, SMFIR_REPLBODY, SMFIR_CHGFROM,
    SMFIR_ADDHEADER, SMFIR_INSHEADER, SMFIR_CHGHEADER, SMFIR_QUARANTINE,
})

# Actions the filter may request (SMFIF_*).
SMFIF_ADDHDRS = 0x001
SMFIF_CHGBODY = 0x002
SMFIF_ADDRCPT = 0x004
SMFIF_DELRCPT = 0x008
SMFIF_CHGHDRS = 0x010
SMFIF_QUARANTINE = 0x020
SMFIF_CHGFROM = 0x040
SMFIF_ADDRCPT_PAR = 0x080
SMFIF_SETSYMLIST = 0x100

ACTION_NAMES = {
    SMFIF_ADDHDRS: "ADDHDRS", SMFIF_CHGBODY: "CHGBODY", SMFIF_ADDRCPT: "ADDRCPT",
    SMFIF_DELRCPT: "DELRCPT", SMFIF_CHGHDRS: "CHGHDRS", SMFIF_QUARANTINE: "QUARANTINE",
    SMFIF_CHGFROM: "CHGFROM", SMFIF_ADDRCPT_PAR: "ADDRCPT_PAR", SMFIF_SETSYMLIST: "SETSYMLIST",
}

# Protocol steps (SMFIP_*).
SMFIP_NOCONNECT = 0x00000001
SMFIP_NOHELO = 0x00000002
SMFIP_NOMAIL = 0x00000004
SMFIP_NORCPT = 0x00000008
SMFIP_NOBODY = 0x00000010
SMFIP_NOHDRS = 0x00000020
SMFIP_NOEOH = 0x00000040
SMFIP_NR_HDR = 0x00000080
SMFIP_NOUNKNOWN = 0x00000100
SMFIP_NODATA = 0x00000200
SMFIP_SKIP = 0x00000400
SMFIP_RCPT_REJ = 0x00000800
SMFIP_NR_CONN = 0x00001000
SMFIP_NR_HELO = 0x00002000
SMFIP_NR_MAIL = 0x00004000
SMFIP_NR_RCPT = 0x00008000
SMFIP_NR_DATA = 0x00010000
SMFIP_NR_UNKN = 0x00020000
SMFIP_NR_EOH = 0x00040000
SMFIP_NR_BODY = 0x00080000
SMFIP_HDR_LEADSPC = 0x00100000

PROTOCOL_NAMES = {
    SMFIP_NOCONNECT: "NOCONNECT", SMFIP_NOHELO: "NOHELO", SMFIP_NOMAIL: "NOMAIL",
    SMFIP_NORCPT: "NORCPT", SMFIP_NOBODY: "NOBODY", SMFIP_NOHDRS: "NOHDRS",
    SMFIP_NOEOH: "NOEOH", SMFIP_NR_HDR: "NR_HDR", SMFIP_NOUNKNOWN: "NOUNKNOWN",
    SMFIP_NODATA: "NODATA", SMFIP_SKIP: "SKIP", SMFIP_RCPT_REJ: "RCPT_REJ",
    SMFIP_NR_CONN: "NR_CONN", SMFIP_NR_HELO: "NR_HELO", SMFIP_NR_MAIL: "NR_MAIL",
    SMFIP_NR_RCPT: "NR_RCPT", SMFIP_NR_DATA: "NR_DATA", SMFIP_NR_UNKN: "NR_UNKN",
    SMFIP_NR_EOH: "NR_EOH", SMFIP_NR_BODY: "NR_BODY", SMFIP_HDR_LEADSPC: "HDR_LEADSPC",
}

# What Postfix 3.7.11 offers in its OPTNEG (seen on the wire).
POSTFIX_VERSION = SMFI_PROT_VERSION
POSTFIX_ACTIONS = 0x1FF
POSTFIX_PROTOCOL = 0x1FFFFF

# Connection families in SMFIC_CONNECT.
SMFIA_UNKNOWN = b"U"
SMFIA_UNIX = b"L"
SMFIA_INET = b"4"
SMFIA_INET6 = b"6"

# Macro stages as numbered in a SETSYMLIST list (SMFIM_*).
SMFIM_CONNECT = 0
SMFIM_HELO = 1
SMFIM_ENVFROM = 2
SMFIM_ENVRCPT = 3
SMFIM_DATA = 4
SMFIM_EOM = 5
SMFIM_EOH = 6
STAGE_NAMES = {0: "connect", 1: "helo", 2: "envfrom", 3: "envrcpt", 4: "data", 5: "eom", 6: "eoh"}

# Which macro stage governs the SMFIC_MACRO packet sent before each command
# (Postfix: headers use the end-of-header list, body chunks the end-of-data list).
COMMAND_STAGE = {
    SMFIC_CONNECT: SMFIM_CONNECT, SMFIC_HELO: SMFIM_HELO, SMFIC_MAIL: SMFIM_ENVFROM,
    SMFIC_RCPT: SMFIM_ENVRCPT, SMFIC_DATA: SMFIM_DATA, SMFIC_HEADER: SMFIM_EOH,
    SMFIC_EOH: SMFIM_EOH, SMFIC_BODY: SMFIM_EOM, SMFIC_BODYEOB: SMFIM_EOM,
}

# Macros that describe the envelope: Postfix defines them only for these events.
_ENVELOPE_MACROS = frozenset({"{mail_addr}", "{mail_host}", "{mail_mailer}",
                              "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"})
_ENVELOPE_EVENTS = frozenset({SMFIC_MAIL, SMFIC_RCPT, SMFIC_DATA})

# Events whose macros Postfix sends although the filter asked to skip the event.
# (For headers, EOH and body a skipping filter gets no macros either.)
_MACROS_EVEN_IF_SKIPPED = frozenset({SMFIC_CONNECT, SMFIC_HELO, SMFIC_MAIL, SMFIC_RCPT,
                                     SMFIC_DATA, SMFIC_UNKNOWN})

# Postfix 3.7's default macro lists (`postconf -d | grep _macros`).  Note that
# {client_addr} is NOT in Postfix's default connect list; a filter that wants
# it asks for it with smfi_setsymlist() (Postfix honours that) or an admin adds
# it to milter_connect_macros.  Pass macro_lists= to emulate such a set-up.
POSTFIX_MACRO_LISTS: dict[bytes, tuple[str, ...]] = {
    SMFIC_CONNECT: ("j", "{daemon_name}", "{daemon_addr}", "v", "_"),
    SMFIC_HELO: ("{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"),
    SMFIC_MAIL: ("i", "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}",
                 "{mail_host}", "{mail_mailer}"),
    SMFIC_RCPT: ("i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"),
    SMFIC_DATA: ("i",),
    SMFIC_HEADER: ("i",),
    SMFIC_EOH: ("i",),
    SMFIC_BODY: ("i",),
    SMFIC_BODYEOB: ("i",),
    SMFIC_UNKNOWN: (),
}

# Postfix's MILTER_CHUNK_SIZE, and its cap on a reply packet (XXX_MAX_DATA).
MILTER_CHUNK_SIZE = 65535
MAX_REPLY_LEN = 2 * MILTER_CHUNK_SIZE

# The SMTP replies Postfix gives for the plain decisions.
POSTFIX_REJECT_TEXT = "550 5.7.1 Command rejected"
POSTFIX_TEMPFAIL_TEXT = "451 4.7.1 Service unavailable - try again later"

_ENC = "utf-8"
_ERRS = "surrogateescape"  # lets arbitrary 8-bit header bytes round-trip through str


def flag_names(mask: int, names: dict[int, str]) -> list[str]:
    """Names of the bits set in `mask`; unknown bits as hex."""
    out = [name for bit, name in sorted(names.items()) if mask & bit]
    rest = mask & ~sum(names)
    if rest:
        out.append(hex(rest))
    return out


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode(_ENC, _ERRS)


def _s(value: bytes) -> str:
    return value.decode(_ENC, _ERRS)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class MilterError(Exception):
    """Base class for everything this client raises."""


class MilterTimeout(MilterError):
    """The filter did not answer (or accept data) within the timeout."""


class MilterConnectionClosed(MilterError):
    """The filter closed the connection."""


class MilterProtocolError(MilterError):
    """The filter sent something Postfix would treat as a protocol error."""


# ---------------------------------------------------------------------------
# Replies and modifications
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reply:
    """One packet from the filter: a one-byte code and its payload."""

    code: bytes
    data: bytes = b""

    @property
    def name(self) -> str:
        return REPLY_NAMES.get(self.code, f"UNKNOWN({self.code!r})")

    @property
    def is_decision(self) -> bool:
        return self.code in DECISION_REPLIES

    @property
    def text(self) -> str | None:
        """For REPLYCODE: the SMTP reply as sent by the filter, without the NUL."""
        if self.code != SMFIR_REPLYCODE:
            return None
        return _s(self.data.rstrip(b"\0"))

    @property
    def smtp_code(self) -> int | None:
        """The SMTP reply code the MTA would give for this decision, if any."""
        reply = self.smtp_reply()
        return int(reply[:3]) if reply else None

    def smtp_reply(self) -> str | None:
        """The SMTP reply Postfix gives for this decision, None for accept/continue.

        Postfix turns "%%" into "%" and drops single "%" in REPLYCODE text,
        because sendmail treats that text as a format string.
        """
        if self.code == SMFIR_REJECT:
            return POSTFIX_REJECT_TEXT
        if self.code == SMFIR_TEMPFAIL:
            return POSTFIX_TEMPFAIL_TEXT
        if self.code == SMFIR_REPLYCODE:
            return re.sub(r"%(.?)", r"\1", self.text or "")
        return None

    def __repr__(self) -> str:
        if self.code == SMFIR_REPLYCODE:
            return f"Reply(REPLYCODE {self.text!r})"
        return f"Reply({self.name}{' ' + repr(self.data) if self.data else ''})"


@dataclasses.dataclass(frozen=True)
class AddHeader:
    """SMFIR_ADDHEADER: append a header field (smfi_addheader)."""

    name: str
    value: str


@dataclasses.dataclass(frozen=True)
class InsertHeader:
    """SMFIR_INSHEADER: insert at `index` (0 = top, as passed to smfi_insheader)."""

    index: int
    name: str
    value: str


@dataclasses.dataclass(frozen=True)
class ChangeHeader:
    """SMFIR_CHGHEADER: change the index-th (1-based) `name` field; empty value deletes."""

    index: int
    name: str
    value: str

    @property
    def is_delete(self) -> bool:
        return self.value == ""


@dataclasses.dataclass(frozen=True)
class AddRcpt:
    """SMFIR_ADDRCPT / SMFIR_ADDRCPT_PAR (args is None for the former)."""

    rcpt: str
    args: str | None = None


@dataclasses.dataclass(frozen=True)
class DelRcpt:
    """SMFIR_DELRCPT."""

    rcpt: str


@dataclasses.dataclass(frozen=True)
class ChangeFrom:
    """SMFIR_CHGFROM: new envelope sender, optional ESMTP args."""

    sender: str
    args: str | None = None


@dataclasses.dataclass(frozen=True)
class ReplaceBody:
    """SMFIR_REPLBODY: one chunk of the replacement body."""

    chunk: bytes


@dataclasses.dataclass(frozen=True)
class Quarantine:
    """SMFIR_QUARANTINE: put the message on hold, with a reason."""

    reason: str


Modification = AddHeader | InsertHeader | ChangeHeader | AddRcpt | DelRcpt | ChangeFrom | ReplaceBody | Quarantine


def _split_strings(data: bytes, count: int, what: str, optional_last: bool = False) -> list[bytes]:
    """Split `count` NUL-terminated strings that must use up `data` exactly."""
    parts = data.split(b"\0")
    if not data.endswith(b"\0"):
        raise MilterProtocolError(f"{what}: missing NUL terminator in {data!r}")
    parts = parts[:-1]
    if len(parts) == count - 1 and optional_last:
        parts.append(None)  # type: ignore[arg-type]
    if len(parts) != count:
        raise MilterProtocolError(f"{what}: expected {count} strings, got {len(parts)} in {data!r}")
    return parts


def parse_modification(reply: Reply) -> Modification:
    """Decode a modification reply into its dataclass; strict about the layout."""
    code, data = reply.code, reply.data
    if code == SMFIR_ADDHEADER:
        name, value = _split_strings(data, 2, "ADDHEADER")
        return AddHeader(_s(name), _s(value))
    if code in (SMFIR_INSHEADER, SMFIR_CHGHEADER):
        if len(data) < 4:
            raise MilterProtocolError(f"{reply.name}: too short for an index")
        (index,) = struct.unpack("!I", data[:4])
        name, value = _split_strings(data[4:], 2, reply.name)
        cls = InsertHeader if code == SMFIR_INSHEADER else ChangeHeader
        return cls(index, _s(name), _s(value))
    if code == SMFIR_ADDRCPT:
        (rcpt,) = _split_strings(data, 1, "ADDRCPT")
        return AddRcpt(_s(rcpt))
    if code == SMFIR_ADDRCPT_PAR:
        rcpt, args = _split_strings(data, 2, "ADDRCPT_PAR", optional_last=True)
        return AddRcpt(_s(rcpt), None if args is None else _s(args))
    if code == SMFIR_DELRCPT:
        (rcpt,) = _split_strings(data, 1, "DELRCPT")
        return DelRcpt(_s(rcpt))
    if code == SMFIR_CHGFROM:
        sender, args = _split_strings(data, 2, "CHGFROM", optional_last=True)
        return ChangeFrom(_s(sender), None if args is None else _s(args))
    if code == SMFIR_REPLBODY:
        return ReplaceBody(data)
    if code == SMFIR_QUARANTINE:
        (reason,) = _split_strings(data, 1, "QUARANTINE")
        return Quarantine(_s(reason))
    raise MilterProtocolError(f"not a modification: {reply!r}")


@dataclasses.dataclass
class Negotiation:
    """What the filter asked for in its OPTNEG reply."""

    version: int
    actions: int
    protocol: int
    # Macro names the filter asked for, by SMFIM_* stage (empty if none sent).
    symlists: dict[int, list[str]]
    # Protocol bits the filter set although we did not offer them.
    unoffered_protocol: int = 0

    @property
    def action_names(self) -> list[str]:
        return flag_names(self.actions, ACTION_NAMES)

    @property
    def protocol_names(self) -> list[str]:
        return flag_names(self.protocol, PROTOCOL_NAMES)

    def as_dict(self) -> dict:
        return {
            "version": self.version,
            "actions": hex(self.actions), "action_names": self.action_names,
            "protocol": hex(self.protocol), "protocol_names": self.protocol_names,
            "symlists": {STAGE_NAMES.get(k, str(k)): v for k, v in self.symlists.items()},
        }


@dataclasses.dataclass
class EomResult:
    """The reply to end-of-message and the modifications that came before it."""

    reply: Reply
    modifications: list[Modification]

    @property
    def action(self) -> str:
        return self.reply.name

    @property
    def quarantine(self) -> str | None:
        q = [m.reason for m in self.modifications if isinstance(m, Quarantine)]
        return q[-1] if q else None

    @property
    def added_headers(self) -> list[tuple[str, str]]:
        return [(m.name, m.value) for m in self.modifications if isinstance(m, AddHeader)]


# ---------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------


def parse_address(address: str) -> tuple[int, object]:
    """Turn a milter socket spec into (family, sockaddr).

    Accepts libmilter's ``inet:PORT@HOST``, Postfix's ``inet:HOST:PORT``,
    ``inet6:PORT@HOST`` / ``inet6:[HOST]:PORT``, and ``unix:/path`` or
    ``local:/path``.  A bare ``/path`` is a unix socket.
    """
    if address.startswith("/"):
        return socket.AF_UNIX, address
    transport, sep, endpoint = address.partition(":")
    if not sep or not endpoint:
        raise ValueError(f"milter address needs transport:endpoint, got {address!r}")
    if transport in ("unix", "local"):
        return socket.AF_UNIX, endpoint
    if transport not in ("inet", "inet6"):
        raise ValueError(f"unsupported milter transport {transport!r}")
    if "@" in endpoint:
        port, _, host = endpoint.partition("@")
    elif endpoint.startswith("["):
        host, _, port = endpoint[1:].partition("]:")
    else:
        host, _, port = endpoint.rpartition(":")
    host = host.strip("[]") or ("::1" if transport == "inet6" else "127.0.0.1")
    if not port.isdigit():
        raise ValueError(f"bad port in milter address {address!r}")
    family = socket.AF_INET6 if transport == "inet6" or ":" in host else socket.AF_INET
    return family, (host, int(port))


def free_inet_address(host: str = "127.0.0.1") -> str:
    """A libmilter-style ``inet:PORT@HOST`` on a port that was free just now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return f"inet:{s.getsockname()[1]}@{host}"


def wait_until_listening(address: str, timeout: float = 10.0, proc=None) -> None:
    """Block until something accepts connections at `address`.

    `proc` (a subprocess.Popen) makes it fail fast if the filter process died.
    The probe connection is closed at once; libmilter shrugs that off.
    """
    family, sockaddr = parse_address(address)
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise MilterError(f"filter exited with status {proc.returncode} before listening on {address}")
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(sockaddr)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise MilterTimeout(f"nothing listening on {address} after {timeout} s") from None
            time.sleep(0.02)


def _postfix_queue_id() -> str:
    """A Postfix-looking short queue id (10-12 uppercase hex digits)."""
    return "%011X" % random.getrandbits(44)


def _domain_of(address: str) -> str:
    bare = address.strip().strip("<>")
    return bare.rpartition("@")[2] if "@" in bare else ""


# ---------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------


class MilterClient:
    """One MTA-to-filter connection, driven event by event like Postfix does.

    Event methods return the filter's Reply, or None when no reply was read:
    either the filter asked to skip the event (SMFIP_NO*) or said it will not
    answer it (SMFIP_NR_*).  None therefore means "continue".

    Macro values live in ``self.macros`` (name -> value, None = undefined) and
    persist for the session; each event method also takes ``macros=`` to set
    values first.  Which names are sent per event comes from the filter's
    symbol list for that stage, else from ``macro_lists`` (Postfix defaults).
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        version: int = POSTFIX_VERSION,
        actions: int = POSTFIX_ACTIONS,
        protocol: int = POSTFIX_PROTOCOL,
        macro_lists: dict[bytes, Sequence[str]] | None = None,
        macros: dict[str, str | None] | None = None,
        queue_id_at_mail: bool = False,
        macros_for_skipped_events: bool = True,
        flush_at_data: bool = True,
    ) -> None:
        """Prepare a session; nothing is sent until open()/negotiate().

        queue_id_at_mail: define ``i`` already at MAIL, like Postfix with
            smtpd_delay_open_until_valid_rcpt=no (default: from the second RCPT
            on, like a default Postfix).
        macros_for_skipped_events: send SMFIC_MACRO for skipped CONNECT, HELO,
            MAIL, RCPT, DATA and UNKNOWN events, as Postfix does.
        flush_at_data: write out buffered events after DATA, as Postfix does
            (False hides the MTA-side Nagle stall described above).
        """
        self.address = address
        self.timeout = timeout
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        self.offer_version = version
        self.offer_actions = actions
        self.offer_protocol = protocol
        self.macro_lists = dict(POSTFIX_MACRO_LISTS)
        if macro_lists:
            self.macro_lists.update({k: tuple(v) for k, v in macro_lists.items()})
        self.macros: dict[str, str | None] = {
            "j": "mx.vigil.test",
            "{daemon_name}": "mx.vigil.test",
            "{daemon_addr}": "127.0.0.1",
            "v": "Postfix 3.7.11",
            "{mail_mailer}": "smtp",
            "{rcpt_mailer}": "smtp",
        }
        if macros:
            self.macros.update(macros)
        self.queue_id_at_mail = queue_id_at_mail
        self.macros_for_skipped_events = macros_for_skipped_events
        self.flush_at_data = flush_at_data
        self.negotiation: Negotiation | None = None
        self.sock: socket.socket | None = None
        self._out = bytearray()
        self._body_skipped = False
        self._queue_id: str | None = None
        self._pending_queue_id: str | None = None
        # Envelope macro values of the current transaction, set by mail()/rcpt().
        self._envelope: dict[str, str | None] = {}
        self._first_rcpt: dict[str, str | None] | None = None
        # Set to [] to record every packet exchanged: (">" or "<", code, payload),
        # plus ("w", b"", b"") where a write(2) ended, to check the write pattern.
        self.trace: list[tuple[str, bytes, bytes]] | None = None

    # -- connection ---------------------------------------------------------

    def open(self) -> "MilterClient":
        """Connect the socket (negotiate() does this if needed)."""
        if self.sock is not None:
            return self
        family, sockaddr = parse_address(self.address)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(sockaddr)
        except socket.timeout as e:
            sock.close()
            raise MilterTimeout(f"connect to {self.address} timed out") from e
        except OSError:
            sock.close()
            raise
        sock.settimeout(self.timeout)
        self.sock = sock
        return self

    def close(self) -> None:
        """Close the socket without a QUIT (what a crashing MTA would do)."""
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self._out.clear()

    def __enter__(self) -> "MilterClient":
        return self.open()

    def __exit__(self, *exc) -> None:
        if self.sock is not None and exc[0] is None:
            try:
                self.quit()
            except MilterError:
                pass
        self.close()

    # -- low level ----------------------------------------------------------

    def _queue(self, cmd: bytes, payload: bytes = b"") -> None:
        self._out += struct.pack("!I", len(payload) + 1) + cmd + payload
        if self.trace is not None:
            self.trace.append((">", cmd, payload))
        if len(self._out) >= MILTER_CHUNK_SIZE:
            self.flush()  # Postfix writes a full body chunk at once, too

    def flush(self) -> None:
        """Write all queued packets in one go."""
        if not self._out:
            return
        if self.sock is None:
            raise MilterConnectionClosed("not connected")
        try:
            self.sock.sendall(self._out)
            if self.trace is not None:
                self.trace.append(("w", b"", b""))
        except socket.timeout as e:
            raise MilterTimeout("timed out writing to the filter") from e
        except (BrokenPipeError, ConnectionResetError) as e:
            raise MilterConnectionClosed(f"filter closed the connection: {e}") from e
        finally:
            self._out.clear()

    def _recv_exact(self, n: int, timeout: float | None) -> bytes:
        assert self.sock is not None
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout as e:
                raise MilterTimeout(f"no reply from the filter within {self.sock.gettimeout()} s") from e
            except ConnectionResetError as e:
                raise MilterConnectionClosed("filter reset the connection") from e
            if not chunk:
                raise MilterConnectionClosed(
                    "filter closed the connection" + (" mid-packet" if buf else ""))
            buf += chunk
        return bytes(buf)

    def read_reply(self, timeout: float | None = None) -> Reply:
        """Flush pending output and read exactly one packet from the filter."""
        self.flush()
        if self.sock is None:
            raise MilterConnectionClosed("not connected")
        (length,) = struct.unpack("!I", self._recv_exact(4, timeout))
        if length < 1:
            raise MilterProtocolError(f"bad packet length {length}")
        if length > MAX_REPLY_LEN + 1:
            raise MilterProtocolError(f"unreasonable packet length {length} (Postfix limit {MAX_REPLY_LEN})")
        packet = self._recv_exact(length, timeout)
        reply = Reply(packet[:1], packet[1:])
        if self.trace is not None:
            self.trace.append(("<", reply.code, reply.data))
        return reply

    def send_raw(self, cmd: bytes | str, payload: bytes = b"", *, flush: bool = True) -> None:
        """Send one packet as given, with no state checks: for robustness tests."""
        self._queue(_b(cmd), payload)
        if flush:
            self.flush()

    def send_bytes(self, data: bytes) -> None:
        """Send arbitrary bytes (e.g. a broken length prefix) straight to the socket."""
        self.flush()
        if self.sock is None:
            raise MilterConnectionClosed("not connected")
        self.sock.sendall(data)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """True if the filter closes the connection within `timeout` (data is discarded)."""
        self.flush()
        assert self.sock is not None
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True

    # -- macros -------------------------------------------------------------

    def _macro_names(self, cmd: bytes) -> Sequence[str]:
        stage = COMMAND_STAGE.get(cmd)
        if self.negotiation and stage in self.negotiation.symlists:
            return self.negotiation.symlists[stage]
        return self.macro_lists.get(cmd, ())

    def _macro_value(self, cmd: bytes, name: str) -> str | None:
        if name == "i":
            return self._queue_id
        if name in _ENVELOPE_MACROS:
            if cmd not in _ENVELOPE_EVENTS:
                return None
            if name in self._envelope:
                return self._envelope[name]
        return self.macros.get(name)

    def _queue_macros(self, cmd: bytes) -> None:
        payload = bytearray(cmd)
        for name in self._macro_names(cmd):
            value = self._macro_value(cmd, name)
            if value is not None:
                payload += _b(name) + b"\0" + _b(value) + b"\0"
        self._queue(SMFIC_MACRO, bytes(payload))

    # -- events -------------------------------------------------------------

    def _proto(self, flag: int) -> bool:
        return bool(self.negotiation and self.negotiation.protocol & flag)

    def _event(self, cmd: bytes, payload: bytes, skip_flag: int, nr_flag: int,
               macros: dict[str, str | None] | None = None) -> Reply | None:
        if self.negotiation is None:
            raise MilterError("negotiate() first")
        if macros:
            self.macros.update(macros)
        skipped = bool(skip_flag) and self._proto(skip_flag)
        if not skipped or (self.macros_for_skipped_events and cmd in _MACROS_EVEN_IF_SKIPPED):
            self._queue_macros(cmd)
        if skipped:
            return None
        self._queue(cmd, payload)
        if nr_flag and self._proto(nr_flag):
            return None
        return self._read_decision(cmd)

    def _read_decision(self, cmd: bytes) -> Reply:
        while True:
            reply = self.read_reply()
            if reply.code == SMFIR_PROGRESS:
                continue
            if reply.code not in DECISION_REPLIES:
                raise MilterProtocolError(f"unexpected {reply!r} in reply to {cmd!r}")
            if reply.code == SMFIR_REPLYCODE:
                _check_replycode(reply)
            elif reply.data:
                raise MilterProtocolError(f"{reply.name} followed by {len(reply.data)} data bytes")
            if reply.code == SMFIR_SKIP and cmd != SMFIC_BODY:
                raise MilterProtocolError(f"SKIP is only valid for a body chunk, got it for {cmd!r}")
            return reply

    def negotiate(self) -> Negotiation:
        """Send OPTNEG with Postfix's offer; parse and check the filter's answer."""
        self.open()
        self._queue(SMFIC_OPTNEG, struct.pack("!III", self.offer_version, self.offer_actions,
                                              self.offer_protocol))
        reply = self.read_reply()
        if reply.code != SMFIC_OPTNEG:
            raise MilterProtocolError(f"expected OPTNEG reply, got {reply!r}")
        if len(reply.data) < 12:
            raise MilterProtocolError(f"OPTNEG reply too short: {len(reply.data)} bytes")
        version, actions, protocol = struct.unpack("!III", reply.data[:12])
        if version > self.offer_version:
            raise MilterProtocolError(f"filter protocol version {version} > ours {self.offer_version}")
        if actions & ~self.offer_actions:
            raise MilterProtocolError(f"filter wants actions {actions:#x} beyond offered {self.offer_actions:#x}")
        symlists: dict[int, list[str]] = {}
        rest = reply.data[12:]
        # The optional symbol lists: (uint32 stage, NUL-terminated "name name ...") pairs.
        while rest:
            if len(rest) < 5:
                raise MilterProtocolError(f"truncated symbol list in OPTNEG: {rest!r}")
            (stage,) = struct.unpack("!I", rest[:4])
            end = rest.find(b"\0", 4)
            if end < 0:
                raise MilterProtocolError("symbol list without NUL terminator")
            symlists[stage] = _s(rest[4:end]).split()
            rest = rest[end + 1:]
        self.negotiation = Negotiation(version, actions, protocol, symlists,
                                       protocol & ~self.offer_protocol)
        return self.negotiation

    def connect(self, hostname: str = "localhost", address: str | None = "127.0.0.1",
                port: int | None = None, family: str | bytes | None = None,
                macros: dict[str, str | None] | None = None) -> Reply | None:
        """SMFIC_CONNECT.  `family` defaults from `address`: IPv4 '4', IPv6 '6',
        a path 'L' (unix), None 'U'.  Postfix sends "[ip]" as the hostname when
        the client has no verified name and "_" = "unknown [ip]".
        """
        if family is None:
            if address is None:
                fam = SMFIA_UNKNOWN
            elif address.startswith("/"):
                fam = SMFIA_UNIX
            else:
                fam = SMFIA_INET6 if ipaddress.ip_address(address).version == 6 else SMFIA_INET
        else:
            fam = {"inet": SMFIA_INET, "inet6": SMFIA_INET6, "unix": SMFIA_UNIX,
                   "unknown": SMFIA_UNKNOWN}.get(family, _b(family)) if isinstance(family, str) else family
        if port is None:
            port = 0 if fam in (SMFIA_UNIX, SMFIA_UNKNOWN) else random.randint(32768, 60999)
        if address is not None:
            known = not (hostname.startswith("[") or hostname == "unknown")
            self.macros.setdefault("_", f"{hostname if known else 'unknown'} [{address}]")
            self.macros.setdefault("{client_addr}", address)
            self.macros.setdefault("{client_port}", str(port))
            self.macros.setdefault("{client_name}", hostname if known else "unknown")
        if fam == SMFIA_UNKNOWN:
            payload = _b(hostname) + b"\0" + fam
        else:
            payload = _b(hostname) + b"\0" + fam + struct.pack("!H", port) + _b(address or "") + b"\0"
        return self._event(SMFIC_CONNECT, payload, SMFIP_NOCONNECT, SMFIP_NR_CONN, macros)

    def helo(self, name: str, macros: dict[str, str | None] | None = None) -> Reply | None:
        """SMFIC_HELO."""
        return self._event(SMFIC_HELO, _b(name) + b"\0", SMFIP_NOHELO, SMFIP_NR_HELO, macros)

    def mail(self, sender: str, *args: str, macros: dict[str, str | None] | None = None) -> Reply | None:
        """SMFIC_MAIL: starts a transaction.  `sender` gets angle brackets if it
        has none; `args` are ESMTP parameters ("SIZE=1234", "BODY=8BITMIME")."""
        self._body_skipped = False
        self._queue_id = _postfix_queue_id() if self.queue_id_at_mail else None
        self._pending_queue_id = None if self.queue_id_at_mail else _postfix_queue_id()
        if not sender.startswith("<"):
            sender = f"<{sender}>"
        bare = sender[1:-1]
        # Postfix: {mail_host} of the null sender is $myhostname.
        self._envelope = {"{mail_addr}": bare, "{mail_host}": _domain_of(bare) or self.macros.get("j")}
        self._first_rcpt = None
        payload = b"".join(_b(a) + b"\0" for a in (sender, *args))
        return self._event(SMFIC_MAIL, payload, SMFIP_NOMAIL, SMFIP_NR_MAIL, macros)

    @property
    def queue_id(self) -> str | None:
        """The value of macro ``i`` right now (None before a recipient was accepted)."""
        return self._queue_id

    def rcpt(self, recipient: str, *args: str, macros: dict[str, str | None] | None = None) -> Reply | None:
        """SMFIC_RCPT.  The queue id becomes visible after the first recipient that
        the filter did not refuse (Postfix opens the queue file then)."""
        if not recipient.startswith("<"):
            recipient = f"<{recipient}>"
        bare = recipient[1:-1]
        rcpt_macros = {"{rcpt_addr}": bare, "{rcpt_host}": _domain_of(bare)}
        self._envelope.update(rcpt_macros)
        payload = b"".join(_b(a) + b"\0" for a in (recipient, *args))
        reply = self._event(SMFIC_RCPT, payload, SMFIP_NORCPT, SMFIP_NR_RCPT, macros)
        if reply is None or reply.code in (SMFIR_CONTINUE, SMFIR_ACCEPT, SMFIR_DISCARD):
            if self._first_rcpt is None:
                self._first_rcpt = rcpt_macros
            if self._queue_id is None:
                self._queue_id = self._pending_queue_id or _postfix_queue_id()
        return reply

    def data(self, macros: dict[str, str | None] | None = None) -> Reply | None:
        """SMFIC_DATA, then flush: Postfix's smtpd hands the connection to the
        cleanup server here, so what it buffered goes out as one write even if
        no reply is expected."""
        if self._first_rcpt:
            self._envelope.update(self._first_rcpt)  # what Postfix showed at DATA
        reply = self._event(SMFIC_DATA, b"", SMFIP_NODATA, SMFIP_NR_DATA, macros)
        if self.flush_at_data:
            self.flush()
        return reply

    def header(self, name: str | bytes, value: str | bytes) -> Reply | None:
        """SMFIC_HEADER.  `value` goes out byte-exact: pass the leading space if
        HDR_LEADSPC was negotiated and you want one; fold with "\\n" like Postfix."""
        return self._event(SMFIC_HEADER, _b(name) + b"\0" + _b(value) + b"\0",
                           SMFIP_NOHDRS, SMFIP_NR_HDR)

    def eoh(self) -> Reply | None:
        """SMFIC_EOH."""
        return self._event(SMFIC_EOH, b"", SMFIP_NOEOH, SMFIP_NR_EOH)

    def body(self, data: bytes) -> list[Reply | None]:
        """SMFIC_BODY in chunks of at most 65535 bytes.

        Stops early after a SKIP (remembered until the next MAIL: later calls
        send nothing, as Postfix does) or a decision other than CONTINUE.
        An empty `data` sends nothing.
        """
        replies: list[Reply | None] = []
        for off in range(0, len(data), MILTER_CHUNK_SIZE):
            if self._body_skipped:
                break
            reply = self._event(SMFIC_BODY, bytes(data[off:off + MILTER_CHUNK_SIZE]),
                                SMFIP_NOBODY, SMFIP_NR_BODY)
            replies.append(reply)
            if reply is not None and reply.code == SMFIR_SKIP:
                if not self._proto(SMFIP_SKIP):
                    raise MilterProtocolError("SKIP reply although SMFIP_SKIP was not negotiated")
                self._body_skipped = True
            elif reply is not None and reply.code != SMFIR_CONTINUE:
                break
        return replies

    def eom(self) -> EomResult:
        """SMFIC_BODYEOB: read modifications until the final decision."""
        if self.negotiation is None:
            raise MilterError("negotiate() first")
        self._queue_macros(SMFIC_BODYEOB)
        self._queue(SMFIC_BODYEOB)
        mods: list[Modification] = []
        while True:
            reply = self.read_reply()
            if reply.code == SMFIR_PROGRESS:
                continue
            if reply.code in MODIFICATION_REPLIES:
                mods.append(parse_modification(reply))
                continue
            if reply.code == SMFIR_SKIP or reply.code not in DECISION_REPLIES:
                raise MilterProtocolError(f"unexpected {reply!r} in reply to end of message")
            if reply.code == SMFIR_REPLYCODE:
                _check_replycode(reply)
            return EomResult(reply, mods)

    def unknown(self, command: str) -> Reply | None:
        """SMFIC_UNKNOWN: an SMTP command the MTA did not recognise."""
        return self._event(SMFIC_UNKNOWN, _b(command) + b"\0", SMFIP_NOUNKNOWN, SMFIP_NR_UNKN)

    def abort(self) -> None:
        """SMFIC_ABORT: end the transaction (no reply; queued until the next flush,
        as Postfix does)."""
        self._queue(SMFIC_ABORT)
        self._queue_id = None
        self._envelope = {}
        self._first_rcpt = None
        self._body_skipped = False

    def quit(self) -> None:
        """SMFIC_QUIT and close."""
        if self.sock is None:
            return
        self._queue(SMFIC_QUIT)
        try:
            self.flush()
        finally:
            self.close()

    def quit_nc(self) -> None:
        """SMFIC_QUIT_NC: the filter resets; a new negotiate() on this socket follows."""
        self._queue(SMFIC_QUIT_NC)
        self.flush()
        self.negotiation = None

    # -- whole messages ------------------------------------------------------

    def send_message(self, mail_from: str, rcpts: Iterable[str], message: bytes, *,
                     mail_args: Sequence[str] = (), macros: dict[str, str | None] | None = None,
                     abort_after: bool = True) -> "MessageResult":
        """Run one transaction on an already negotiated+connected session, with
        Postfix's event order and early exits, and return what happened.

        abort_after: send SMFIC_ABORT at the end, as Postfix does after every
        transaction (it is queued and goes out with the next event).
        """
        assert self.negotiation is not None, "negotiate() first"
        res = MessageResult(negotiation=self.negotiation)
        try:
            _run_transaction(self, res, mail_from, list(rcpts), message, mail_args, macros or {})
        finally:
            if abort_after and self.sock is not None:
                self.abort()
        return res


def _check_replycode(reply: Reply) -> None:
    """Postfix's sanity check on SMFIR_REPLYCODE: "4XX 4.x.x text" or "5XX 5.x.x text"."""
    t = reply.data.rstrip(b"\0")
    if not reply.data.endswith(b"\0"):
        raise MilterProtocolError(f"REPLYCODE without NUL terminator: {reply.data!r}")
    if (len(t) < 5 or t[0:1] not in (b"4", b"5") or not t[1:3].isdigit()
            or t[3:4] not in (b" ", b"-") or t[4:5] != t[0:1]):
        raise MilterProtocolError(f"malformed REPLYCODE (Postfix rejects it): {t!r}")


# ---------------------------------------------------------------------------
# Whole messages
# ---------------------------------------------------------------------------

# A header line as Postfix's is_header() sees it: printable non-space, non-colon
# name, optional blanks, colon.
_HEADER_RE = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")


def split_message(raw: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Split an RFC 5322 message the way Postfix presents it to a filter.

    Returns (headers, body).  Each header is (name, raw_value) where raw_value
    is everything after the colon, leading blanks included (see send_message
    for the one-space rule), with folded lines joined by "\\n" and no CR.
    Lines may end in CRLF or bare LF; the body is re-joined with CRLF and a
    last line without a newline gets one.  The header section ends at the
    empty line, or at the first line that is neither a header nor a
    continuation (that line then starts the body, as in Postfix).
    """
    lines = re.split(rb"\r?\n", raw)
    if lines and lines[-1] == b"":
        lines.pop()  # the message ended in a newline: no extra empty line
    headers: list[tuple[bytes, bytes]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line == b"":
            i += 1
            break
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + b"\n" + line)
            i += 1
            continue
        m = _HEADER_RE.match(line)
        if not m:
            break
        headers.append((m.group(1), line[m.end():]))
        i += 1
    body = b"".join(line + b"\r\n" for line in lines[i:])
    return headers, body


@dataclasses.dataclass
class MessageResult:
    """What a filter did with one message (see send_message)."""

    negotiation: Negotiation | None = None
    # The decision that ended the transaction; None if nothing decided (all
    # events skipped and EOM accepted = action "ACCEPT").
    final: Reply | None = None
    # The event that decided: "connect", "helo", "mail", "rcpt", "data",
    # "header", "eoh", "body" or "eom".
    stage: str | None = None
    modifications: list[Modification] = dataclasses.field(default_factory=list)
    # Every event sent, in order, with its reply (None = no reply expected).
    replies: list[tuple[str, Reply | None]] = dataclasses.field(default_factory=list)
    rejected_rcpts: list[tuple[str, Reply]] = dataclasses.field(default_factory=list)
    # Set when the message was sent in one session (send_message()).
    connect_reply: Reply | None = None
    helo_reply: Reply | None = None

    @property
    def action(self) -> str:
        """ACCEPT (also for CONTINUE at EOM), REJECT, TEMPFAIL, REPLYCODE, DISCARD,
        SHUTDOWN or CONN_FAIL."""
        if self.final is None or self.final.code == SMFIR_CONTINUE:
            return "ACCEPT"
        return self.final.name

    @property
    def smtp_reply(self) -> str | None:
        """The SMTP reply Postfix would send, e.g. "550 5.7.1 Command rejected"."""
        return self.final.smtp_reply() if self.final else None

    @property
    def reply_code(self) -> int | None:
        return self.final.smtp_code if self.final else None

    @property
    def reply_text(self) -> str | None:
        return self.final.text if self.final else None

    @property
    def quarantine(self) -> str | None:
        q = [m.reason for m in self.modifications if isinstance(m, Quarantine)]
        return q[-1] if q else None

    @property
    def header_changes(self) -> list[Modification]:
        return [m for m in self.modifications if isinstance(m, (AddHeader, InsertHeader, ChangeHeader))]

    @property
    def added_headers(self) -> list[tuple[str, str]]:
        """(name, value) of ADDHEADER and INSHEADER modifications, in order."""
        return [(m.name, m.value) for m in self.modifications if isinstance(m, (AddHeader, InsertHeader))]

    def as_dict(self) -> dict:
        return {
            "action": self.action, "stage": self.stage, "smtp_reply": self.smtp_reply,
            "quarantine": self.quarantine,
            "modifications": [{"type": type(m).__name__, **dataclasses.asdict(m)}
                              for m in self.modifications if not isinstance(m, ReplaceBody)],
            "replies": [(stage, repr(r) if r else None) for stage, r in self.replies],
            "rejected_rcpts": [(r, repr(rep)) for r, rep in self.rejected_rcpts],
        }


_FINAL_FOR_MESSAGE = (SMFIR_REJECT, SMFIR_TEMPFAIL, SMFIR_REPLYCODE, SMFIR_DISCARD,
                      SMFIR_ACCEPT, SMFIR_SHUTDOWN, SMFIR_CONN_FAIL)


def _decided(res: MessageResult, stage: str, reply: Reply | None) -> bool:
    """Record a reply; True if it ends the message (Postfix stops sending events)."""
    res.replies.append((stage, reply))
    if reply is not None and reply.code in _FINAL_FOR_MESSAGE:
        res.final, res.stage = reply, stage
        return True
    return False


def _run_transaction(c: MilterClient, res: MessageResult, mail_from: str, rcpts: list[str],
                     message: bytes, mail_args: Sequence[str], macros: dict[str, str | None]) -> None:
    if _decided(res, "mail", c.mail(mail_from, *mail_args, macros=macros)):
        return
    accepted = 0
    for rcpt in rcpts:
        reply = c.rcpt(rcpt)
        res.replies.append(("rcpt", reply))
        if reply is not None and reply.code in (SMFIR_REJECT, SMFIR_TEMPFAIL, SMFIR_REPLYCODE):
            res.rejected_rcpts.append((rcpt, reply))  # only this recipient is refused
            continue
        if reply is not None and reply.code in (SMFIR_ACCEPT, SMFIR_DISCARD, SMFIR_SHUTDOWN, SMFIR_CONN_FAIL):
            res.final, res.stage = reply, "rcpt"
            return
        accepted += 1
    if accepted == 0:
        # Every recipient refused: the SMTP client never gets to DATA.
        res.final, res.stage = res.rejected_rcpts[-1][1] if res.rejected_rcpts else None, "rcpt"
        return
    if _decided(res, "data", c.data()):
        return
    headers, body = split_message(message)
    leadspc = c._proto(SMFIP_HDR_LEADSPC)
    for name, value in headers:
        if not leadspc and value.startswith(b" "):
            value = value[1:]  # Postfix eats one space (not a tab) after the colon
        if _decided(res, "header", c.header(name, value)):
            return
    if _decided(res, "eoh", c.eoh()):
        return
    for reply in c.body(body):
        if _decided(res, "body", reply):
            return
    eom = c.eom()
    res.modifications = eom.modifications
    res.replies.append(("eom", eom.reply))
    res.final, res.stage = eom.reply, "eom"


def send_message(address: str, mail_from: str, rcpts: Iterable[str], message: bytes, *,
                 helo: str = "client.example.net", client_ip: str = "192.0.2.25",
                 client_name: str | None = None, client_port: int | None = None,
                 macros: dict[str, str | None] | None = None, mail_args: Sequence[str] = (),
                 timeout: float = 10.0, **client_kwargs) -> MessageResult:
    """One SMTP session with one message, as Postfix would run it past `address`.

    client_name defaults to "[client_ip]" (what Postfix sends for a client
    without a verified reverse name).  Extra keyword arguments go to
    MilterClient (e.g. protocol=, macro_lists=).  The result's `action`,
    `smtp_reply`, `modifications`, `quarantine` and `replies` tell the story.
    """
    name = client_name or f"[{client_ip}]"
    with MilterClient(address, timeout=timeout, macros=macros, **client_kwargs) as c:
        res = MessageResult(negotiation=c.negotiate())
        res.connect_reply = c.connect(name, client_ip, client_port)
        if _decided(res, "connect", res.connect_reply):
            c.close()  # Postfix drops the filter connection without QUIT here
            return res
        res.helo_reply = c.helo(helo)
        if _decided(res, "helo", res.helo_reply):
            c.close()
            return res
        msg = c.send_message(mail_from, rcpts, message, mail_args=mail_args)
        msg.connect_reply, msg.helo_reply = res.connect_reply, res.helo_reply
        msg.replies[:0] = res.replies
        c.abort()  # Postfix: ABORT, then QUIT at the end of the SMTP session
        return msg


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: negotiate with a filter, optionally send one message, print JSON."""
    ap = argparse.ArgumentParser(description="Talk to a milter the way Postfix 3.7 does.")
    ap.add_argument("address", help="inet:PORT@HOST, inet:HOST:PORT or unix:/path")
    ap.add_argument("message", nargs="?", help="RFC 5322 message file ('-' = stdin); "
                    "omit to only negotiate")
    ap.add_argument("--from", dest="mail_from", default="sender@example.org")
    ap.add_argument("--rcpt", action="append", default=[], help="repeatable")
    ap.add_argument("--helo", default="client.example.net")
    ap.add_argument("--client-ip", default="192.0.2.25")
    ap.add_argument("--client-name", default=None)
    ap.add_argument("--macro", action="append", default=[], metavar="NAME=VALUE",
                    help="macro value, e.g. {auth_authen}=alice (repeatable)")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args(argv)
    macros = dict(m.split("=", 1) for m in args.macro)
    if args.message is None:
        with MilterClient(args.address, timeout=args.timeout) as c:
            print(json.dumps(c.negotiate().as_dict(), indent=2))
        return 0
    raw = sys.stdin.buffer.read() if args.message == "-" else open(args.message, "rb").read()
    res = send_message(args.address, args.mail_from, args.rcpt or ["rcpt@example.com"], raw,
                       helo=args.helo, client_ip=args.client_ip, client_name=args.client_name,
                       macros=macros, timeout=args.timeout)
    out = {"negotiation": res.negotiation.as_dict() if res.negotiation else None, **res.as_dict()}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
