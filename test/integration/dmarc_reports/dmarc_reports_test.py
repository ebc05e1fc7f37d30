#!/usr/bin/env python3
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

usage: dmarc_reports_test.py VIGIL_MILTER VIGIL VIGIL_TEST_DNS RFC7489_XSD
"""

import email
import email.policy
import glob
import gzip
import os
import pwd
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))
import milter_client as mc  # noqa: E402

SUBMITTER = "mx.receiver.example"
failures = []


def expect(cond, what):
    print(f"  {'ok' if cond else 'FAIL'}: {what}")
    if not cond:
        failures.append(what)
    return cond


class DnsServer:
    def __init__(self, binary):
        cmd = [binary, "--listen", "127.0.0.1", "--port", "0", "--zone", os.path.join(HERE, "dmarcrep.test.zone"),
               "--servfail", "alpha.test._report._dmarc.flaky.test"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ""
        m = re.fullmatch(r"port (\d+)\n", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"vigil-test-dns did not start: {line!r} {self.proc.communicate()[1]}")
        self.port = int(m.group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


CONFIG = """\
[milter]
socket = "inet:{port}@127.0.0.1"
user = "{user}"
allow_root = {allow_root}

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


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def message(from_addr, subject):
    return (f"From: <{from_addr}>\r\nTo: <user@receiver.example>\r\nSubject: {subject}\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <{time.time_ns()}@x>\r\n\r\nhello\r\n").encode()


