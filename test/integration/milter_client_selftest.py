"""Self-test of test/support/milter_client.py against real libmilter and a fake filter.

    pytest test/integration/milter_client_selftest.py [--vigil-noop-milter PATH]

Runs vigil-noop-milter (a libmilter filter) on free 127.0.0.1 ports and on a
unix socket, and a scripted in-process fake filter for what the noop cannot
do (symbol lists, rejections, every modification, SKIP, hung filters, bad
replies).
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import struct
import tempfile
import threading
import time

import pytest

import milter_client as mc
import vigil_fixtures as vf

# What the noop asks for by default: skip every event, no reply to any.
NOOP_SKIPS = (mc.SMFIP_NOCONNECT | mc.SMFIP_NOHELO | mc.SMFIP_NOMAIL | mc.SMFIP_NORCPT | mc.SMFIP_NOBODY
              | mc.SMFIP_NOHDRS | mc.SMFIP_NOEOH | mc.SMFIP_NOUNKNOWN | mc.SMFIP_NODATA)
NOOP_NO_REPLIES = (mc.SMFIP_NR_CONN | mc.SMFIP_NR_HELO | mc.SMFIP_NR_MAIL | mc.SMFIP_NR_RCPT | mc.SMFIP_NR_DATA
                   | mc.SMFIP_NR_UNKN | mc.SMFIP_NR_HDR | mc.SMFIP_NR_EOH | mc.SMFIP_NR_BODY)

# A header with leading spaces, a folded header (space and tab continuation),
# a header with a tab after the colon, and an empty one.
HEADERS = (b"From: Alice <alice@example.org>\r\n"
           b"To: bob@example.com\r\n"
           b"X-Lead:   three leading spaces\r\n"
           b"Subject: folded\r\n"
           b" second line\r\n"
           b"\tthird line\r\n"
           b"X-Tab:\ttab value\r\n"
           b"X-Empty:\r\n")
BIG_BODY = b"".join(b"%06d The quick brown fox jumps over the lazy dog 0123456789\r\n" % i for i in range(3500))
assert len(BIG_BODY) > 200 * 1024


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture
def noop(binaries):
    """noop(*flags, address=None): runs vigil-noop-milter with `flags` (test/support/vigil_fixtures.py)
    and yields its address."""
    @contextlib.contextmanager
    def run(*flags: str, address: str | None = None):
        with vf.NoopMilter(binaries.noop, *flags, address=address) as n:
            yield n.address
    return run


class FakeFilter:
    """A scripted milter on 127.0.0.1: records every packet, answers like a filter.

    `respond(cmd, data)` may return a list of (code, payload) replies to send,
    or None for the default: OPTNEG answer for OPTNEG, nothing for MACRO,
    ABORT, QUIT and events covered by a negotiated NR_* flag, ACCEPT for
    end-of-message, CONTINUE otherwise.
    """

    NR_FOR = {b"C": mc.SMFIP_NR_CONN, b"H": mc.SMFIP_NR_HELO, b"M": mc.SMFIP_NR_MAIL, b"R": mc.SMFIP_NR_RCPT,
              b"T": mc.SMFIP_NR_DATA, b"U": mc.SMFIP_NR_UNKN, b"L": mc.SMFIP_NR_HDR, b"N": mc.SMFIP_NR_EOH,
              b"B": mc.SMFIP_NR_BODY}

    def __init__(self, actions: int = 0, protocol: int = 0, symlists: dict[int, str] | None = None,
                 respond=None) -> None:
        self.actions, self.protocol = actions, protocol
        self.symlists = symlists or {}
        self.respond = respond or (lambda cmd, data: None)
        self.received: list[tuple[bytes, bytes]] = []
        self.session_over = threading.Event()  # set when a client connection ends
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"inet:{self.listener.getsockname()[1]}@127.0.0.1"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                try:
                    while True:
                        (length,) = struct.unpack("!I", vf.recv_exact(conn, 4))
                        packet = vf.recv_exact(conn, length)
                        cmd, data = packet[:1], packet[1:]
                        self.received.append((cmd, data))
                        replies = self.respond(cmd, data)
                        if replies is None:
                            replies = self._default(cmd)
                        for code, payload in replies:
                            conn.sendall(struct.pack("!I", len(payload) + 1) + code + payload)
                        if cmd == b"Q":
                            break
                except (EOFError, OSError):
                    pass
            self.session_over.set()

    def _default(self, cmd: bytes) -> list[tuple[bytes, bytes]]:
        if cmd == b"O":
            extra = b"".join(struct.pack("!I", k) + v.encode() + b"\0" for k, v in self.symlists.items())
            return [(b"O", struct.pack("!III", 6, self.actions, self.protocol) + extra)]
        if cmd in (b"D", b"A", b"Q", b"K") or self.protocol & self.NR_FOR.get(cmd, 0):
            return []
        if cmd == b"E":
            return [(b"a", b"")]
        return [(b"c", b"")]

    def packets(self, cmd: bytes) -> list[bytes]:
        """Payloads received with command `cmd`, once the client has gone."""
        if not self.session_over.wait(5):
            raise AssertionError("the client did not end its session")
        return [d for c, d in self.received if c == cmd]

    def macros(self, stage: bytes) -> list[dict[str, str]]:
        """The SMFIC_MACRO packets received for one command letter, decoded."""
        out = []
        for data in self.packets(b"D"):
            if data[:1] == stage:
                parts = data[1:].split(b"\0")[:-1]
                out.append({k.decode(): v.decode() for k, v in zip(parts[0::2], parts[1::2])})
        return out

    def close(self) -> None:
        self.listener.close()


def sent(client: mc.MilterClient, cmd: bytes) -> list[bytes]:
    """Payloads of the packets the client sent with command `cmd`."""
    return [p for d, c, p in client.trace if d == ">" and c == cmd]


# ---------------------------------------------------------------------------
# Tests against libmilter (vigil-noop-milter)
# ---------------------------------------------------------------------------

def test_noop_negotiates_skip_and_no_reply_for_everything(noop):
    with noop() as addr, mc.MilterClient(addr, timeout=5) as c:
        n = c.negotiate()
        assert n.version == 6, n.version
        assert n.actions == 0, n.action_names
        assert n.protocol == NOOP_SKIPS | NOOP_NO_REPLIES, n.protocol_names
        assert n.symlists == {}
        assert n.unoffered_protocol == 0


def test_noop_add_header_on_every_message_of_one_session(noop):
    """Folded + leading-space headers, empty body and 200 KiB body, one connection."""
    messages = [HEADERS + b"\r\nshort body\r\n", HEADERS + b"\r\n", HEADERS + b"\r\n" + BIG_BODY,
                b"Subject: no blank line and no body"]
    with noop("--add-header") as addr, mc.MilterClient(addr, timeout=5) as c:
        c.trace = []
        n = c.negotiate()
        assert n.actions == mc.SMFIF_ADDHDRS, n.action_names
        assert c.connect("client.example.net", "192.0.2.1", 40000) is None  # skipped
        assert c.helo("client.example.net") is None
        for raw in messages:
            res = c.send_message("alice@example.org", ["bob@example.com"], raw)
            assert res.action == "ACCEPT" and res.stage == "eom", res.as_dict()
            assert res.modifications == [mc.AddHeader("X-Noop", "1")], res.modifications
            assert res.added_headers == [("X-Noop", "1")]
            assert all(r is None for stage, r in res.replies if stage != "eom"), res.replies
        # Skipped events: Postfix sends the macros of MAIL/RCPT/DATA but not the
        # events, and nothing at all for headers, EOH and body.
        for cmd in (b"C", b"H", b"M", b"R", b"T", b"L", b"N", b"B"):
            assert sent(c, cmd) == [], (cmd, len(sent(c, cmd)))
        stages = [p[:1] for p in sent(c, b"D")]
        assert stages.count(b"M") == 4 and stages.count(b"E") == 4, stages
        assert b"L" not in stages and b"B" not in stages and b"N" not in stages, stages
        assert len(sent(c, b"E")) == 4 and len(sent(c, b"A")) == 4
        # Postfix's write pattern: what is buffered goes out when a reply is due
        # and when smtpd hands the connection over after DATA; then cleanup
        # writes end-of-message.  (The ABORT after each message waits for the
        # next write.)  Two writes with no reply in between is what a filter
        # skipping DATA gets from Postfix.
        writes, current = [], []
        for direction, code, payload in c.trace:
            if direction == "w":
                writes.append(current)
                current = []
            elif direction == ">":
                current.append(code + payload[:1] if code == b"D" else code)
        eom = [b"DE", b"E"]
        assert writes == [[b"O"], [b"DC", b"DH", b"DM", b"DR", b"DT"], eom] + [
            [b"A", b"DM", b"DR", b"DT"], eom] * 3, writes


def test_noop_receive_mode_gets_headers_and_body_as_postfix_sends_them(noop):
    with noop("--receive", "--add-header") as addr, mc.MilterClient(addr, timeout=5) as c:
        c.trace = []
        n = c.negotiate()
        assert n.protocol == NOOP_NO_REPLIES, n.protocol_names  # nothing skipped
        c.connect("client.example.net", "192.0.2.1", 40000)
        c.helo("client.example.net")
        res = c.send_message("alice@example.org", ["bob@example.com"], HEADERS + b"\r\n" + BIG_BODY)
        assert res.action == "ACCEPT" and res.added_headers == [("X-Noop", "1")], res.as_dict()
        headers = sent(c, b"L")
        # No HDR_LEADSPC negotiated: Postfix eats one space after the colon, not a tab.
        assert b"X-Lead\0  three leading spaces\0" in headers, headers
        assert b"Subject\0folded\n second line\n\tthird line\0" in headers, headers
        assert b"X-Tab\0\ttab value\0" in headers and b"X-Empty\0\0" in headers, headers
        assert len(headers) == 6
        chunks = sent(c, b"B")
        assert [len(x) for x in chunks[:-1]] == [65535] * (len(chunks) - 1), [len(x) for x in chunks]
        assert b"".join(chunks) == BIG_BODY, "body must arrive unchanged"
        # Empty body: no SMFIC_BODY at all, straight to end of message.
        before = len(sent(c, b"B"))
        res = c.send_message("alice@example.org", ["bob@example.com"], HEADERS + b"\r\n")
        assert res.action == "ACCEPT" and len(sent(c, b"B")) == before


def test_noop_over_unix_socket(noop):
    with tempfile.TemporaryDirectory(prefix="milter-selftest-") as tmp:
        with noop("--add-header", address=f"unix:{tmp}/noop.sock") as addr:
            res = mc.send_message(addr, "alice@example.org", ["bob@example.com"], HEADERS + b"\r\nhi\r\n",
                                  timeout=5)
            assert res.negotiation.actions == mc.SMFIF_ADDHDRS
            assert res.action == "ACCEPT" and res.added_headers == [("X-Noop", "1")], res.as_dict()


def test_nodelay_and_answer_data_remove_the_40ms_stalls(noop):
    """Over TCP the stalls cost >= 40 ms per message; with both fixes far less."""
    with noop("--add-header", "--nodelay", "--answer-data") as addr, mc.MilterClient(addr, timeout=5) as c:
        n = c.negotiate()
        assert not n.protocol & (mc.SMFIP_NODATA | mc.SMFIP_NR_DATA), n.protocol_names
        c.connect("client.example.net", "192.0.2.1", 40000)
        c.helo("client.example.net")
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            res = c.send_message("alice@example.org", ["bob@example.com"], HEADERS + b"\r\nbody\r\n")
            times.append(time.perf_counter() - t0)
            assert res.added_headers == [("X-Noop", "1")]
        median_ms = statistics.median(times) * 1e3
        assert median_ms < 20, f"median {median_ms:.1f} ms: a Nagle stall is back"


def test_malformed_packet_makes_libmilter_drop_only_that_connection(noop):
    with noop("--receive") as addr:
        c = mc.MilterClient(addr, timeout=5)
        c.negotiate()
        c.connect("client.example.net", "192.0.2.1", 40000)
        c.mail("alice@example.org")
        c.rcpt("bob@example.com")
        c.send_raw(b"L", b"header-without-NUL")  # out of spec: no NUL terminators
        c.send_raw(b"E")
        assert c.wait_closed(5), "libmilter should close the connection"
        c.close()
        res = mc.send_message(addr, "alice@example.org", ["bob@example.com"], b"Subject: x\r\n\r\nhi\r\n",
                              timeout=5)
        assert res.action == "ACCEPT", res.as_dict()


# ---------------------------------------------------------------------------
# Tests against the fake filter
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def fake(**kwargs):
    f = FakeFilter(**kwargs)
    try:
        yield f
    finally:
        f.close()


def test_offer_is_postfix_3_7s():
    with fake() as f:
        with mc.MilterClient(f.address, timeout=5) as c:
            c.negotiate()
        (optneg,) = f.packets(b"O")
        assert struct.unpack("!III", optneg) == (6, 0x1FF, 0x1FFFFF), optneg


def test_leadspc_keeps_the_leading_space():
    with fake(protocol=mc.SMFIP_HDR_LEADSPC) as f:
        res = mc.send_message(f.address, "a@example.org", ["b@example.com"], HEADERS + b"\r\nx\r\n", timeout=5)
        assert res.action == "ACCEPT"
        headers = f.packets(b"L")
        assert b"X-Lead\0   three leading spaces\0" in headers, headers
        assert b"Subject\0 folded\n second line\n\tthird line\0" in headers, headers
        assert b"From\0 Alice <alice@example.org>\0" in headers and b"X-Tab\0\ttab value\0" in headers


def test_symbol_lists_choose_the_macros():
    symlists = {mc.SMFIM_CONNECT: "j {client_addr}", mc.SMFIM_ENVFROM: "{mail_addr} {auth_authen}",
                mc.SMFIM_EOM: "i {rcpt_addr}"}
    with fake(actions=mc.SMFIF_SETSYMLIST, symlists=symlists) as f:
        res = mc.send_message(f.address, "alice@example.org", ["bob@example.com", "carol@example.com"],
                              b"Subject: x\r\n\r\nx\r\n", client_ip="192.0.2.7",
                              macros={"{auth_authen}": "alice"}, timeout=5)
        assert res.negotiation.symlists == {0: ["j", "{client_addr}"], 2: ["{mail_addr}", "{auth_authen}"],
                                            5: ["i", "{rcpt_addr}"]}
        assert f.macros(b"C") == [{"j": "mx.vigil.test", "{client_addr}": "192.0.2.7"}], f.macros(b"C")
        assert f.macros(b"M") == [{"{mail_addr}": "alice@example.org", "{auth_authen}": "alice"}]
        # Default list for RCPT; queue id only once a recipient was accepted.
        r1, r2 = f.macros(b"R")
        assert "i" not in r1 and r1["{rcpt_addr}"] == "bob@example.com", r1
        assert r2["i"] and r2["{rcpt_addr}"] == "carol@example.com", r2
        # At end of message Postfix defines no envelope macros.
        assert f.macros(b"E") == [{"i": r2["i"]}], f.macros(b"E")


def test_rejections_and_their_smtp_replies():
    def respond(cmd, data):
        if cmd == b"R" and data.startswith(b"<nobody@"):
            return [(b"y", b"550 5.1.1 no such user\0")]
        if cmd == b"L" and data.startswith(b"X-Bad\0"):
            return [(b"r", b"")]
        return None

    with fake(respond=respond) as f:
        res = mc.send_message(f.address, "a@example.org", ["nobody@example.com", "b@example.com"],
                              b"Subject: ok\r\nX-Bad: 1\r\nX-Never: 1\r\n\r\nbody\r\n", timeout=5)
        assert [r for r, _ in res.rejected_rcpts] == ["nobody@example.com"]
        assert res.rejected_rcpts[0][1].smtp_reply() == "550 5.1.1 no such user"
        assert res.action == "REJECT" and res.stage == "header", res.as_dict()
        assert res.smtp_reply == "550 5.7.1 Command rejected" and res.reply_code == 550
        assert not any(d.startswith(b"X-Never") for d in f.packets(b"L")), "no events after a decision"
        assert f.packets(b"E") == [], "no end-of-message after a rejection"

    with fake(respond=lambda cmd, data: [(b"t", b"")] if cmd == b"M" else None) as f:
        res = mc.send_message(f.address, "a@example.org", ["b@example.com"], b"Subject: x\r\n\r\n", timeout=5)
        assert (res.action, res.stage, res.reply_code) == ("TEMPFAIL", "mail", 451), res.as_dict()
        assert f.packets(b"R") == []

    with fake(respond=lambda cmd, data: [(b"y", b"554 5.7.1 go away\0")] if cmd == b"C" else None) as f:
        res = mc.send_message(f.address, "a@example.org", ["b@example.com"], b"Subject: x\r\n\r\n", timeout=5)
        assert (res.action, res.stage, res.smtp_reply) == ("REPLYCODE", "connect", "554 5.7.1 go away")


def test_every_modification_is_decoded():
    eom_replies = [
        (b"p", b""),
        (b"i", struct.pack("!I", 0) + b"X-First\0 1\0"),
        (b"m", struct.pack("!I", 2) + b"Subject\0 changed\0"),
        (b"m", struct.pack("!I", 1) + b"X-Gone\0\0"),
        (b"h", b"X-Added\0 multi\n\tline\0"),
        (b"+", b"<new@example.com>\0"),
        (b"2", b"<par@example.com>\0NOTIFY=NEVER\0"),
        (b"-", b"<b@example.com>\0"),
        (b"e", b"<bounce@example.org>\0"),
        (b"q", b"looks like spam\0"),
        (b"y", b"451 4.7.1 try 100%% later\0"),
    ]
    with fake(actions=0x1FF, respond=lambda cmd, data: eom_replies if cmd == b"E" else None) as f:
        res = mc.send_message(f.address, "a@example.org", ["b@example.com"], b"Subject: x\r\n\r\nx\r\n", timeout=5)
    assert res.modifications == [
        mc.InsertHeader(0, "X-First", " 1"), mc.ChangeHeader(2, "Subject", " changed"),
        mc.ChangeHeader(1, "X-Gone", ""), mc.AddHeader("X-Added", " multi\n\tline"),
        mc.AddRcpt("<new@example.com>"), mc.AddRcpt("<par@example.com>", "NOTIFY=NEVER"),
        mc.DelRcpt("<b@example.com>"), mc.ChangeFrom("<bounce@example.org>"), mc.Quarantine("looks like spam"),
    ], res.modifications
    assert res.modifications[2].is_delete
    assert res.quarantine == "looks like spam"
    assert (res.action, res.stage) == ("REPLYCODE", "eom")
    assert res.reply_text == "451 4.7.1 try 100%% later"
    assert res.smtp_reply == "451 4.7.1 try 100% later" and res.reply_code == 451  # Postfix un-doubles %
    assert [type(m).__name__ for m in res.header_changes] == ["InsertHeader", "ChangeHeader", "ChangeHeader",
                                                              "AddHeader"]


def test_skip_stops_the_body():
    with fake(protocol=mc.SMFIP_SKIP, respond=lambda cmd, data: [(b"s", b"")] if cmd == b"B" else None) as f:
        res = mc.send_message(f.address, "a@example.org", ["b@example.com"], b"Subject: x\r\n\r\n" + BIG_BODY,
                              timeout=5)
        assert res.action == "ACCEPT" and res.stage == "eom", res.as_dict()
        assert len(f.packets(b"B")) == 1 and len(f.packets(b"E")) == 1
        assert ("body", mc.Reply(b"s")) in res.replies


def test_no_reply_flags_are_honoured():
    """The fake answers only OPTNEG and EOM; waiting for any other reply would time out."""
    proto = NOOP_NO_REPLIES
    with fake(protocol=proto) as f:
        t0 = time.monotonic()
        res = mc.send_message(f.address, "a@example.org", ["b@example.com"], HEADERS + b"\r\n" + BIG_BODY,
                              timeout=2)
        assert res.action == "ACCEPT" and time.monotonic() - t0 < 1.5
        assert all(r is None for stage, r in res.replies if stage != "eom"), res.replies
        assert len(f.packets(b"L")) == 6 and len(f.packets(b"B")) == 4


def test_skip_flags_suppress_the_events():
    with fake(protocol=NOOP_SKIPS) as f:
        mc.send_message(f.address, "a@example.org", ["b@example.com"], HEADERS + b"\r\nx\r\n", timeout=5)
        f.packets(b"Q")  # wait for the end of the session
        letters = {c for c, _ in f.received}
        assert letters == {b"O", b"D", b"E", b"A", b"Q"}, letters


def test_hung_filter_times_out():
    with fake(respond=lambda cmd, data: [] if cmd == b"M" else None) as f:
        with mc.MilterClient(f.address, timeout=1.0) as c:
            c.negotiate()
            c.connect("h", "192.0.2.1", 1)
            t0 = time.monotonic()
            try:
                c.mail("a@example.org")
            except mc.MilterTimeout:
                pass
            else:
                raise AssertionError("no timeout")
            assert 0.9 < time.monotonic() - t0 < 3


def test_bad_replies_are_protocol_errors():
    cases = [
        ("malformed REPLYCODE", lambda cmd, data: [(b"y", b"250 ok\0")] if cmd == b"M" else None),
        ("modification outside EOM", lambda cmd, data: [(b"h", b"X\0y\0")] if cmd == b"M" else None),
        ("ACCEPT with data", lambda cmd, data: [(b"a", b"junk")] if cmd == b"M" else None),
        ("SKIP for MAIL", lambda cmd, data: [(b"s", b"")] if cmd == b"M" else None),
    ]
    for name, respond in cases:
        with fake(respond=respond) as f, mc.MilterClient(f.address, timeout=2) as c:
            c.negotiate()
            c.connect("h", "192.0.2.1", 1)
            try:
                c.mail("a@example.org")
            except mc.MilterProtocolError:
                continue
            raise AssertionError(f"{name}: not detected")
    with fake() as f, mc.MilterClient(f.address, timeout=2) as c:
        c.negotiate()
        f.respond = lambda cmd, data: [(b"c", b"x" * (mc.MAX_REPLY_LEN + 1))] if cmd == b"C" else None
        try:
            c.connect("h", "192.0.2.1", 1)
        except mc.MilterProtocolError:
            pass
        else:
            raise AssertionError("oversized reply not detected")


# ---------------------------------------------------------------------------
# Pure functions
# ---------------------------------------------------------------------------


def test_split_message_like_postfix():
    headers, body = mc.split_message(b"A: 1\nB:  two\n\tfolded\r\nC : x\n\nline\nlast")
    assert headers == [(b"A", b" 1"), (b"B", b"  two\n\tfolded"), (b"C", b" x")], headers
    assert body == b"line\r\nlast\r\n", body
    headers, body = mc.split_message(b"Subject: x\r\nnot a header line\r\nmore\r\n")
    assert headers == [(b"Subject", b" x")] and body == b"not a header line\r\nmore\r\n"
    assert mc.split_message(b"Subject: x\r\n\r\n") == ([(b"Subject", b" x")], b"")


def test_address_forms():
    assert mc.parse_address("inet:8899@127.0.0.1") == (socket.AF_INET, ("127.0.0.1", 8899))
    assert mc.parse_address("inet:127.0.0.1:8899") == (socket.AF_INET, ("127.0.0.1", 8899))
    assert mc.parse_address("inet6:8899@::1") == (socket.AF_INET6, ("::1", 8899))
    assert mc.parse_address("inet:[::1]:8899") == (socket.AF_INET6, ("::1", 8899))
    assert mc.parse_address("unix:/run/vigil.sock") == (socket.AF_UNIX, "/run/vigil.sock")
    assert mc.parse_address("local:/run/vigil.sock") == (socket.AF_UNIX, "/run/vigil.sock")
