"""DMARC aggregate reports end to end.

1. vigil-test-dns serves dmarcrep.test.zone (DMARC records with rua= destinations of every kind).
2. The real vigil-milter, with [checks.dmarc] and [dmarc_reports] on, gets mail over the milter
   protocol (test/support/milter_client.py) from IPv4 and IPv6 clients; its DMARC check records
   every evaluation of a domain with rua= in the SQLite store. Stopping it writes what is queued.
3. `vigil dmarc report --out DIR` writes one gzip file per domain, named per RFC 7489 §7.2.1.1;
   each one gunzips to XML that `xmllint --schema` validates against the RFC 7489 Appendix C schema
   (and a deliberately broken copy does not), with identical rows merged into counts.
4. `vigil dmarc report --send` mails the reports through a fake sendmail that keeps its arguments
   and input: headers, the MIME structure and the application/gzip attachment (decoded, gunzipped,
   validated) are checked, and so is who got one: the same-organization address and the external
   address that publishes <domain>._report._dmarc.<dest> get it; an external address without that
   record, an address whose !size is too small, and one whose authorization lookup fails do not
   (the last makes the exit status 1). A sendmail that fails makes it 1 as well.

    pytest test/integration/dmarc_reports/dmarc_reports_test.py [--vigil-milter PATH --vigil-cli PATH
                                                                 --vigil-test-dns PATH]

The schema is test/data/dmarc/rfc7489-appendix-c.xsd. Needs xmllint (Debian libxml2-utils): skipped
without it.
"""

import email
import email.policy
import glob
import gzip
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

import milter_client as mc
import vigil_fixtures as vf

pytestmark = pytest.mark.skipif(shutil.which("xmllint") is None,
                                reason="xmllint is not installed (Debian package libxml2-utils)")

HERE = os.path.dirname(os.path.abspath(__file__))
XSD = os.path.join(vf.REPO, "test", "data", "dmarc", "rfc7489-appendix-c.xsd")
SUBMITTER = "mx.receiver.example"


CONFIG = """\
[server]
hostname = "{submitter}"
authserv_id = "{submitter}"

[dns]
server = "127.0.0.1:{dns_port}"
stage_budget_ms = 3000

[checks.spf]
enabled = true

[checks.dkim]
enabled = true

[checks.dmarc]
enabled = true

[dmarc_reports]
enabled = {enabled}
store = "{store}"
org_name = "Receiver & Sons <Test>"
email = "postmaster@receiver.example"
extra_contact_info = "https://receiver.example/dmarc?x=1&y=2"
submitter = "{submitter}"
report_id = "{{domain}}.{{begin}}.{{random}}"
sendmail = "{sendmail}"
from = "dmarc-reports@receiver.example"
"""

FAKE_SENDMAIL = """#!/bin/sh
# Keeps each invocation: arguments one per line, the message as given.
f=$(mktemp "{out}/mail.XXXXXX")
printf '%s\\n' "$@" > "$f.args"
cat > "$f.eml"
exit {status}
"""


def message(from_addr, subject):
    return (f"From: <{from_addr}>\r\nTo: <user@receiver.example>\r\nSubject: {subject}\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <{time.time_ns()}@x>\r\n\r\nhello\r\n").encode()


def run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    print(f"  $ {' '.join(cmd[1:])}\n    rc={done.returncode}\n"
          + "".join(f"    | {l}\n" for l in done.stdout.splitlines())
          + "".join(f"    ! {l}\n" for l in done.stderr.splitlines()))
    return done


def xmllint(xsd, path):
    done = subprocess.run(["xmllint", "--noout", "--schema", xsd, path], capture_output=True, text=True)
    return done.returncode == 0, done.stderr.strip()


def records_of(root):
    out = {}
    for rec in root.findall("record"):
        ip = rec.findtext("row/source_ip")
        out.setdefault(ip, []).append(rec)
    return out


