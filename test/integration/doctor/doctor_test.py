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
summary, the warning lines when an address becomes listed and when it is de-listed (its own server is
restarted on the same port with a changed list zone), and that SIGTERM stops it promptly.

    pytest test/integration/doctor/doctor_test.py [--vigil-test-dns PATH --vigil-cli PATH --vigil-milter PATH]
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import vigil_fixtures as vf
from vigil_fixtures import write

SOA = "@ IN SOA ns.doctor.test. hostmaster.doctor.test. 1 7200 900 1209600 1\n@ IN NS ns.doctor.test.\n"


def zone(origin, body, ttl=1):
    return f"$ORIGIN {origin}.\n$TTL {ttl}\n{SOA}{body}"


def bl_zone(listed):
    body = "".join(f"{'.'.join(reversed(ip.split('.')))} IN A 127.0.0.2\n" for ip in listed)
    # 192.0.2.30: the list refuses us, as Spamhaus answers a public resolver.
    body += "30.2.0.192 IN A 127.255.255.254\n"
    return zone("bl.doctor.test", body)


def keygen(vigil, keydir, domain, selector, kind):
    """Writes DOMAIN.SELECTOR.pem and returns the TXT record keygen prints (one zone-file line)."""
    out = subprocess.run([vigil, "dkim", "keygen", "--domain", domain, "--selector", selector, "--type", kind,
                          "--out", keydir], capture_output=True, text=True, check=True)
    return out.stdout.strip()


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


def doctor_json(vigil, conf, port, *args):
    """`vigil doctor --json`: (the finished process, its findings)."""
    r = doctor(vigil, conf, port, "--json", *args)
    return r, findings(r)


def find(doc, area, subject, text):
    return [f for f in doc["findings"] if f["area"] == area and f["subject"] == subject and text in f["reason"]]


def one(doc, area, subject, text, level, what):
    got = find(doc, area, subject, text)
    assert len(got) == 1 and got[0]["level"] == level, \
        f"{what}: {area}/{subject} '{text}' is {level} (got {[(g['level'], g['reason']) for g in got]})"
    return got[0]


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


class World:
    """The keys, the zones (clean.test signed, stale.test signed with expired signatures), and the
    server that serves them (a list that never answers as well: hang.doctor.test)."""

    def __init__(self, launch, vigil, work):
        keydir = os.path.join(work, "keys")
        os.mkdir(keydir, 0o700)
        self.keydir = keydir
        clean_rsa = keygen(vigil, keydir, "clean.test", "r1", "rsa")
        clean_ed = keygen(vigil, keydir, "clean.test", "e1", "ed25519")
        self.revoked = keygen(vigil, keydir, "faulty.test", "revoked", "ed25519")
        self.mine = keygen(vigil, keydir, "faulty.test", "wrong", "rsa")
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
        self.zones = zones = [write(os.path.join(work, n), t) for n, t in [
            ("clean.zone", clean), ("faulty.zone", faulty), ("reverse.zone", reverse),
            ("bl.zone", bl_zone(["192.0.2.20"]))]]
        zones[0] = sign(work, zones[0], "clean.test")
        stale = write(os.path.join(work, "stale.zone"), zone("stale.test", "@ IN MX 10 mx.clean.test.\n"))
        zones.append(sign(work, stale, "stale.test", "-i", "20200101000000", "-e", "20200201000000"))
        self.server = launch.dns(zones, HANG)


HANG = ["--timeout", "*.hang.doctor.test"]


@pytest.fixture(scope="module")
def world(module_launch, binaries, workdir):
    return World(module_launch, binaries.cli, workdir)


@pytest.fixture(scope="module")
def vigil(binaries):
    return binaries.cli


# ------------------------------------------------------------------------------------------- clean zone


@pytest.fixture(scope="module")
def clean_conf(world, workdir):
    keydir = world.keydir
    return write(os.path.join(workdir, "clean.conf"), conf_text(
        workdir, "mx.clean.test", ["192.0.2.10"], ["clean.test"],
        [("clean.test", "r1", f"{keydir}/clean.test.r1.pem"), ("clean.test", "e1", f"{keydir}/clean.test.e1.pem")]))


@pytest.fixture(scope="module")
def clean(vigil, world, clean_conf):
    """`vigil doctor --json` on the clean zone."""
    return doctor_json(vigil, clean_conf, world.server.port)


