#!/usr/bin/env python3
"""Behaviour test for vigil-test-dns.

Starts the server on a free port with the zones in this folder and checks every feature with dig (from
dnsutils) and with raw sockets where dig would hide what happened on the wire.

usage: pytest test/integration/dns_server/test_dns_server.py [--vigil-test-dns PATH] [-k NAME]
"""

import concurrent.futures
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest
import vigil_fixtures as vf

HERE = os.path.dirname(os.path.abspath(__file__))
ZONE = os.path.join(HERE, "example.test.zone")
REVERSE_ZONE = os.path.join(HERE, "reverse.zone")

TYPE_A = 1
TYPE_TXT = 16


@pytest.fixture(scope="module", autouse=True)
def dig_installed():
    assert shutil.which("dig") is not None, "dig not found: install dnsutils"


@pytest.fixture(scope="module")
def log_path(workdir):
    return os.path.join(workdir, "queries.log")


@pytest.fixture(scope="module")
def srv(module_launch, log_path):
    """The server every test below shares: the zones of this folder and one of each fault."""
    return module_launch.dns([ZONE, REVERSE_ZONE], [
        "--servfail", "faulty.example.test/TXT",
        "--servfail", "*.sf.example.test",
        "--refused", "faulty.example.test/MX",
        "--timeout", "*.slow.example.test",
        "--malformed", "broken.example.test",
        "--truncate", "faulty.example.test/A",
        "--wrong-id", "wrongid.example.test",
        "--delay", "slow.example.test=300",
        "--ttl-override", "mail.example.test/AAAA=4294967295",
    ], log=log_path)


# --------------------------------------------------------------------------------------------------------
# dig


class DigResult:
    def __init__(self, completed):
        self.rc = completed.returncode
        self.out = completed.stdout + completed.stderr
        m = re.search(r"status: (\w+)", self.out)
        self.status = m.group(1) if m else None
        m = re.search(r";; flags: ([^;]*);", self.out)
        self.flags = set(m.group(1).split()) if m else set()
        self.sections = {"ANSWER": [], "AUTHORITY": [], "ADDITIONAL": []}
        current = None
        for line in completed.stdout.splitlines():
            m = re.match(r";; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:", line)
            if m:
                current = m.group(1)
                continue
            if not line.strip():
                current = None
                continue
            if current and not line.startswith(";"):
                name, ttl, _cls, rtype, rdata = line.split(None, 4)
                self.sections[current].append((name.lower(), int(ttl), rtype, rdata))

    @property
    def answer(self):
        return self.sections["ANSWER"]

    @property
    def authority(self):
        return self.sections["AUTHORITY"]

    def rdata(self, rtype):
        return sorted(r[3] for r in self.answer if r[2] == rtype)

    def __str__(self):
        return self.out


def dig(port, name, qtype="A", *options, timeout=15):
    cmd = ["dig", "@127.0.0.1", "-p", str(port), "+norec", "+time=2", "+tries=1", *options, name, qtype]
    return DigResult(subprocess.run(cmd, capture_output=True, text=True, timeout=timeout))


# --------------------------------------------------------------------------------------------------------
# Raw DNS over sockets, for what dig does not show


def build_query(qid, name, qtype, edns=False):
    header = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1 if edns else 0)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    opt = b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0) if edns else b""
    return header + qname + struct.pack(">HH", qtype, 1) + opt


def skip_name(data, pos):
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length


def parse_response(data):
    """Returns header fields and the answer records as (type, ttl, rdata); raises on a cut-short packet."""
    qid, flags, qdcount, ancount, nscount, arcount = struct.unpack(">HHHHHH", data[:12])
    pos = 12
    for _ in range(qdcount):
        pos = skip_name(data, pos) + 4
    records = []
    for _ in range(ancount + nscount + arcount):
        pos = skip_name(data, pos)
        rtype, _cls, ttl, rdlen = struct.unpack(">HHIH", data[pos : pos + 10])
        pos += 10
        if pos + rdlen > len(data):
            raise ValueError("record data runs past the end")
        records.append((rtype, ttl, data[pos : pos + rdlen]))
        pos += rdlen
    return {
        "id": qid,
        "rcode": flags & 0xF,
        "tc": bool(flags & 0x0200),
        "aa": bool(flags & 0x0400),
        "ancount": ancount,
        "answer": records[:ancount],
    }