def check_alpha_xml(xml_text, xsd, workdir, label):
    path = os.path.join(workdir, f"{label}.xml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(xml_text)
    ok, err = xmllint(xsd, path)
    assert ok, f"{label}: xmllint --schema validates against RFC 7489 Appendix C ({err[-200:]})"
    root = ET.fromstring(xml_text.encode())
    assert root.findtext("report_metadata/org_name") == "Receiver & Sons <Test>", \
        f"{label}: org_name escaped and kept"
    assert "&amp;" in xml_text and "&lt;Test&gt;" in xml_text, f"{label}: & and < are escaped in the text"
    assert root.findtext("report_metadata/extra_contact_info") == "https://receiver.example/dmarc?x=1&y=2", \
        f"{label}: extra_contact_info"
    rid = root.findtext("report_metadata/report_id") or ""
    assert re.fullmatch(r"alpha\.test\.\d+\.[0-9a-f]{16}", rid) is not None, \
        f"{label}: report_id from the template ({rid})"
    pp = root.find("policy_published")
    assert pp.findtext("domain") == "alpha.test" and pp.findtext("p") == "reject" and pp.findtext("sp") == "reject", \
        f"{label}: policy_published alpha.test p=reject sp=reject (sp not published: p)"
    recs = records_of(root)
    good = recs.get("198.51.100.10", [])
    bad = recs.get("203.0.113.5", [])
    assert len(good) == 1 and good[0].findtext("row/count") == "3", \
        f"{label}: 3 identical passing messages merged into one record"
    assert len(bad) == 1 and bad[0].findtext("row/count") == "2", \
        f"{label}: 2 identical failing messages merged into one record"
    if good:
        g = good[0]
        assert (g.findtext("row/policy_evaluated/spf") == "pass"
                and g.findtext("row/policy_evaluated/disposition") == "none"), \
            f"{label}: aligned SPF pass, disposition none"
        assert (g.findtext("identifiers/header_from") == "alpha.test"
                and g.findtext("identifiers/envelope_from") == "alpha.test"), \
            f"{label}: identifiers"
        assert g.findtext("auth_results/spf/result") == "pass" and g.findtext("auth_results/spf/scope") == "mfrom", \
            f"{label}: auth_results spf pass mfrom"
    if bad:
        b = bad[0]
        assert b.findtext("row/policy_evaluated/spf") == "fail" and b.findtext("row/policy_evaluated/dkim") == "fail", \
            f"{label}: unaligned message fails both"
        assert b.findtext("row/policy_evaluated/disposition") == "reject", f"{label}: p=reject was applied"
        assert b.findtext("identifiers/envelope_from") == "other.test", f"{label}: envelope_from other.test"
    assert sum(int(r.findtext("row/count")) for r in root.findall("record")) == 5, f"{label}: 5 messages in all"
    return root


class Setup:
    """The DNS server with the rua= destinations, the store's directory, and config files for
    `vigil dmarc report` with a fake sendmail of their own (its messages in their own outbox)."""

    def __init__(self, launch, workdir):
        self.work = workdir
        self.dns = launch.dns([os.path.join(HERE, "dmarcrep.test.zone")],
                              ["--servfail", "alpha.test._report._dmarc.flaky.test"])
        store_dir = os.path.join(workdir, "state")
        os.mkdir(store_dir)
        user, _ = vf.milter_user()
        if user:
            # The milter drops to `vigil` before it opens the store, as in production.
            pw = pwd.getpwnam(user)
            os.chown(store_dir, pw.pw_uid, pw.pw_gid)
        self.store = os.path.join(store_dir, "dmarc.sqlite")
        self.sendmail, _ = self.fake_sendmail("milter")

    def fake_sendmail(self, name, status=0):
        """(a sendmail that keeps what it is given in WORKDIR/outbox-NAME and exits `status`, that outbox)"""
        outbox = os.path.join(self.work, f"outbox-{name}")
        os.mkdir(outbox)
        return vf.write(os.path.join(self.work, f"sendmail-{name}"), FAKE_SENDMAIL.format(out=outbox, status=status),
                        0o755), outbox

    def config(self, store=None, sendmail=None):
        return CONFIG.format(submitter=SUBMITTER, dns_port=self.dns.port, enabled="true", store=store or self.store,
                             sendmail=sendmail or self.sendmail)

    def conf(self, name, status=0):
        """A config file with a fake sendmail of its own: (the file, the sendmail's outbox)."""
        sendmail, outbox = self.fake_sendmail(name, status)
        user, allow_root = vf.milter_user()
        text = vf.milter_config(self.config(sendmail=sendmail), mc.free_inet_address(), user, allow_root)
        return vf.write(os.path.join(self.work, f"{name}.conf"), text, 0o644), outbox


@pytest.fixture(scope="module")
def setup(module_launch, workdir):
    return Setup(module_launch, workdir)


def test_store_that_cannot_be_opened_stops_the_milter(binaries, setup):
    user, allow_root = vf.milter_user()
    bad_conf = vf.write(os.path.join(setup.work, "bad.conf"), vf.milter_config(
        setup.config(store=os.path.join(setup.work, "missing", "x.sqlite")), mc.free_inet_address(), user,
        allow_root), 0o644)
    done = subprocess.run([binaries.milter, "-f", "-c", bad_conf], capture_output=True, text=True, timeout=30)
    assert (done.returncode != 0 and "DMARC report store" in done.stderr
            and "unable to open database file" in done.stderr), \
        (f"vigil-milter exits {done.returncode} with the store's path and reason "
         f"({[l for l in done.stderr.splitlines() if 'store' in l][-1:]})")


SENT = [
    # three identical passing messages (SPF aligned)
    *[("a@alpha.test", "198.51.100.10", "a@alpha.test", "pass")] * 3,
    # two identical failing ones: p=reject is applied
    *[("x@other.test", "203.0.113.5", "a@alpha.test", "fail")] * 2,
    # beta.test from an IPv6 client: SPF fails, p=none
    ("b@beta.test", "2001:db8::25", "b@beta.test", "fail"),
    # gamma.test has no rua=: not recorded
    ("g@gamma.test", "198.51.100.30", "g@gamma.test", "pass"),
]


class Recorded:
    """The real vigil-milter got SENT and was stopped (which writes what is queued): its exit status,
    its log, and the report period around it."""

    def __init__(self, launch, setup):
        m = launch.milter("milter", setup.config())
        start = int(time.time())
        for mail_from, ip, header_from, _ in SENT:
            res = mc.send_message(m.address, mail_from, ["user@receiver.example"], message(header_from, "report test"),
                                  client_ip=ip, helo="client.example.net")
            print(f"    {header_from} from {ip}: {res.action}")
        self.rc = m.signal_stop(timeout=20)
        self.log = m.log()
        self.until = int(time.time()) + 60
        self.since = start - 60
        self.end = self.until - 1
        self.period = ["--since", str(self.since), "--until", str(self.until)]


@pytest.fixture(scope="module")
def recorded(module_launch, setup):
    return Recorded(module_launch, setup)


def test_milter_records_evaluations(setup, recorded):
    assert recorded.rc == 0, f"vigil-milter stopped cleanly ({recorded.rc})"
    assert "DMARC aggregate reports: recording evaluations in" in recorded.log, "the milter says it records"
    con = sqlite3.connect(f"file:{setup.store}?mode=ro", uri=True)
    rows = con.execute("SELECT p.policy_domain, e.source_ip, p.rua FROM evaluation AS e "
                       "JOIN policy AS p ON p.id = e.policy_id ORDER BY e.id").fetchall()
    policies = con.execute("SELECT COUNT(*) FROM policy").fetchone()[0]
    con.close()
    assert len(rows) == 6, f"6 evaluations recorded (gamma.test has no rua=): {[(r[0], r[1]) for r in rows]}"
    assert {r[0] for r in rows} == {"alpha.test", "beta.test"}, "only domains with rua= are recorded"
    assert any("small@alpha.test!100" in r[2] for r in rows), \
        "the recorded rua= keeps its !size suffix as published"
    assert policies == 2, f"each domain's DMARC record is stored once ({policies} records for 6 evaluations)"
    assert all("sixth@alpha.test" not in r[2] for r in rows), "a rua= URI past the fifth is not stored"
    mode = os.stat(setup.store).st_mode & 0o777
    assert mode == 0o600, f"the store file is created 0600 ({oct(mode)})"


@pytest.fixture(scope="module")
def reports(binaries, setup, recorded):
    """`vigil dmarc report --out DIR`: (the process, DIR, the file names)."""
    conf, _ = setup.conf("out")
    outdir = os.path.join(setup.work, "reports")
    os.mkdir(outdir)
    done = run([binaries.cli, "--config", conf, "dmarc", "report", *recorded.period, "--out", outdir])
    return done, outdir, sorted(os.listdir(outdir))


def report_text(outdir, files, domain):
    name = next(n for n in files if f"!{domain}!" in n)
    with gzip.open(os.path.join(outdir, name), "rb") as g:
        return g.read().decode("utf-8")


def test_report_out_one_file_per_domain(recorded, reports):
    done, _, files = reports
    assert done.returncode == 0, "exit status 0"
    assert files == [f"{SUBMITTER}!alpha.test!{recorded.since}!{recorded.end}.xml.gz",
                     f"{SUBMITTER}!beta.test!{recorded.since}!{recorded.end}.xml.gz"], \
        f"one file per domain, named receiver!domain!begin!end.xml.gz: {files}"


def test_alpha_report(setup, reports):
    _, outdir, files = reports
    check_alpha_xml(report_text(outdir, files, "alpha.test"), XSD, setup.work, "alpha file")


def test_schema_check_can_fail(setup, reports):
    _, outdir, files = reports
    broken = report_text(outdir, files, "alpha.test").replace("<count>3</count>", "<cnt>3</cnt>")
    ok, _ = xmllint(XSD, vf.write(os.path.join(setup.work, "broken.xml"), broken))
    assert not ok, "the schema check can fail: a report with <cnt> does not validate"


def test_beta_report(setup, reports):
    _, outdir, files = reports
    text = report_text(outdir, files, "beta.test")
    ok, err = xmllint(XSD, vf.write(os.path.join(setup.work, "beta.xml"), text))
    assert ok, f"beta file validates ({err[-200:]})"
    root = ET.fromstring(text.encode())
    assert root.findtext("policy_published/sp") == "quarantine" and root.findtext("policy_published/adkim") == "s", \
        "beta: sp=quarantine and adkim=s as published"
    assert root.findtext("record/row/source_ip") == "2001:db8:0:0:0:0:0:25", \
        f"beta: IPv6 source as eight groups ({root.findtext('record/row/source_ip')})"
    assert root.findtext("record/row/count") == "1", "beta: one message"


@pytest.fixture(scope="module")
def sent_alpha(binaries, setup, recorded):
    """`vigil dmarc report --send --domain alpha.test` (fake sendmail, §7.1 authorization on the test
    DNS server): (the process, the messages handed to sendmail)."""
    conf, outbox = setup.conf("alpha")
    done = run([binaries.cli, "--config", conf, "dmarc", "report", *recorded.period, "--send", "--domain",
                "alpha.test"])
    return done, sorted(glob.glob(os.path.join(outbox, "mail.*.eml")))


def test_send_chooses_the_destinations(sent_alpha):
    done, _ = sent_alpha
    assert done.returncode == 1, "exit status 1: one destination's authorization lookup failed (SERVFAIL)"
    out = done.stdout
    assert "sent to dmarc@alpha.test (same organization)" in out, "same-organization destination gets it"
    assert "sent to agg@collector.test (authorized)" in out, "authorized external destination gets it"
    assert (re.search(r"mailto:nope@refuser\.test: skipped, external destination not authorized: "
                      r"alpha\.test\._report\._dmarc\.refuser\.test: nxdomain", out) is not None), \
        "external destination without an authorization record is skipped"
    assert re.search(r"mailto:small@alpha\.test!100: skipped, the report message \(\d+ bytes\) is over", out) \
        is not None, "a destination whose !size is too small is skipped"
    assert "mailto:later@flaky.test: not sent, the authorization lookup failed" in out, \
        "a failing authorization lookup is reported, not guessed"
    assert "sixth@alpha.test" not in out, "the sixth rua= URI, not stored, gets nothing"


def test_sent_messages(setup, recorded, sent_alpha):
    _, mails = sent_alpha
    assert len(mails) == 2, f"two messages handed to sendmail ({len(mails)})"
    rcpts = set()
    for eml in mails:
        with open(eml[:-4] + ".args") as f:
            args = f.read().split("\n")[:-1]
        assert args[:4] == ["-i", "-f", "dmarc-reports@receiver.example", "--"] and len(args) == 5, \
            f"sendmail -i -f <from> -- <rcpt>: {args}"
        rcpts.add(args[-1])
        with open(eml, "rb") as f:
            raw = f.read()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["To"] == args[-1] and msg["From"] == "dmarc-reports@receiver.example", "To/From headers"
        subj = str(msg["Subject"])
        assert re.fullmatch(rf"Report Domain: alpha\.test Submitter: {re.escape(SUBMITTER)} "
                            rf"Report-ID: <alpha\.test\.\d+\.[0-9a-f]{{16}}@{re.escape(SUBMITTER)}>", subj), \
            f"Subject per §7.2.1.1: {subj}"
        assert msg["Date"] is not None and msg["Message-ID"] is not None and msg["MIME-Version"] == "1.0", \
            "Date, Message-ID, MIME-Version"
        assert msg.get_content_type() == "multipart/mixed", "multipart/mixed"
        parts = list(msg.iter_attachments())
        assert len(parts) == 1 and parts[0].get_content_type() == "application/gzip", \
            "one application/gzip attachment"
        if parts:
            att = parts[0]
            assert att.get_filename() == f"{SUBMITTER}!alpha.test!{recorded.since}!{recorded.end}.xml.gz", \
                f"file name {att.get_filename()}"
            xml_text = gzip.decompress(att.get_content()).decode("utf-8")
            check_alpha_xml(xml_text, XSD, setup.work, f"mailed to {args[-1]}")
    assert rcpts == {"dmarc@alpha.test", "agg@collector.test"}, f"recipients {sorted(rcpts)}"


def test_failing_sendmail_is_an_error(binaries, setup, recorded):
    fail_conf, _ = setup.conf("failing", status=75)
    done = run([binaries.cli, "--config", fail_conf, "dmarc", "report", *recorded.period, "--send", "--domain",
                "beta.test"])
    assert done.returncode == 1 and "sending failed: " in done.stdout and "exited with status 75" in done.stdout, \
        "sendmail exit 75: reported, exit status 1"


def test_working_sendmail_for_beta(binaries, setup, recorded):
    conf, _ = setup.conf("beta")
    done = run([binaries.cli, "--config", conf, "dmarc", "report", *recorded.period, "--send", "--domain",
                "beta.test"])
    assert done.returncode == 0 and "sent to rua@beta.test (same organization)" in done.stdout, \
        "beta.test with a working sendmail: exit status 0"


@pytest.fixture(scope="module")
def report_conf(setup):
    conf, _ = setup.conf("usage")
    return conf


def test_period_without_evaluations(binaries, setup, recorded, report_conf):
    outdir = os.path.join(setup.work, "empty-period")
    os.mkdir(outdir)
    done = run([binaries.cli, "--config", report_conf, "dmarc", "report", "--since", "2001-01-01", "--until",
                "2001-01-02", "--out", outdir])
    assert done.returncode == 0 and "no evaluations" in done.stdout, "empty period: nothing written, status 0"


def test_unparsable_time_is_a_usage_error(binaries, setup, report_conf):
    done = run([binaries.cli, "--config", report_conf, "dmarc", "report", "--since", "yesterday", "--out",
                setup.work])
    assert done.returncode == 2, "an unparsable time is a usage error"


def test_missing_store_is_a_clear_error(binaries, setup, report_conf):
    done = run([binaries.cli, "--config", report_conf, "dmarc", "report", "--store",
                os.path.join(setup.work, "none.sqlite"), "--out", setup.work])
    assert done.returncode == 2 and "DMARC report store" in done.stderr, "a missing store is a clear error"
    assert not os.path.exists(os.path.join(setup.work, "none.sqlite")), "and the report command does not create it"