def test_clean_zone_all_ok(clean):
    r, doc = clean
    not_ok = [f for f in doc["findings"] if f["level"] != "ok"]
    assert not_ok == [], f"clean zone: everything ok (got {not_ok})"
    assert r.returncode == 0 and doc["exit"] == 0, f"clean signed zone: exit 0 (got {r.returncode})"
    assert doc["summary"]["warn"] == 0 and doc["summary"]["fail"] == 0 and doc["summary"]["unknown"] == 0, \
        f"clean zone: summary all ok ({doc['summary']})"


def test_clean_zone_every_area_reported(clean):
    _, doc = clean
    areas = {f["area"] for f in doc["findings"]}
    assert areas == {"lists", "rdns", "host", "mx", "spf", "dkim", "dmarc", "dnssec", "port25"}, \
        f"every area reported (got {sorted(areas)})"


def test_signed_zone_through_dns_option(clean):
    """The doctor talks to one server without validation (--dns): signed, validation not checked."""
    _, doc = clean
    dnssec = one(doc, "dnssec", "clean.test", "the zone is signed (algorithm 15, key tag", "ok",
                 "signed zone through --dns")
    assert ("validation not checked: this resolver does not validate" in dnssec["reason"]
            and "run without --dns or with a validating resolver" in dnssec["reason"]), \
        f"signed zone: says validation was not checked ({dnssec['reason']})"


CLEAN_FINDINGS = [
    ("dkim", "clean.test", "selector r1: RSA-2048 key published, matches", "clean RSA key"),
    ("dkim", "clean.test", "selector e1: Ed25519 key published, matches", "clean Ed25519 key"),
    ("rdns", "192.0.2.10", "PTR mx.clean.test resolves back to 192.0.2.10", "clean PTR"),
    ("spf", "clean.test", "192.0.2.10 is authorised", "clean SPF"),
    ("dmarc", "clean.test", "p=reject", "clean DMARC"),
]


@pytest.mark.parametrize("area,subject,text,what", CLEAN_FINDINGS, ids=[c[3] for c in CLEAN_FINDINGS])
def test_clean_finding(clean, area, subject, text, what):
    one(clean[1], area, subject, text, "ok", what)


def test_table_output(vigil, world, clean_conf):
    table = doctor(vigil, clean_conf, world.server.port, "--skip", "dnssec")
    assert (table.returncode == 0 and "\nclean.test\n" in table.stdout and "\n192.0.2.10\n" in table.stdout
            and "\033" not in table.stdout), "the table groups by subject, no colour into a pipe"
    print(table.stdout)


# ------------------------------------------------------------------------------------------- faulty zone


@pytest.fixture(scope="module")
def faulty_conf(world, workdir):
    keydir = world.keydir
    return write(os.path.join(workdir, "faulty.conf"), conf_text(
        workdir, "mx.faulty.test", ["192.0.2.20", "192.0.2.30", "192.0.2.31"], ["faulty.test"],
        [("faulty.test", "revoked", f"{keydir}/faulty.test.revoked.pem"),
         ("faulty.test", "wrong", f"{keydir}/faulty.test.wrong.pem")]))


@pytest.fixture(scope="module")
def faulty(vigil, world, faulty_conf):
    return doctor_json(vigil, faulty_conf, world.server.port)


def test_faults_exit_2(faulty):
    r, doc = faulty
    assert r.returncode == 2 and doc["exit"] == 2, f"faults: exit 2 (got {r.returncode})"


def test_listed_ip(faulty):
    f = one(faulty[1], "lists", "192.0.2.20", "LISTED on bl.doctor.test (doctorbl) with 127.0.0.2: RBL_DOCTOR_SPAM",
            "fail", "listed IP")
    assert "ask for removal at the operator of bl.doctor.test" in f["fix"], "listed IP: fix says where to go"


def test_refused_query_is_cannot_tell(faulty):
    doc = faulty[1]
    f = one(doc, "lists", "192.0.2.30", "cannot tell: bl.doctor.test (doctorbl) refused our query (127.255.255.254",
            "unknown", "refusal code is cannot tell, not clean")
    assert "resolver of your own" in f["fix"], "refusal: fix is about the resolver"
    assert not find(doc, "lists", "192.0.2.30", "not listed"), "a refused query is never reported as not listed"