def udp_socket(port, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def tcp_frame(message):
    return struct.pack(">H", len(message)) + message


def recv_frame(sock):
    (length,) = struct.unpack(">H", vf.recv_exact(sock, 2))
    return vf.recv_exact(sock, length)


def closed_by_server(sock, within):
    """True when the server closes the connection within `within` seconds."""
    sock.settimeout(within)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


# --------------------------------------------------------------------------------------------------------
# Checks against the main server


def test_a_records(srv):
    r = dig(srv.port, "www.example.test")
    assert r.status == "NOERROR", f"status {r.status}\n{r}"
    assert "aa" in r.flags, f"AA bit missing: {r.flags}"
    assert r.rdata("A") == ["192.0.2.80", "192.0.2.81"], f"A rdata {r.answer}"
    assert all(rec[1] == 3600 for rec in r.answer), f"TTL from $TTL expected 3600: {r.answer}"
    r = dig(srv.port, "mail.example.test")
    assert r.answer == [("mail.example.test.", 600, "A", "192.0.2.25")], f"explicit TTL 600: {r.answer}"


def test_case_insensitive(srv):
    r = dig(srv.port, "WwW.ExAmPlE.TeSt")
    assert r.status == "NOERROR" and r.rdata("A") == ["192.0.2.80", "192.0.2.81"], str(r)


def test_aaaa(srv):
    r = dig(srv.port, "mail.example.test", "AAAA")
    assert r.status == "NOERROR" and r.rdata("AAAA") == ["2001:db8::25"], str(r)


def test_ttl_override(srv):
    r = dig(srv.port, "mail.example.test", "AAAA")
    assert r.answer and r.answer[0][1] == 4294967295, f"TTL override to 4294967295: {r.answer}"
    r = dig(srv.port, "mail.example.test", "A")
    assert r.answer and r.answer[0][1] == 600, f"override is for AAAA only, A keeps 600: {r.answer}"


def test_txt(srv):
    r = dig(srv.port, "txt.example.test", "TXT")
    assert r.rdata("TXT") == ['"v=spf1 -all"'], str(r)
    r = dig(srv.port, "multi.example.test", "TXT")
    assert r.rdata("TXT") == ['"part one" "part two"'], f"two character-strings: {r.answer}"


def test_long_txt_split(srv):
    r = dig(srv.port, "dkim._domainkey.example.test", "TXT")
    first = "v=DKIM1; k=rsa; p=" + "A" * (255 - len("v=DKIM1; k=rsa; p="))
    expected = f'"{first}" "{"B" * 44}"'
    assert r.rdata("TXT") == [expected], f"255+44 split expected, got {r.answer}"
    # dig shows what it parsed; the raw packet proves the length octets are 255 and 44.
    with udp_socket(srv.port) as s:
        s.send(build_query(0x4444, "dkim._domainkey.example.test", TYPE_TXT, edns=True))
        resp = parse_response(s.recv(4096))
    rdata = resp["answer"][0][2]
    assert rdata[0] == 255 and rdata[256] == 44 and len(rdata) == 1 + 255 + 1 + 44, f"raw TXT {rdata!r}"


def test_mx(srv):
    r = dig(srv.port, "example.test", "MX")
    assert r.rdata("MX") == ["10 mail.example.test.", "20 backup.mail.example.test."], str(r)


def test_ptr(srv):
    r = dig(srv.port, "25.2.0.192.in-addr.arpa", "PTR")
    assert r.answer == [("25.2.0.192.in-addr.arpa.", 86400, "PTR", "mail.example.test.")], str(r)
    r = dig(srv.port, "-x", "192.0.2.26")
    assert r.status == "NXDOMAIN", f"-x 192.0.2.26: {r.status}"


def test_soa_and_ns(srv):
    r = dig(srv.port, "example.test", "SOA")
    assert r.answer and r.answer[0][2] == "SOA" and r.answer[0][3].startswith("ns1.example.test."), str(r)
    r = dig(srv.port, "example.test", "NS")
    assert r.rdata("NS") == ["ns1.example.test."], str(r)


def test_nxdomain(srv):
    r = dig(srv.port, "nope.example.test")
    assert r.status == "NXDOMAIN" and "aa" in r.flags and not r.answer, str(r)
    # RFC 2308: the SOA in a negative answer carries min(SOA TTL 3600, MINIMUM 300).
    assert len(r.authority) == 1 and r.authority[0][2] == "SOA" and r.authority[0][1] == 300, str(r)


def test_nodata(srv):
    r = dig(srv.port, "mail.example.test", "MX")
    assert r.status == "NOERROR" and not r.answer, str(r)
    assert r.authority and r.authority[0][2] == "SOA", f"SOA in authority: {r}"


def test_empty_non_terminal(srv):
    for name in ("ent.example.test", "c.ent.example.test"):
        r = dig(srv.port, name)
        assert r.status == "NOERROR" and not r.answer, f"{name} is an empty non-terminal:\n{r}"
        assert r.authority and r.authority[0][2] == "SOA", f"{name}: SOA in authority:\n{r}"
    r = dig(srv.port, "b.c.ent.example.test")
    assert r.rdata("A") == ["192.0.2.7"], str(r)
    r = dig(srv.port, "x.b.c.ent.example.test")
    assert r.status == "NXDOMAIN", f"below a leaf: {r.status}"


def test_cname(srv):
    r = dig(srv.port, "alias.example.test")
    assert r.status == "NOERROR", str(r)
    assert [x[2] for x in r.answer] == ["CNAME", "A", "A"], f"CNAME then target A records: {r.answer}"
    assert r.answer[0][3] == "www.example.test." and r.rdata("A") == ["192.0.2.80", "192.0.2.81"], str(r)
    r = dig(srv.port, "alias.example.test", "CNAME")
    assert [x[2] for x in r.answer] == ["CNAME"], f"qtype CNAME is not followed: {r.answer}"
    r = dig(srv.port, "chain1.example.test")
    assert [x[2] for x in r.answer] == ["CNAME", "CNAME", "A", "A"], f"chain: {r.answer}"
    r = dig(srv.port, "dangling.example.test")
    assert r.status == "NXDOMAIN" and [x[2] for x in r.answer] == ["CNAME"], f"dangling CNAME: {r}"
    r = dig(srv.port, "outside.example.test")
    assert (r.status == "NOERROR" and r.answer == [("outside.example.test.", 3600, "CNAME",
                                                   "host.elsewhere.invalid.")]), f"CNAME out of zone: {r}"


def test_cname_loop(srv):
    r = dig(srv.port, "loop1.example.test")
    assert r.status == "NOERROR", f"loop must still be answered: {r}"
    cnames = [x for x in r.answer if x[2] == "CNAME"]
    assert 1 <= len(cnames) <= 8, f"bounded chain: {r.answer}"
    assert srv.alive(), "server died on a CNAME loop"


def test_wildcard(srv):
    r = dig(srv.port, "a.b.wild.example.test")
    assert r.answer == [("a.b.wild.example.test.", 3600, "A", "192.0.2.99")], f"synthesised owner: {r}"
    r = dig(srv.port, "x.wild.example.test", "TXT")
    assert r.rdata("TXT") == ['"wildcard"'], str(r)
    r = dig(srv.port, "x.wild.example.test", "MX")
    assert r.status == "NOERROR" and not r.answer, f"wildcard NODATA: {r}"
    # RFC 4592: an existing name is never wildcard-matched, not even for types it lacks.
    r = dig(srv.port, "exists.wild.example.test", "TXT")
    assert r.rdata("TXT") == ['"explicit"'], str(r)
    r = dig(srv.port, "exists.wild.example.test", "A")
    assert r.status == "NOERROR" and not r.answer, f"existing name must not match *: {r}"
    r = dig(srv.port, "wild.example.test", "A")
    assert r.status == "NOERROR" and not r.answer, f"parent of * is an empty non-terminal: {r}"
    r = dig(srv.port, "foo.wcname.example.test")
    assert [x[2] for x in r.answer] == ["CNAME", "A", "A"], f"wildcard CNAME: {r.answer}"
    assert r.answer[0][0] == "foo.wcname.example.test.", f"wildcard CNAME owner: {r.answer}"


def test_refused_outside(srv):
    r = dig(srv.port, "www.other.test")
    assert r.status == "REFUSED" and "aa" not in r.flags, str(r)
    r = dig(srv.port, "test", "SOA")
    assert r.status == "REFUSED", f"parent of a zone: {r.status}"


def test_servfail(srv):
    r = dig(srv.port, "faulty.example.test", "TXT")
    assert r.status == "SERVFAIL", str(r)
    r = dig(srv.port, "x.sf.example.test")
    assert r.status == "SERVFAIL", f"*.sf.example.test pattern: {r.status}"
    r = dig(srv.port, "sf.example.test")
    assert r.status == "NXDOMAIN", f"'*.suffix' must not match suffix itself: {r.status}"


def test_refused_fault(srv):
    r = dig(srv.port, "faulty.example.test", "MX")
    assert r.status == "REFUSED", str(r)


def test_timeout(srv):
    start = time.monotonic()
    r = dig(srv.port, "x.slow.example.test", "A", "+time=1", "+tries=1")
    assert r.status is None and "timed out" in r.out, f"expected no answer:\n{r}"
    assert r.rc == 9, f"dig exit code 9 (no reply) expected, got {r.rc}"
    assert time.monotonic() - start < 5, "dig took too long"
    r = dig(srv.port, "x.slow.example.test", "A", "+tcp", "+time=1", "+tries=1")
    assert r.status is None, f"expected no answer over TCP either:\n{r}"


def test_truncate(srv):
    r = dig(srv.port, "faulty.example.test", "A", "+notcp", "+ignore")
    assert "tc" in r.flags and not r.answer, f"UDP: TC and no records expected:\n{r}"
    r = dig(srv.port, "faulty.example.test", "A", "+tcp")
    assert "tc" not in r.flags and r.rdata("A") == ["192.0.2.13"], f"TCP: full answer expected:\n{r}"
    r = dig(srv.port, "faulty.example.test", "A")
    assert "Truncated, retrying in TCP mode" in r.out and r.rdata("A") == ["192.0.2.13"], f"fallback:\n{r}"
    r = dig(srv.port, "faulty.example.test", "TXT", "+notcp", "+ignore")
    assert "tc" not in r.flags, "--truncate faulty.example.test/A must not touch TXT"


def test_udp_size_limit(srv):
    # big.example.test is ~700 bytes: over the classic 512 limit, under dig's EDNS size.
    r = dig(srv.port, "big.example.test", "TXT", "+noedns", "+ignore")
    assert "tc" in r.flags and not r.answer, f"no EDNS: 512 limit must truncate:\n{r}"
    r = dig(srv.port, "big.example.test", "TXT", "+ignore")
    assert "tc" not in r.flags and len(r.answer) == 6, f"EDNS 1232 fits:\n{r}"
    r = dig(srv.port, "big.example.test", "TXT", "+bufsize=600", "+ignore")
    assert "tc" in r.flags, f"EDNS size 600 must truncate:\n{r}"


def test_wrong_id(srv):
    r = dig(srv.port, "wrongid.example.test")
    assert "ID mismatch" in r.out, f"dig should have seen the wrong-ID reply:\n{r}"
    assert r.rdata("A") == ["192.0.2.42"], f"dig must end with the real answer:\n{r}"
    with udp_socket(srv.port) as s:
        s.send(build_query(0x1234, "wrongid.example.test", TYPE_A))
        first = s.recv(4096)
        t_first = time.monotonic()
        second = s.recv(4096)
        gap = time.monotonic() - t_first
    bogus, real = parse_response(first), parse_response(second)
    assert bogus["id"] == 0x1235, f"first reply ID {bogus['id']:#x}, expected 0x1235"
    assert bogus["answer"] and bogus["answer"][0][2] == socket.inet_aton("192.0.2.66"), f"bogus {bogus}"
    assert real["id"] == 0x1234 and real["answer"][0][2] == socket.inet_aton("192.0.2.42"), f"real {real}"
    assert gap >= 0.035, f"second reply should follow ~50 ms later, gap {gap:.3f}s"
    r = dig(srv.port, "wrongid.example.test", "TXT", "+tcp")
    assert "ID mismatch" not in r.out and r.rdata("TXT") == ['"right"'], f"TCP is answered plainly:\n{r}"


def test_malformed(srv):
    r = dig(srv.port, "broken.example.test")
    assert "malformed" in r.out.lower() or "unexpected end" in r.out.lower(), f"dig should complain:\n{r}"
    assert not r.rdata("A"), f"no usable record expected:\n{r}"
    with udp_socket(srv.port) as s:
        s.send(build_query(0x2222, "broken.example.test", TYPE_A))
        data = s.recv(4096)
    assert struct.unpack(">H", data[:2])[0] == 0x2222, "malformed reply must keep the query ID"
    assert struct.unpack(">H", data[6:8])[0] == 1, "header should claim one answer"
    try:
        parse_response(data)
        assert False, f"reply parsed cleanly, expected a cut-short body: {data!r}"
    except (struct.error, IndexError, ValueError):
        pass
    assert srv.alive(), "server died"
    r = dig(srv.port, "www.example.test")
    assert r.status == "NOERROR", "server must keep answering after a malformed reply"


def test_delay_single(srv):
    start = time.monotonic()
    r = dig(srv.port, "slow.example.test")
    elapsed = time.monotonic() - start
    assert r.rdata("A") == ["192.0.2.14"], str(r)
    assert elapsed >= 0.3, f"--delay slow.example.test=300 answered after {elapsed:.3f}s"


def test_delay_parallel_dig(srv):
    def one(_):
        return dig(srv.port, "slow.example.test")

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(one, range(10)))
    elapsed = time.monotonic() - start
    assert all(r.rdata("A") == ["192.0.2.14"] for r in results), "every delayed dig gets its answer"
    assert elapsed < 1.5, f"10 parallel 300 ms queries took {elapsed:.2f}s (serial would be 3 s)"


