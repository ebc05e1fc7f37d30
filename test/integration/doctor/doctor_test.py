#!/usr/bin/env python3
"""End-to-end test of `vigil doctor` and of the reputation monitor inside vigil-milter.

Starts vigil-test-dns on 127.0.0.1 with zones written at run time (the DKIM key records come from
`vigil dkim keygen`, which also writes the private keys the doctor compares them with):

  clean.test   MX, host address, PTR, SPF, RSA and Ed25519 DKIM keys, DMARC p=reject, signed with
               ldns-signzone (a real Ed25519 DNSKEY and RRSIGs): all ok
  faulty.test  SPF with 11 DNS-querying terms and +all, a revoked DKIM key, a key that does not match
               the private key on disk, DMARC p=none without rua, not signed
  stale.test   signed, but the signatures expired
  IPs          192.0.2.20 listed on the test block list and without PTR, 192.0.2.30 refused by the list
               (127.255.255.254) with a PTR that does not resolve back, 192.0.2.31 with a PTR that
               confirms but names another host

and asserts each fault's level and fix text, that the clean zone is all ok, and the exit codes. The
doctor talks to one server without validation (--dns), so DNSSEC comes from the zone's DNSKEY and the
RRSIGs the test server sends along for DO queries: signed (ok, "validation not checked"), not signed
(warn) and expired (fail).

Then runs vigil-milter with [monitor] interval = 1 s against the same server and checks the start
summary, the warning lines when an address becomes listed and when it is de-listed (the server is
restarted on the same port with a changed list zone), and that SIGTERM stops it promptly.

usage: doctor_test.py PATH/TO/vigil-test-dns PATH/TO/vigil PATH/TO/vigil-milter
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

failures = []


def expect(cond, what):
    print(f"  {'ok' if cond else 'FAIL'}: {what}")
    if not cond:
        failures.append(what)


SOA = "@ IN SOA ns.doctor.test. hostmaster.doctor.test. 1 7200 900 1209600 1\n@ IN NS ns.doctor.test.\n"


def zone(origin, body, ttl=1):
    return f"$ORIGIN {origin}.\n$TTL {ttl}\n{SOA}{body}"


def bl_zone(listed):
    body = "".join(f"{'.'.join(reversed(ip.split('.')))} IN A 127.0.0.2\n" for ip in listed)
    # 192.0.2.30: the list refuses us, as Spamhaus answers a public resolver.
    body += "30.2.0.192 IN A 127.255.255.254\n"
    return zone("bl.doctor.test", body)


class Server:
    def __init__(self, binary, zones, port=0):
        # hang.doctor.test is a list that never answers (for the SIGTERM check of the monitor).
        cmd = [binary, "--listen", "127.0.0.1", "--port", str(port), "--timeout", "*.hang.doctor.test"]
        for z in zones:
            cmd += ["--zone", z]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ""
        m = re.fullmatch(r"port (\d+)\n", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"vigil-test-dns did not start (got {line!r}): {self.proc.communicate()[1]}")
        self.port = int(m.group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


def keygen(vigil, keydir, domain, selector, kind):
    """Writes DOMAIN.SELECTOR.pem and returns the TXT record keygen prints (one zone-file line)."""
    out = subprocess.run([vigil, "dkim", "keygen", "--domain", domain, "--selector", selector, "--type", kind,
                          "--out", keydir], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def sign(work, path, origin, *times):
    """Signs the zone file with a fresh Ed25519 key (ldns-keygen, ldns-signzone); returns the signed file."""
    for tool in ("ldns-keygen", "ldns-signzone"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} not found: install ldnsutils (scripts/bootstrap.sh does)")
    key = subprocess.run(["ldns-keygen", "-a", "ED25519", "-k", origin], cwd=work, capture_output=True,
                         text=True, check=True).stdout.strip()
    subprocess.run(["ldns-signzone", *times, "-f", path + ".signed", path, key], cwd=work, check=True)
    return path + ".signed"


def doctor(vigil, conf, port, *args):
    cmd = [vigil, "--config", conf, "doctor", "--dns", f"127.0.0.1:{port}", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return r


def findings(r):
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        print(f"not JSON (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")
        raise


def find(doc, area, subject, text):
    return [f for f in doc["findings"] if f["area"] == area and f["subject"] == subject and text in f["reason"]]


def one(doc, area, subject, text, level, what):
    got = find(doc, area, subject, text)
    expect(len(got) == 1 and got[0]["level"] == level,
           f"{what}: {area}/{subject} '{text}' is {level} (got {[(g['level'], g['reason']) for g in got]})")
    return got[0] if got else {"fix": "", "reason": ""}


def conf_text(workdir, hostname, ips, domains, keys, extra=""):
    lines = [
        "[milter]", 'user = ""', "allow_root = true",
        "[server]", f'hostname = "{hostname}"', f"sending_ips = {json.dumps(ips)}", f"domains = {json.dumps(domains)}",
        "[monitor]", 'lists = ["configured"]', extra,
        "[checks.dnsbl]", "enabled = true",
        "[[checks.dnsbl.list]]", 'name = "doctorbl"', 'zone = "bl.doctor.test"',
        "[checks.dnsbl.list.codes]", '"127.0.0.2" = "RBL_DOCTOR_SPAM"',
        "[checks.dkim]", "enabled = true",
    ]
    for domain, selector, path in keys:
        lines += ["[[checks.dkim.key]]", f'domain = "{domain}"', f'selector = "{selector}"', f'file = "{path}"']
    return "\n".join(lines) + "\n"


def main():
    dns_bin, vigil, milter = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="vigil-doctor-")
    keydir = os.path.join(work, "keys")
    os.mkdir(keydir, 0o700)

    clean_rsa = keygen(vigil, keydir, "clean.test", "r1", "rsa")
    clean_ed = keygen(vigil, keydir, "clean.test", "e1", "ed25519")
    revoked = keygen(vigil, keydir, "faulty.test", "revoked", "ed25519")
    mine = keygen(vigil, keydir, "faulty.test", "wrong", "rsa")
    # What is published under "wrong": another key's record, with the selector renamed.
    other = keygen(vigil, keydir, "faulty.test", "other", "rsa").replace("other._domainkey", "wrong._domainkey", 1)

    clean = zone("clean.test", "\n".join([
        "@ IN MX 10 mx.clean.test.",
        "mx IN A 192.0.2.10",
        '@ IN TXT "v=spf1 ip4:192.0.2.10 -all"',
        '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@clean.test"',
        clean_rsa,
        clean_ed,
    ]) + "\n")
    # Over 255 bytes: two character-strings, joined again by SPF readers.
    includes = " ".join(f"include:i{i}.faulty.test" for i in range(1, 7)) + ' " "' + \
        " ".join(f"include:i{i}.faulty.test" for i in range(7, 12))
    faulty = zone("faulty.test", "\n".join([
        "@ IN MX 10 mx.faulty.test.",
        "mx IN A 192.0.2.20",
        f'@ IN TXT "v=spf1 {includes} +all"',
        *[f'i{i} IN TXT "v=spf1 -all"' for i in range(1, 12)],
        '_dmarc IN TXT "v=DMARC1; p=none"',
        "revoked._domainkey IN TXT \"v=DKIM1; k=ed25519; p=\"",
        other,
        "liar IN A 192.0.2.99",
        "other IN A 192.0.2.31",
    ]) + "\n")
    reverse = zone("2.0.192.in-addr.arpa", "\n".join([
        "10 IN PTR mx.clean.test.",
        "30 IN PTR liar.faulty.test.",
        "31 IN PTR other.faulty.test.",
    ]) + "\n")
    zones = [write(os.path.join(work, n), t) for n, t in [
        ("clean.zone", clean), ("faulty.zone", faulty), ("reverse.zone", reverse), ("bl.zone", bl_zone(["192.0.2.20"]))]]
    zones[0] = sign(work, zones[0], "clean.test")
    stale = write(os.path.join(work, "stale.zone"), zone("stale.test", "@ IN MX 10 mx.clean.test.\n"))
    zones.append(sign(work, stale, "stale.test", "-i", "20200101000000", "-e", "20200201000000"))

    server = Server(dns_bin, zones)
    try:
        print("clean zone")
        conf = write(os.path.join(work, "clean.conf"), conf_text(
            work, "mx.clean.test", ["192.0.2.10"], ["clean.test"],
            [("clean.test", "r1", f"{keydir}/clean.test.r1.pem"), ("clean.test", "e1", f"{keydir}/clean.test.e1.pem")]))
        r = doctor(vigil, conf, server.port, "--json")
        doc = findings(r)
        not_ok = [f for f in doc["findings"] if f["level"] != "ok"]
        expect(not_ok == [], f"clean zone: everything ok (got {not_ok})")
        dnssec = one(doc, "dnssec", "clean.test", "the zone is signed (algorithm 15, key tag", "ok",
                     "signed zone through --dns")
        expect("validation not checked: this resolver does not validate" in dnssec["reason"]
               and "run without --dns or with a validating resolver" in dnssec["reason"],
               f"signed zone: says validation was not checked ({dnssec['reason']})")
        expect(r.returncode == 0 and doc["exit"] == 0, f"clean signed zone: exit 0 (got {r.returncode})")
        areas = {f["area"] for f in doc["findings"]}
        expect(areas == {"lists", "rdns", "host", "mx", "spf", "dkim", "dmarc", "dnssec", "port25"},
               f"every area reported (got {sorted(areas)})")
        one(doc, "dkim", "clean.test", "selector r1: RSA-2048 key published, matches", "ok", "clean RSA key")
        one(doc, "dkim", "clean.test", "selector e1: Ed25519 key published, matches", "ok", "clean Ed25519 key")
        one(doc, "rdns", "192.0.2.10", "PTR mx.clean.test resolves back to 192.0.2.10", "ok", "clean PTR")
        one(doc, "spf", "clean.test", "192.0.2.10 is authorised", "ok", "clean SPF")
        one(doc, "dmarc", "clean.test", "p=reject", "ok", "clean DMARC")
        expect(doc["summary"]["warn"] == 0 and doc["summary"]["fail"] == 0 and doc["summary"]["unknown"] == 0,
               f"clean zone: summary all ok ({doc['summary']})")
        table = doctor(vigil, conf, server.port, "--skip", "dnssec")
        expect(table.returncode == 0 and "\nclean.test\n" in table.stdout and "\n192.0.2.10\n" in table.stdout
               and "\033" not in table.stdout, "the table groups by subject, no colour into a pipe")
        print(table.stdout)

        print("faulty zone")
        conf = write(os.path.join(work, "faulty.conf"), conf_text(
            work, "mx.faulty.test", ["192.0.2.20", "192.0.2.30", "192.0.2.31"], ["faulty.test"],
            [("faulty.test", "revoked", f"{keydir}/faulty.test.revoked.pem"),
             ("faulty.test", "wrong", f"{keydir}/faulty.test.wrong.pem")]))
        r = doctor(vigil, conf, server.port, "--json")
        doc = findings(r)
        expect(r.returncode == 2 and doc["exit"] == 2, f"faults: exit 2 (got {r.returncode})")
        f = one(doc, "lists", "192.0.2.20", "LISTED on bl.doctor.test (doctorbl) with 127.0.0.2: RBL_DOCTOR_SPAM", "fail",
                "listed IP")
        expect("ask for removal at the operator of bl.doctor.test" in f["fix"], "listed IP: fix says where to go")
        f = one(doc, "lists", "192.0.2.30", "cannot tell: bl.doctor.test (doctorbl) refused our query (127.255.255.254",
                "unknown", "refusal code is cannot tell, not clean")
        expect("resolver of your own" in f["fix"], "refusal: fix is about the resolver")
        expect(not find(doc, "lists", "192.0.2.30", "not listed"), "a refused query is never reported as not listed")
        f = one(doc, "rdns", "192.0.2.20", "no PTR record for 192.0.2.20 (nxdomain)", "fail", "missing PTR")
        expect(f["fix"].endswith("publish: 20.2.0.192.in-addr.arpa. IN PTR mx.faulty.test."), f"missing PTR: fix ({f['fix']})")
        f = one(doc, "rdns", "192.0.2.30", "PTR liar.faulty.test does not resolve back to 192.0.2.30", "fail",
                "PTR that does not resolve back")
        expect("30.2.0.192.in-addr.arpa. IN PTR mx.faulty.test." in f["fix"]
               and "mx.faulty.test. IN A 192.0.2.30" in f["fix"], f"mismatching PTR: fix ({f['fix']})")
        one(doc, "rdns", "192.0.2.31", "PTR other.faulty.test resolves back", "ok", "confirmed PTR")
        f = one(doc, "rdns", "192.0.2.31", "does not name mx.faulty.test, the host name we say in HELO", "warn",
                "PTR naming another host")
        expect('[server] hostname = "other.faulty.test"' in f["fix"], "PTR naming another host: fix offers either side")
        f = one(doc, "spf", "faulty.test", "more than 10 DNS-querying terms (11 of 10 DNS-querying terms", "fail",
                "SPF with 11 lookups")
        expect('faulty.test. IN TXT "v=spf1 ip4:192.0.2.20 ip4:192.0.2.30 ip4:192.0.2.31 -all"' in f["fix"],
               f"SPF 11 lookups: fix ({f['fix']})")
        f = one(doc, "spf", "faulty.test", "ends in +all", "warn", "+all")
        published = "v=spf1 " + " ".join(f"include:i{i}.faulty.test" for i in range(1, 12))
        expect(f["fix"].startswith("Replace it with: faulty.test. IN TXT (")
               and "".join(re.findall(r'"([^"]*)"', f["fix"])) == published + " -all",
               f"+all: fix is the same record ending in -all ({f['fix']})")
        f = one(doc, "dkim", "faulty.test", "selector revoked: the key is revoked", "fail", "revoked DKIM key")
        expect(f"Publish (from {keydir}/faulty.test.revoked.pem): {revoked}" in f["fix"],
               "revoked key: fix is the exact record keygen printed for the private key")
        f = one(doc, "dkim", "faulty.test", "selector wrong: the published RSA-2048 key does not match the private key",
                "fail", "key mismatching the private key")
        expect(f["fix"] == f"Publish (from {keydir}/faulty.test.wrong.pem): {mine}",
               "mismatch: fix is the exact record keygen printed for the private key")
        f = one(doc, "dmarc", "faulty.test", "p=none without rua", "warn", "p=none without rua")
        expect(f["fix"].endswith('_dmarc.faulty.test. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@faulty.test"'),
               f"p=none: fix ({f['fix']})")
        f = one(doc, "dnssec", "faulty.test", "the zone is not signed (no DNSKEY)", "warn", "unsigned zone")
        expect("Sign the zone" in f["fix"] and "DS record at your registrar" in f["fix"], f"unsigned zone: fix ({f['fix']})")
        others = [a for area in ("lists", "rdns", "host", "mx", "spf", "dkim", "dmarc", "port25") for a in ("--skip", area)]
        r = doctor(vigil, conf, server.port, "--json", "--domain", "stale.test", *others)
        doc = findings(r)
        f = one(doc, "dnssec", "stale.test", "signatures expired on 2020-02-01 00:00 UTC", "fail", "expired signatures")
        expect("Re-sign the zone now" in f["fix"], f"expired signatures: fix ({f['fix']})")
        expect(r.returncode == 2 and len(doc["findings"]) == 1, f"expired signatures alone: exit 2 (got {r.returncode})")
        r = doctor(vigil, conf, server.port)
        expect(r.returncode == 2 and "FAIL  lists   LISTED on bl.doctor.test" in r.stdout, "the table shows the listing")

        bad = doctor(vigil, conf, server.port, "--skip", "nothing")
        expect(bad.returncode == 3, f"a usage error is exit 3, not a finding (got {bad.returncode})")

        print("reputation monitor in vigil-milter")
        monitor(milter, work, dns_bin, zones, server)
    finally:
        server.stop()
    if failures:
        print(f"{len(failures)} failure(s); files kept in {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("all ok")
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(path, pattern, timeout):
    until = time.time() + timeout
    while time.time() < until:
        with open(path, errors="replace") as f:
            text = f.read()
        m = re.search(pattern, text)
        if m:
            return m.group(0)
        time.sleep(0.1)
    return None


class Milter:
    def __init__(self, milter, work, name, conf_body, dns_port):
        self.conf = write(os.path.join(work, f"{name}.conf"),
                          conf_body.replace("[milter]", f'[milter]\nsocket = "inet:{free_port()}@127.0.0.1"'))
        self.log = os.path.join(work, f"{name}.log")
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([milter, "-f", "-c", self.conf, "--dns", f"127.0.0.1:{dns_port}"], stdout=out,
                                         stderr=subprocess.STDOUT)

    def wait_log(self, pattern, timeout):
        return wait_for(self.log, pattern, timeout)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def terminate(self):
        """SIGTERM; returns (exit status or None, seconds from the "reputation monitor: stopping" line,
        logged once libmilter has stopped, to the end of the process; None without that line)."""
        self.proc.send_signal(signal.SIGTERM)
        until = time.time() + 20
        stopping = None
        while time.time() < until and self.proc.poll() is None:
            if stopping is None and "reputation monitor: stopping" in self.text():
                stopping = time.time()
            time.sleep(0.01)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            return None, None
        if stopping is None and "reputation monitor: stopping" in self.text():
            stopping = time.time()
        return self.proc.returncode, None if stopping is None else time.time() - stopping


def monitor(milter, work, dns_bin, zones, server):
    m = Milter(milter, work, "milter", conf_text(work, "mx.clean.test", ["192.0.2.10", "192.0.2.20"], ["clean.test"], [],
                                                  extra="interval = 1"), server.port)
    try:
        line = m.wait_log(r"reputation monitor: .*", 15)
        expect(line is not None and "2 IPs on 1 lists, every 1 s: LISTED: 192.0.2.20 on bl.doctor.test (doctorbl) "
               "(127.0.0.2: RBL_DOCTOR_SPAM); 1 answers clean" in line, f"start summary ({line})")
        # The list changes: 192.0.2.10 gets listed, 192.0.2.20 de-listed. Same port, new zone.
        port = server.port
        server.stop()
        bl = [z for z in zones if z.endswith("bl.zone")][0]
        write(bl, bl_zone(["192.0.2.10"]))
        fresh = Server(dns_bin, zones, port)
        server.proc, server.port = fresh.proc, fresh.port
        listed = m.wait_log(r"vigil-milter\[\d+\]: reputation: 192\.0\.2\.10 is now LISTED on .*", 20)
        expect(listed is not None and "bl.doctor.test (doctorbl): 127.0.0.2: RBL_DOCTOR_SPAM" in listed,
               f"warning when an IP becomes listed ({listed})")
        delisted = m.wait_log(r"vigil-milter\[\d+\]: reputation: 192\.0\.2\.20 is no longer listed on bl\.doctor\.test.*", 20)
        expect(delisted is not None, f"warning when an IP is de-listed ({delisted})")
    finally:
        rc, took = m.terminate()
        expect(rc == 0 and took is not None and took < 1.0,
               f"SIGTERM: the monitor stops within 1 s of libmilter (exit {rc}, {took} s)")
    print("".join("    " + l for l in m.text().splitlines(True)[-7:]))

    # SIGTERM while a round waits on a list that never answers (with this stage budget the resolver
    # gives up only after 11 s, longer than libmilter takes to stop): the monitor still stops at
    # once instead of finishing the round.
    hang = conf_text(work, "mx.clean.test", ["192.0.2.10"], [], [], extra="interval = 1").replace(
        'zone = "bl.doctor.test"', 'zone = "hang.doctor.test"') + "[dns]\nstage_budget_ms = 10000\n"
    h = Milter(milter, work, "hang", hang, server.port)
    h.wait_log(r"starting: listening", 15)
    time.sleep(0.5)
    rc, took = h.terminate()
    text = h.text()
    expect("reputation monitor: stopping" in text and "reputation monitor: 1 IPs" not in text,
           "the first round was still waiting on DNS when the monitor was stopped")
    expect(rc == 0 and took is not None and took < 1.0,
           f"SIGTERM mid-round: the monitor stops within 1 s of libmilter (exit {rc}, {took} s)")


if __name__ == "__main__":
    sys.exit(main())
