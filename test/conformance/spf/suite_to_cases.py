#!/usr/bin/env python3
"""Turns an OpenSPF YAML test suite (RFC 7208 / RFC 4408, as shipped by Debian's python3-spf)
into the line format vigil-spf-conformance reads, so the C++ runner needs no YAML parser.

Every field is prefixed with '=' and percent-escaped (bytes outside 0x21..0x7e and '%' become
%XX), fields are separated by one space:
  S =<scenario description>
  Z =<name> =<TYPE> =<field>...        TYPE: A AAAA MX PTR CNAME TXT SPF TIMEOUT NONE-<TYPE>
  T =<id> =<host> =<mailfrom> =<helo> =<result[,result...]> =<explanation or empty>
Usage: suite_to_cases.py SUITE.yml[.gz]   (prints to stdout; exit 3 when PyYAML is missing)
"""
import gzip
import sys

try:
    import yaml
except ImportError:
    sys.stderr.write("suite_to_cases.py: PyYAML (python3-yaml) is not installed\n")
    sys.exit(3)


def enc(value):
    if isinstance(value, bytes):
        data = value
    else:
        data = str(value).encode("utf-8")
    out = ["="]
    for b in data:
        if 0x21 <= b <= 0x7E and b != 0x25:
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def main():
    path = sys.argv[1]
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        docs = list(yaml.safe_load_all(f))
    for doc in docs:
        if not doc:
            continue
        print("S " + enc(doc.get("description", "")))
        for name, entries in (doc.get("zonedata") or {}).items():
            for entry in entries or []:
                if entry == "TIMEOUT" or (isinstance(entry, dict) and "TIMEOUT" in entry):
                    print("Z %s %s" % (enc(name), enc("TIMEOUT")))
                    continue
                for rtype, value in entry.items():
                    if value == "NONE":
                        print("Z %s %s" % (enc(name), enc("NONE-" + rtype)))
                        continue
                    values = value if isinstance(value, list) else [value]
                    print("Z %s %s %s" % (enc(name), enc(rtype), " ".join(enc(v) for v in values)))
        for tid, t in (doc.get("tests") or {}).items():
            result = t.get("result")
            results = ",".join(result) if isinstance(result, list) else result
            print("T %s %s %s %s %s %s" % (enc(tid), enc(t.get("host", "")), enc(t.get("mailfrom", "")),
                                           enc(t.get("helo", "")), enc(results), enc(t.get("explanation", ""))))
        print("E")


if __name__ == "__main__":
    main()