def test_delay_does_not_block(srv):
    with udp_socket(srv.port) as slow, udp_socket(srv.port) as fast:
        start = time.monotonic()
        slow.send(build_query(0x0101, "slow.example.test", TYPE_A))
        fast.send(build_query(0x0202, "www.example.test", TYPE_A))
        fast_resp = parse_response(fast.recv(4096))
        fast_time = time.monotonic() - start
        slow_resp = parse_response(slow.recv(4096))
        slow_time = time.monotonic() - start
    assert fast_resp["id"] == 0x0202 and fast_time < 0.2, f"fast answer took {fast_time:.3f}s"
    assert slow_resp["id"] == 0x0101 and slow_time >= 0.29, f"slow answer after {slow_time:.3f}s"


def test_fifty_concurrent_delayed(srv):
    with udp_socket(srv.port, timeout=3.0) as s:
        start = time.monotonic()
        for i in range(50):
            s.send(build_query(0x3000 + i, "slow.example.test", TYPE_A))
        seen = set()
        while len(seen) < 50 and time.monotonic() - start < 3:
            resp = parse_response(s.recv(4096))
            assert resp["answer"][0][2] == socket.inet_aton("192.0.2.14"), f"bad answer {resp}"
            seen.add(resp["id"])
        elapsed = time.monotonic() - start
    assert len(seen) == 50, f"only {len(seen)} of 50 delayed answers arrived"
    assert 0.29 <= elapsed < 1.0, f"50 concurrent 300 ms answers took {elapsed:.2f}s"