def test_missing_ptr(faulty):
    f = one(faulty[1], "rdns", "192.0.2.20", "no PTR record for 192.0.2.20 (nxdomain)", "fail", "missing PTR")
    assert f["fix"].endswith("publish: 20.2.0.192.in-addr.arpa. IN PTR mx.faulty.test."), \
        f"missing PTR: fix ({f['fix']})"


def test_ptr_not_resolving_back(faulty):
    f = one(faulty[1], "rdns", "192.0.2.30", "PTR liar.faulty.test does not resolve back to 192.0.2.30", "fail",
            "PTR that does not resolve back")
    assert ("30.2.0.192.in-addr.arpa. IN PTR mx.faulty.test." in f["fix"]
            and "mx.faulty.test. IN A 192.0.2.30" in f["fix"]), f"mismatching PTR: fix ({f['fix']})"


def test_ptr_naming_another_host(faulty):
    doc = faulty[1]
    one(doc, "rdns", "192.0.2.31", "PTR other.faulty.test resolves back", "ok", "confirmed PTR")
    f = one(doc, "rdns", "192.0.2.31", "does not name mx.faulty.test, the host name we say in HELO", "warn",
            "PTR naming another host")
    assert '[server] hostname = "other.faulty.test"' in f["fix"], \
        "PTR naming another host: fix offers either side"


def test_spf_with_11_lookups(faulty):
    f = one(faulty[1], "spf", "faulty.test", "more than 10 DNS-querying terms (11 of 10 DNS-querying terms", "fail",
            "SPF with 11 lookups")
    assert 'faulty.test. IN TXT "v=spf1 ip4:192.0.2.20 ip4:192.0.2.30 ip4:192.0.2.31 -all"' in f["fix"], \
        f"SPF 11 lookups: fix ({f['fix']})"


def test_spf_plus_all(faulty):
    f = one(faulty[1], "spf", "faulty.test", "ends in +all", "warn", "+all")
    published = "v=spf1 " + " ".join(f"include:i{i}.faulty.test" for i in range(1, 12))
    assert (f["fix"].startswith("Replace it with: faulty.test. IN TXT (")
            and "".join(re.findall(r'"([^"]*)"', f["fix"])) == published + " -all"), \
        f"+all: fix is the same record ending in -all ({f['fix']})"


def test_revoked_dkim_key(faulty, world):
    f = one(faulty[1], "dkim", "faulty.test", "selector revoked: the key is revoked", "fail", "revoked DKIM key")
    assert f"Publish (from {world.keydir}/faulty.test.revoked.pem): {world.revoked}" in f["fix"], \
        "revoked key: fix is the exact record keygen printed for the private key"


def test_key_not_matching_the_private_key(faulty, world):
    f = one(faulty[1], "dkim", "faulty.test",
            "selector wrong: the published RSA-2048 key does not match the private key", "fail",
            "key mismatching the private key")
    assert f["fix"] == f"Publish (from {world.keydir}/faulty.test.wrong.pem): {world.mine}", \
        "mismatch: fix is the exact record keygen printed for the private key"


def test_dmarc_p_none_without_rua(faulty):
    f = one(faulty[1], "dmarc", "faulty.test", "p=none without rua", "warn", "p=none without rua")
    assert f["fix"].endswith('_dmarc.faulty.test. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@faulty.test"'), \
        f"p=none: fix ({f['fix']})"


def test_unsigned_zone(faulty):
    f = one(faulty[1], "dnssec", "faulty.test", "the zone is not signed (no DNSKEY)", "warn", "unsigned zone")
    assert "Sign the zone" in f["fix"] and "DS record at your registrar" in f["fix"], \
        f"unsigned zone: fix ({f['fix']})"


def test_expired_signatures(vigil, world, faulty_conf):
    others = [a for area in ("lists", "rdns", "host", "mx", "spf", "dkim", "dmarc", "port25") for a in ("--skip", area)]
    r, doc = doctor_json(vigil, faulty_conf, world.server.port, "--domain", "stale.test", *others)
    f = one(doc, "dnssec", "stale.test", "signatures expired on 2020-02-01 00:00 UTC", "fail", "expired signatures")
    assert "Re-sign the zone now" in f["fix"], f"expired signatures: fix ({f['fix']})"
    assert r.returncode == 2 and len(doc["findings"]) == 1, \
        f"expired signatures alone: exit 2 (got {r.returncode})"


def test_table_shows_the_listing(vigil, world, faulty_conf):
    r = doctor(vigil, faulty_conf, world.server.port)
    assert r.returncode == 2 and "FAIL  lists   LISTED on bl.doctor.test" in r.stdout, \
        "the table shows the listing"