def run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    print(f"  $ {' '.join(cmd[1:])}\n    rc={done.returncode}\n" + "".join(f"    | {l}\n" for l in done.stdout.splitlines())
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
    expect(ok, f"{label}: xmllint --schema validates against RFC 7489 Appendix C ({err[-200:]})")
    root = ET.fromstring(xml_text.encode())
    expect(root.findtext("report_metadata/org_name") == "Receiver & Sons <Test>", f"{label}: org_name escaped and kept")
    expect("&amp;" in xml_text and "&lt;Test&gt;" in xml_text, f"{label}: & and < are escaped in the text")
    expect(root.findtext("report_metadata/extra_contact_info") == "https://receiver.example/dmarc?x=1&y=2",
           f"{label}: extra_contact_info")
    rid = root.findtext("report_metadata/report_id") or ""
    expect(re.fullmatch(r"alpha\.test\.\d+\.[0-9a-f]{16}", rid) is not None, f"{label}: report_id from the template ({rid})")
    pp = root.find("policy_published")
    expect(pp.findtext("domain") == "alpha.test" and pp.findtext("p") == "reject" and pp.findtext("sp") == "reject",
           f"{label}: policy_published alpha.test p=reject sp=reject (sp not published: p)")
    recs = records_of(root)
    good = recs.get("198.51.100.10", [])
    bad = recs.get("203.0.113.5", [])
    expect(len(good) == 1 and good[0].findtext("row/count") == "3", f"{label}: 3 identical passing messages merged into one record")
    expect(len(bad) == 1 and bad[0].findtext("row/count") == "2", f"{label}: 2 identical failing messages merged into one record")
    if good:
        g = good[0]
        expect(g.findtext("row/policy_evaluated/spf") == "pass" and g.findtext("row/policy_evaluated/disposition") == "none",
               f"{label}: aligned SPF pass, disposition none")
        expect(g.findtext("identifiers/header_from") == "alpha.test" and g.findtext("identifiers/envelope_from") == "alpha.test",
               f"{label}: identifiers")
        expect(g.findtext("auth_results/spf/result") == "pass" and g.findtext("auth_results/spf/scope") == "mfrom",
               f"{label}: auth_results spf pass mfrom")
    if bad:
        b = bad[0]
        expect(b.findtext("row/policy_evaluated/spf") == "fail" and b.findtext("row/policy_evaluated/dkim") == "fail",
               f"{label}: unaligned message fails both")
        expect(b.findtext("row/policy_evaluated/disposition") == "reject", f"{label}: p=reject was applied")
        expect(b.findtext("identifiers/envelope_from") == "other.test", f"{label}: envelope_from other.test")
    expect(sum(int(r.findtext("row/count")) for r in root.findall("record")) == 5, f"{label}: 5 messages in all")
    return root


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    milter_bin, vigil_bin, dns_bin, xsd = sys.argv[1:]
    if shutil.which("xmllint") is None:
        print("SKIP: xmllint is not installed (Debian package libxml2-utils)")
        return 77
    work = tempfile.mkdtemp(prefix="vigil-dmarcrep-")
    dns = None
    milter = None
    try:
        try:
            pw = pwd.getpwnam("vigil")
            user, allow_root = "vigil", "false"
        except KeyError:
            pw, user, allow_root = None, "", "true"
        store_dir = os.path.join(work, "state")
        os.mkdir(store_dir)
        if pw is not None and os.geteuid() == 0:
            # The milter drops to `vigil` before it opens the store, as in production.
            os.chmod(work, 0o755)
            os.chown(store_dir, pw.pw_uid, pw.pw_gid)
        store = os.path.join(store_dir, "dmarc.sqlite")
        outbox = os.path.join(work, "outbox")
        os.mkdir(outbox)
        sendmail = os.path.join(work, "fake-sendmail")
        with open(sendmail, "w") as f:
            f.write(FAKE_SENDMAIL.format(out=outbox, status=0))
        os.chmod(sendmail, 0o755)
        failing = os.path.join(work, "failing-sendmail")
        with open(failing, "w") as f:
            f.write(FAKE_SENDMAIL.format(out=outbox, status=75))
        os.chmod(failing, 0o755)

        dns = DnsServer(dns_bin)
        port = free_port()
        conf = os.path.join(work, "vigil.conf")
        with open(conf, "w") as f:
            f.write(CONFIG.format(port=port, user=user, allow_root=allow_root, submitter=SUBMITTER, dns_port=dns.port,
                                  enabled="true", store=store, sendmail=sendmail))
        os.chmod(conf, 0o644)

        print("a store that cannot be opened stops the milter at start")
        bad_conf = os.path.join(work, "bad.conf")
        with open(bad_conf, "w") as f:
            f.write(CONFIG.format(port=free_port(), user=user, allow_root=allow_root, submitter=SUBMITTER,
                                  dns_port=dns.port, enabled="true", store=os.path.join(work, "missing", "x.sqlite"),
                                  sendmail=sendmail))
        os.chmod(bad_conf, 0o644)
        done = subprocess.run([milter_bin, "-f", "-c", bad_conf], capture_output=True, text=True, timeout=30)
        expect(done.returncode != 0 and "DMARC report store" in done.stderr and "unable to open database file" in done.stderr,
               f"vigil-milter exits {done.returncode} with the store's path and reason "
               f"({[l for l in done.stderr.splitlines() if 'store' in l][-1:]})")

        print("the milter records DMARC evaluations")
        log_path = os.path.join(work, "milter.log")
        log = open(log_path, "wb")
        milter = subprocess.Popen([milter_bin, "-f", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        address = f"inet:{port}@127.0.0.1"
        mc.wait_until_listening(address, timeout=15, proc=milter)
        deadline = time.monotonic() + 10
        while "starting: listening" not in open(log_path, errors="replace").read():
            if milter.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("vigil-milter did not start:\n" + open(log_path, errors="replace").read())
            time.sleep(0.05)
        start = int(time.time())
        sent = [
            # three identical passing messages (SPF aligned)
            *[("a@alpha.test", "198.51.100.10", "a@alpha.test", "pass")] * 3,
            # two identical failing ones: p=reject is applied
            *[("x@other.test", "203.0.113.5", "a@alpha.test", "fail")] * 2,
            # beta.test from an IPv6 client: SPF fails, p=none
            ("b@beta.test", "2001:db8::25", "b@beta.test", "fail"),
            # gamma.test has no rua=: not recorded
            ("g@gamma.test", "198.51.100.30", "g@gamma.test", "pass"),
        ]
        for mail_from, ip, header_from, _ in sent:
            res = mc.send_message(address, mail_from, ["user@receiver.example"], message(header_from, "report test"),
                                  client_ip=ip, helo="client.example.net")
            print(f"    {header_from} from {ip}: {res.action}")
        # Stopping the milter writes what is still queued.
        milter.send_signal(signal.SIGTERM)
        rc = milter.wait(timeout=20)
        milter_log = open(log_path, errors="replace").read()
        expect(rc == 0, f"vigil-milter stopped cleanly ({rc})")
        expect("DMARC aggregate reports: recording evaluations in" in milter_log, "the milter says it records")
        con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        rows = con.execute("SELECT p.policy_domain, e.source_ip, p.rua FROM evaluation AS e "
                           "JOIN policy AS p ON p.id = e.policy_id ORDER BY e.id").fetchall()
        policies = con.execute("SELECT COUNT(*) FROM policy").fetchone()[0]
        con.close()
        expect(len(rows) == 6, f"6 evaluations recorded (gamma.test has no rua=): {[(r[0], r[1]) for r in rows]}")
        expect({r[0] for r in rows} == {"alpha.test", "beta.test"}, "only domains with rua= are recorded")
        expect(any("small@alpha.test!100" in r[2] for r in rows),
               "the recorded rua= keeps its !size suffix as published")
        expect(policies == 2, f"each domain's DMARC record is stored once ({policies} records for 6 evaluations)")
        expect(all("sixth@alpha.test" not in r[2] for r in rows),
               "a rua= URI past the fifth is not stored")
        mode = os.stat(store).st_mode & 0o777
        expect(mode == 0o600, f"the store file is created 0600 ({oct(mode)})")
        until = int(time.time()) + 60
        since = start - 60
        period = ["--since", str(since), "--until", str(until)]

        print("vigil dmarc report --out")
        outdir = os.path.join(work, "reports")
        os.mkdir(outdir)
        done = run([vigil_bin, "--config", conf, "dmarc", "report", *period, "--out", outdir])
        expect(done.returncode == 0, "exit status 0")
        files = sorted(os.listdir(outdir))
        end = until - 1
        expect(files == [f"{SUBMITTER}!alpha.test!{since}!{end}.xml.gz", f"{SUBMITTER}!beta.test!{since}!{end}.xml.gz"],
               f"one file per domain, named receiver!domain!begin!end.xml.gz: {files}")
        for name in files:
            with gzip.open(os.path.join(outdir, name), "rb") as g:
                text = g.read().decode("utf-8")
            if "!alpha.test!" in name:
                check_alpha_xml(text, xsd, work, "alpha file")
                broken = text.replace("<count>3</count>", "<cnt>3</cnt>")
                bpath = os.path.join(work, "broken.xml")
                with open(bpath, "w") as f:
                    f.write(broken)
                ok, _ = xmllint(xsd, bpath)
                expect(not ok, "the schema check can fail: a report with <cnt> does not validate")
            else:
                path = os.path.join(work, "beta.xml")
                with open(path, "w") as f:
                    f.write(text)
                ok, err = xmllint(xsd, path)
                expect(ok, f"beta file validates ({err[-200:]})")
                root = ET.fromstring(text.encode())
                expect(root.findtext("policy_published/sp") == "quarantine" and root.findtext("policy_published/adkim") == "s",
                       "beta: sp=quarantine and adkim=s as published")
                expect(root.findtext("record/row/source_ip") == "2001:db8:0:0:0:0:0:25",
                       f"beta: IPv6 source as eight groups ({root.findtext('record/row/source_ip')})")
                expect(root.findtext("record/row/count") == "1", "beta: one message")

        print("vigil dmarc report --send (fake sendmail, §7.1 authorization on the test DNS server)")
        done = run([vigil_bin, "--config", conf, "dmarc", "report", *period, "--send", "--domain", "alpha.test"])
        expect(done.returncode == 1, "exit status 1: one destination's authorization lookup failed (SERVFAIL)")
        out = done.stdout
        expect("sent to dmarc@alpha.test (same organization)" in out, "same-organization destination gets it")
        expect("sent to agg@collector.test (authorized)" in out, "authorized external destination gets it")
        expect(re.search(r"mailto:nope@refuser\.test: skipped, external destination not authorized: "
                         r"alpha\.test\._report\._dmarc\.refuser\.test: nxdomain", out) is not None,
               "external destination without an authorization record is skipped")
        expect(re.search(r"mailto:small@alpha\.test!100: skipped, the report message \(\d+ bytes\) is over", out) is not None,
               "a destination whose !size is too small is skipped")
        expect("mailto:later@flaky.test: not sent, the authorization lookup failed" in out,
               "a failing authorization lookup is reported, not guessed")
        expect("sixth@alpha.test" not in out, "the sixth rua= URI, not stored, gets nothing")
        mails = sorted(glob.glob(os.path.join(outbox, "mail.*.eml")))
        expect(len(mails) == 2, f"two messages handed to sendmail ({len(mails)})")
        rcpts = set()
        for eml in mails:
            with open(eml[:-4] + ".args") as f:
                args = f.read().split("\n")[:-1]
            expect(args[:4] == ["-i", "-f", "dmarc-reports@receiver.example", "--"] and len(args) == 5,
                   f"sendmail -i -f <from> -- <rcpt>: {args}")
            rcpts.add(args[-1])
            with open(eml, "rb") as f:
                raw = f.read()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            expect(msg["To"] == args[-1] and msg["From"] == "dmarc-reports@receiver.example", "To/From headers")
            subj = str(msg["Subject"])
            expect(re.fullmatch(rf"Report Domain: alpha\.test Submitter: {re.escape(SUBMITTER)} "
                                rf"Report-ID: <alpha\.test\.\d+\.[0-9a-f]{{16}}@{re.escape(SUBMITTER)}>", subj) is not None,
                   f"Subject per §7.2.1.1: {subj}")
            expect(msg["Date"] is not None and msg["Message-ID"] is not None and msg["MIME-Version"] == "1.0",
                   "Date, Message-ID, MIME-Version")
            expect(msg.get_content_type() == "multipart/mixed", "multipart/mixed")
            parts = list(msg.iter_attachments())
            expect(len(parts) == 1 and parts[0].get_content_type() == "application/gzip", "one application/gzip attachment")
            if parts:
                att = parts[0]
                expect(att.get_filename() == f"{SUBMITTER}!alpha.test!{since}!{end}.xml.gz", f"file name {att.get_filename()}")
                xml_text = gzip.decompress(att.get_content()).decode("utf-8")
                check_alpha_xml(xml_text, xsd, work, f"mailed to {args[-1]}")
        expect(rcpts == {"dmarc@alpha.test", "agg@collector.test"}, f"recipients {sorted(rcpts)}")

        print("a failing sendmail is an error")
        fail_conf = os.path.join(work, "fail.conf")
        with open(fail_conf, "w") as f:
            f.write(CONFIG.format(port=port, user=user, allow_root=allow_root, submitter=SUBMITTER, dns_port=dns.port,
                                  enabled="true", store=store, sendmail=failing))
        done = run([vigil_bin, "--config", fail_conf, "dmarc", "report", *period, "--send", "--domain", "beta.test"])
        expect(done.returncode == 1 and "sending failed: " in done.stdout and "exited with status 75" in done.stdout,
               "sendmail exit 75: reported, exit status 1")
        done = run([vigil_bin, "--config", conf, "dmarc", "report", *period, "--send", "--domain", "beta.test"])
        expect(done.returncode == 0 and "sent to rua@beta.test (same organization)" in done.stdout,
               "beta.test with a working sendmail: exit status 0")

        print("a period without evaluations, and usage errors")
        done = run([vigil_bin, "--config", conf, "dmarc", "report", "--since", "2001-01-01", "--until", "2001-01-02",
                    "--out", outdir])
        expect(done.returncode == 0 and "no evaluations" in done.stdout, "empty period: nothing written, status 0")
        done = run([vigil_bin, "--config", conf, "dmarc", "report", "--since", "yesterday", "--out", outdir])
        expect(done.returncode == 2, "an unparsable time is a usage error")
        done = run([vigil_bin, "--config", conf, "dmarc", "report", "--store", os.path.join(work, "none.sqlite"),
                    "--out", outdir])
        expect(done.returncode == 2 and "DMARC report store" in done.stderr, "a missing store is a clear error")
        expect(not os.path.exists(os.path.join(work, "none.sqlite")), "and the report command does not create it")
    finally:
        if milter is not None and milter.poll() is None:
            milter.kill()
            milter.wait()
        if dns is not None:
            dns.stop()
        if not failures:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"(work directory kept: {work})")
    if failures:
        print(f"{len(failures)} FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