def test_tcp_pipelined(srv):
    with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as s:
        s.sendall(tcp_frame(build_query(0x0A01, "www.example.test", TYPE_A)) +
                  tcp_frame(build_query(0x0A02, "txt.example.test", TYPE_TXT)))
        first, second = parse_response(recv_frame(s)), parse_response(recv_frame(s))
        assert {first["id"], second["id"]} == {0x0A01, 0x0A02}, "both pipelined queries answered"
        # The same connection keeps working after the first exchange.
        s.sendall(tcp_frame(build_query(0x0A03, "mail.example.test", TYPE_A)))
        third = parse_response(recv_frame(s))
        assert third["id"] == 0x0A03 and third["answer"][0][2] == socket.inet_aton("192.0.2.25"), str(third)


def test_garbage_udp(srv):
    rng = random.Random(4242)
    payloads = [b"", b"\x00", b"\xff" * 11, b"\x12\x34" + b"\x00" * 10]
    payloads += [rng.randbytes(rng.randrange(1, 600)) for _ in range(200)]
    # A header promising one question whose name runs past the end.
    payloads.append(struct.pack(">HHHHHH", 7, 0, 1, 0, 0, 0) + b"\x3fabc")
    # A compression pointer loop in the question.
    payloads.append(struct.pack(">HHHHHH", 8, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01")
    with udp_socket(srv.port) as s:
        for p in payloads:
            s.send(p)
    # A response (QR=1) must not be answered: two servers could otherwise ping-pong forever.
    with udp_socket(srv.port, timeout=0.3) as s:
        response = bytearray(build_query(0x5151, "www.example.test", TYPE_A))
        response[2] |= 0x80
        s.send(bytes(response))
        try:
            s.recv(4096)
            assert False, "server answered a response packet"
        except socket.timeout:
            pass
    assert srv.alive(), "server died on garbage UDP"
    r = dig(srv.port, "www.example.test")
    assert r.status == "NOERROR", f"server must still answer after garbage UDP:\n{r}"


def test_garbage_tcp(srv):
    rng = random.Random(99)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as s:
        s.sendall(rng.randbytes(5000))
        closed_by_server(s, 2)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as s:
        s.sendall(b"\xff\xff" + b"A" * 100)  # a 65535-byte message: over the server's limit
        assert closed_by_server(s, 2), "oversized TCP message must close the connection"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as s:
        body = struct.pack(">HHHHHH", 9, 0, 1, 0, 0, 0) + b"\x3f" + b"x" * 7
        s.sendall(tcp_frame(body))
        assert closed_by_server(s, 2), "unparseable TCP message must close the connection"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as s:
        s.sendall(b"\x00")  # half a length prefix, then hang up
    assert srv.alive(), "server died on a garbage TCP stream"
    r = dig(srv.port, "www.example.test", "A", "+tcp")
    assert r.status == "NOERROR" and r.rdata("A") == ["192.0.2.80", "192.0.2.81"], f"TCP after garbage:\n{r}"


# What produces each line test_log wants, when the test that does it did not run (-k).
LOG_PRODUCERS = {
    "udp www.example.test. A answer": lambda p: dig(p, "www.example.test"),
    "udp nope.example.test. A nxdomain": lambda p: dig(p, "nope.example.test"),
    "udp mail.example.test. MX nodata": lambda p: dig(p, "mail.example.test", "MX"),
    "udp ent.example.test. A nodata": lambda p: dig(p, "ent.example.test"),
    "udp www.other.test. A refused": lambda p: dig(p, "www.other.test"),
    "udp faulty.example.test. TXT servfail": lambda p: dig(p, "faulty.example.test", "TXT"),
    "udp faulty.example.test. MX refused": lambda p: dig(p, "faulty.example.test", "MX"),
    "udp x.slow.example.test. A timeout": lambda p: dig(p, "x.slow.example.test", "A", "+time=1", "+tries=1"),
    "tcp x.slow.example.test. A timeout": lambda p: dig(p, "x.slow.example.test", "A", "+tcp", "+time=1",
                                                        "+tries=1"),
    "udp faulty.example.test. A truncated": lambda p: dig(p, "faulty.example.test", "A", "+notcp", "+ignore"),
    "tcp faulty.example.test. A answer": lambda p: dig(p, "faulty.example.test", "A", "+tcp"),
    "udp wrongid.example.test. A wrong-id": lambda p: dig(p, "wrongid.example.test"),
    "udp broken.example.test. A malformed": lambda p: dig(p, "broken.example.test"),
    "udp - - dropped": lambda p: udp_socket(p).send(b"\xff" * 11),
}


def log_lines(log_path):
    with open(log_path) as f:
        return f.read().splitlines()


def test_log(srv, log_path):
    for _ in range(3):
        dig(srv.port, "logcount.example.test")
    for line, produce in LOG_PRODUCERS.items():
        if line not in log_lines(log_path):
            produce(srv.port)
    wanted = list(LOG_PRODUCERS)
    lines = vf.wait_until(lambda: (lambda got: got if all(w in got for w in wanted) else None)(log_lines(log_path)),
                          2.0) or log_lines(log_path)
    bad = [line for line in lines if not re.fullmatch(r"(udp|tcp) \S+ \S+ \S+", line)]
    assert not bad, f"malformed log lines: {bad[:5]}"
    count = lines.count("udp logcount.example.test. A answer")
    assert count == 3, f"3 queries for logcount.example.test sent, {count} logged"
    missing = [w for w in wanted if w not in lines]
    assert not missing, f"log lines missing: {missing}"


def test_sigterm_exit_and_empty_stderr(srv):
    """Last of the tests on the shared server: it is still up, and stops cleanly."""
    assert srv.alive(), "server exited during the tests"
    rc = srv.stop()
    assert rc == 0, f"exit status after SIGTERM: {rc}"
    # Sanitizer reports and crashes land here; a healthy server writes nothing to stderr.
    assert not srv.stderr, f"server stderr:\n{srv.stderr[:3000]}"


# --------------------------------------------------------------------------------------------------------
# Tests that need their own server or none


def test_limits_server(launch):
    """--udp-max, --delay-ms and --tcp-idle-ms on a second instance."""
    srv = launch.dns([ZONE], ["--udp-max", "300", "--delay-ms", "100", "--tcp-idle-ms", "500"])
    r = dig(srv.port, "big.example.test", "TXT", "+ignore")
    assert "tc" in r.flags, f"--udp-max 300 must truncate a ~700-byte answer despite EDNS:\n{r}"
    start = time.monotonic()
    r = dig(srv.port, "www.example.test")
    elapsed = time.monotonic() - start
    assert "tc" not in r.flags and r.rdata("A") == ["192.0.2.80", "192.0.2.81"], str(r)
    assert elapsed >= 0.1, f"--delay-ms 100 answered after {elapsed:.3f}s"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as s:
        start = time.monotonic()
        closed = closed_by_server(s, 3)
        elapsed = time.monotonic() - start
    assert closed and 0.4 <= elapsed < 2.5, f"idle TCP close after 500 ms: closed={closed} {elapsed:.2f}s"
    assert srv.stop() == 0, "SIGTERM must end the server with status 0"
    assert not srv.stderr, f"server stderr:\n{srv.stderr[:3000]}"


def test_command_line(binaries):
    binary = binaries.dns
    r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=5)
    assert r.returncode == 0 and "--wrong-id" in r.stdout and "--zone" in r.stdout, f"--help: {r}"
    r = subprocess.run([binary, "--no-such-flag"], capture_output=True, text=True, timeout=5)
    assert r.returncode != 0 and "unknown option" in r.stderr, f"unknown flag: {r}"
    r = subprocess.run([binary, "--servfail", "x.test/NOTATYPE"], capture_output=True, text=True, timeout=5)
    assert r.returncode == 1 and "NOTATYPE" in r.stderr, f"bad type: {r}"
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, "bad.zone")
        with open(bad, "w") as f:
            f.write("$ORIGIN bad.test.\n@ IN SOA ns1 host 1 2 3 4 5\nwww IN A 999.1.1.1\n")
        r = subprocess.run([binary, "--zone", bad], capture_output=True, text=True, timeout=5)
        assert r.returncode == 1 and f"{bad}:3:" in r.stderr, f"parse error must name file:line: {r}"
        r = subprocess.run([binary, "--zone", os.path.join(tmp, "missing.zone")], capture_output=True,
                           text=True, timeout=5)
        assert r.returncode == 1 and "missing.zone" in r.stderr, f"missing file: {r}"