def test_usage_error_is_exit_3(vigil, world, faulty_conf):
    bad = doctor(vigil, faulty_conf, world.server.port, "--skip", "nothing")
    assert bad.returncode == 3, f"a usage error is exit 3, not a finding (got {bad.returncode})"


# ------------------------------------------------------------------------------------------- the monitor


def terminate(m: vf.Milter):
    """SIGTERM; returns (exit status or None, seconds from the "reputation monitor: stopping" line,
    logged once libmilter has stopped, to the end of the process; None without that line)."""
    m.proc.send_signal(signal.SIGTERM)
    until = time.time() + 20
    stopping = None
    while time.time() < until and m.proc.poll() is None:
        if stopping is None and "reputation monitor: stopping" in m.log():
            stopping = time.time()
        time.sleep(0.01)
    if m.proc.poll() is None:
        m.kill()
        return None, None
    if stopping is None and "reputation monitor: stopping" in m.log():
        stopping = time.time()
    rc = m.stop()
    return rc, None if stopping is None else time.time() - stopping


def test_monitor_warns_when_listed_and_delisted(launch, world, workdir):
    """The monitor's start summary; when the list changes (192.0.2.10 listed, 192.0.2.20 de-listed:
    its own server restarted on the same port with a new list zone) a warning line for each; and
    SIGTERM stops it promptly."""
    bl = write(os.path.join(workdir, "monitor-bl.zone"), bl_zone(["192.0.2.20"]))
    zones = [bl if z.endswith("bl.zone") else z for z in world.zones]
    server = launch.dns(zones, HANG)
    m = launch.milter("milter", conf_text(workdir, "mx.clean.test", ["192.0.2.10", "192.0.2.20"], ["clean.test"], [],
                                          extra="interval = 1"), dns=server)
    line = m.wait_log(r"reputation monitor: .*", 15)
    line = line.group(0) if line else None
    assert line is not None and ("2 IPs on 1 lists, every 1 s: LISTED: 192.0.2.20 on bl.doctor.test (doctorbl) "
                                 "(127.0.0.2: RBL_DOCTOR_SPAM); 1 answers clean" in line), f"start summary ({line})"
    # The list changes: 192.0.2.10 gets listed, 192.0.2.20 de-listed. Same port, new zone.
    server.stop()
    write(bl, bl_zone(["192.0.2.10"]))
    launch.dns(zones, HANG, port=server.port)
    listed = m.wait_log(r"vigil-milter\[\d+\]: reputation: 192\.0\.2\.10 is now LISTED on .*", 20)
    listed = listed.group(0) if listed else None
    assert listed is not None and "bl.doctor.test (doctorbl): 127.0.0.2: RBL_DOCTOR_SPAM" in listed, \
        f"warning when an IP becomes listed ({listed})"
    delisted = m.wait_log(r"vigil-milter\[\d+\]: reputation: 192\.0\.2\.20 is no longer listed on bl\.doctor\.test.*",
                          20)
    assert delisted is not None, f"warning when an IP is de-listed ({delisted})"
    rc, took = terminate(m)
    assert rc == 0 and took is not None and took < 1.0, \
        f"SIGTERM: the monitor stops within 1 s of libmilter (exit {rc}, {took} s)"
    print("".join("    " + l for l in m.log().splitlines(True)[-7:]))


def test_monitor_stops_mid_round(launch, world, workdir):
    """SIGTERM while a round waits on a list that never answers (with this stage budget the resolver
    gives up only after 11 s, longer than libmilter takes to stop): the monitor still stops at once
    instead of finishing the round."""
    hang = conf_text(workdir, "mx.clean.test", ["192.0.2.10"], [], [], extra="interval = 1").replace(
        'zone = "bl.doctor.test"', 'zone = "hang.doctor.test"') + "[dns]\nstage_budget_ms = 10000\n"
    h = launch.milter("hang", hang, dns=world.server)
    time.sleep(0.5)
    rc, took = terminate(h)
    text = h.log()
    assert "reputation monitor: stopping" in text and "reputation monitor: 1 IPs" not in text, \
        "the first round was still waiting on DNS when the monitor was stopped"
    assert rc == 0 and took is not None and took < 1.0, \
        f"SIGTERM mid-round: the monitor stops within 1 s of libmilter (exit {rc}, {took} s)"
