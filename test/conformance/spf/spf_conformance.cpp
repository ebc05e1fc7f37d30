// Runs an OpenSPF test suite (converted by suite_to_cases.py) through Vigil's SPF evaluator — the
// same auth::spf::evaluate() the milter and `vigil spf` use — against an in-memory zone served by a
// Resolver that behaves like a recursive resolver would: CNAME chains followed, loops and TIMEOUT
// names answered as failures, unknown names NXDOMAIN.
//
//   vigil-spf-conformance CASES_FILE [--name LABEL] [--verbose] [--allow ID]...
//
// Prints one line per failed test and "LABEL: N/M passed"; exits 1 if a test not named by --allow
// failed.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "auth/spf/evaluator.hpp"
#include "core/printable.hpp"
#include "dns/resolver.hpp"

namespace {

using vigil::dns::Answer;
using vigil::dns::Pending;
using vigil::dns::Record;
using vigil::dns::RrType;
using vigil::dns::Status;

std::string decode(const std::string& f) {
    std::string out;
    for (std::size_t i = 1; i < f.size(); ++i) {
        if (f[i] == '%' && i + 2 < f.size()) {
            out += static_cast<char>(std::stoi(f.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += f[i];
        }
    }
    return out;
}

std::string lower_nodot(std::string s) {
    if (!s.empty() && s.back() == '.') s.pop_back();
    return vigil::core::to_lower(s);
}

struct Node {
    bool timeout = false;
    std::vector<Record> records;
    std::vector<std::vector<std::string>> spf;  // SPF-type entries, published as TXT when no TXT given
    bool txt_given = false;
};

class ZoneResolver final : public vigil::dns::Resolver {
  public:
    std::map<std::string, Node> zone;

    void finish() {
        for (auto& [name, node] : zone) {
            if (node.txt_given) continue;
            for (const auto& strings : node.spf) {
                Record r;
                r.type = RrType::txt;
                r.name = name;
                r.txt = strings;
                node.records.push_back(r);
            }
        }
    }

    Pending lookup(std::string_view raw, RrType type) override {
        auto q = vigil::dns::normalize_query_name(raw);
        if (!q.ok()) return Pending::of(Answer::failure(Status::malformed, q.error));
        std::string name = q.name;
        for (int hop = 0; hop < 10; ++hop) {
            auto it = zone.find(name);
            if (it == zone.end()) return Pending::of(Answer::failure(Status::nxdomain, "no such name"));
            Answer a;
            a.status = Status::answer;
            a.ttl = 300;
            std::string cname;
            for (const auto& r : it->second.records) {
                if (r.type == type) a.records.push_back(r);
                if (r.type == RrType::cname) cname = r.target;
            }
            if (!a.records.empty()) return Pending::of(a);
            // pyspf's driver: TIMEOUT makes every query for which the name has no data time out.
            if (it->second.timeout)
                return Pending::of(Answer::failure(Status::timeout, "TIMEOUT in zone data"));
            if (cname.empty() || type == RrType::cname)
                return Pending::of(Answer::failure(Status::nodata, "no data"));
            name = cname;
        }
        return Pending::of(Answer::failure(Status::servfail, "CNAME chain too long or looping"));
    }
};

struct Case {
    std::string id, host, mailfrom, helo, explanation;
    std::vector<std::string> results;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr,
                     "usage: vigil-spf-conformance CASES_FILE [--name LABEL] [--verbose] [--allow ID]...\n");
        return 2;
    }
    std::string label = "spf";
    bool verbose = false;
    std::set<std::string> allowed;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--name" && i + 1 < argc)
            label = argv[++i];
        else if (a == "--verbose")
            verbose = true;
        else if (a == "--allow" && i + 1 < argc)
            allowed.insert(argv[++i]);
    }
    std::ifstream in(argv[1], std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot open %s\n", argv[1]);
        return 2;
    }
    int total = 0, passed = 0, hard_failures = 0;
    ZoneResolver resolver;
    std::vector<Case> cases;
    std::string scenario;
    auto run_scenario = [&] {
        resolver.finish();
        for (const auto& c : cases) {
            ++total;
            auto ip = vigil::core::IpAddress::parse(c.host);
            std::string got, mech, expl, problem;
            if (!ip) {
                got = "(bad host)";
            } else {
                vigil::auth::spf::Options opt;
                opt.fetch_explanation = true;
                opt.timestamp = 1400000000;
                auto id = vigil::auth::spf::mailfrom_identity(c.mailfrom, c.helo);
                auto o = vigil::auth::spf::evaluate(
                    resolver, std::chrono::steady_clock::now() + std::chrono::seconds(5), *ip, id, c.helo,
                    opt);
                got = std::string(vigil::auth::spf::to_string(o.result));
                mech = o.mechanism;
                expl = o.explanation;
                problem = o.problem;
            }
            bool ok = false;
            for (const auto& r : c.results) ok = ok || r == got;
            // Explanations are compared ignoring ASCII case: the suite expects upper-case IPv6
            // nibbles from %{ir} (pyspf's output) where RFC 7208 §7.4's own example shows lower case;
            // the name they form is the same DNS name either way.
            bool expl_ok = c.explanation.empty() || c.explanation == "DEFAULT" || got != "fail" ||
                           vigil::core::iequals(c.explanation, expl);
            if (ok && expl_ok) {
                ++passed;
                if (verbose) std::printf("ok   %s: %s\n", c.id.c_str(), got.c_str());
                continue;
            }
            std::string want;
            for (const auto& r : c.results) want += (want.empty() ? "" : "|") + r;
            bool tolerated = allowed.count(c.id) > 0;
            if (!tolerated) ++hard_failures;
            std::printf("%s %s [%s]: want %s%s, got %s (mechanism %s; explanation \"%s\"; %s)\n",
                        tolerated ? "KNOWN" : "FAIL", c.id.c_str(),
                        vigil::core::printable(scenario, 60).c_str(), want.c_str(),
                        c.explanation.empty() ? "" : (" exp \"" + c.explanation + "\"").c_str(), got.c_str(),
                        mech.c_str(), vigil::core::printable(expl).c_str(),
                        vigil::core::printable(problem).c_str());
        }
        cases.clear();
        resolver.zone.clear();
    };

    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string kind;
        ls >> kind;
        std::vector<std::string> f;
        for (std::string w; ls >> w;) f.push_back(decode(w));
        if (kind == "S" && !f.empty()) {
            scenario = f[0];
        } else if (kind == "Z" && f.size() >= 2) {
            auto name = lower_nodot(f[0]);
            auto& node = resolver.zone[name];
            const auto& t = f[1];
            Record r;
            r.name = name;
            if (t == "TIMEOUT") {
                node.timeout = true;
            } else if (t == "NONE-TXT") {
                node.txt_given = true;
            } else if (t.rfind("NONE-", 0) == 0) {
                // The name exists, without records of that type.
            } else if (t == "SPF") {
                node.spf.emplace_back(f.begin() + 2, f.end());
            } else if (t == "TXT") {
                node.txt_given = true;
                r.type = RrType::txt;
                r.txt.assign(f.begin() + 2, f.end());
                node.records.push_back(r);
            } else if ((t == "A" || t == "AAAA") && f.size() >= 3) {
                r.type = t == "A" ? RrType::a : RrType::aaaa;
                r.address = vigil::core::IpAddress::parse(f[2]);
                if (r.address) node.records.push_back(r);
            } else if (t == "MX" && f.size() >= 4) {
                r.type = RrType::mx;
                r.preference = static_cast<std::uint16_t>(std::stoi(f[2]));
                r.target = lower_nodot(f[3]);
                node.records.push_back(r);
            } else if ((t == "PTR" || t == "CNAME") && f.size() >= 3) {
                r.type = t == "PTR" ? RrType::ptr : RrType::cname;
                r.target = lower_nodot(f[2]);
                node.records.push_back(r);
            } else {
                std::fprintf(stderr, "unsupported zone entry: %s\n", vigil::core::printable(line).c_str());
            }
        } else if (kind == "T" && f.size() >= 6) {
            Case c{f[0], f[1], f[2], f[3], f[5], {}};
            std::string rs = f[4];
            for (std::size_t s = 0; s <= rs.size();) {
                auto comma = rs.find(',', s);
                if (comma == std::string::npos) comma = rs.size();
                c.results.push_back(rs.substr(s, comma - s));
                s = comma + 1;
            }
            cases.push_back(std::move(c));
        } else if (kind == "E") {
            run_scenario();
        }
    }
    run_scenario();
    std::printf("%s: %d/%d passed\n", label.c_str(), passed, total);
    return hard_failures == 0 ? 0 : 1;
}
