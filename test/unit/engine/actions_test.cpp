#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "auth/authentication_results.hpp"
#include "auth/authentication_results_limits.hpp"
#include "core/printable.hpp"
#include "engine/actions.hpp"
#include "engine/config.hpp"

using namespace vigil;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

// What the MTA does with the edits, in the order given (removals and changes address the n-th field
// of that name as it stands).
Fields apply_edits(Fields fields, const std::vector<core::HeaderEdit>& edits) {
    using K = core::HeaderEdit::Kind;
    auto nth = [&](const std::string& name, int index) {
        int seen = 0;
        for (auto it = fields.begin(); it != fields.end(); ++it) {
            if (core::iequals(it->first, name) && ++seen == index) return it;
        }
        return fields.end();
    };
    for (const auto& e : edits) {
        switch (e.kind) {
            case K::insert_top:
                fields.insert(fields.begin(), {e.name, e.value});
                break;
            case K::append:
                fields.emplace_back(e.name, e.value);
                break;
            case K::change:
                if (auto it = nth(e.name, e.index); it != fields.end()) it->second = e.value;
                break;
            case K::remove:
                if (auto it = nth(e.name, e.index); it != fields.end()) fields.erase(it);
                break;
        }
    }
    return fields;
}

core::Message message_of(const Fields& fields) {
    core::Message msg;
    for (const auto& [n, v] : fields) msg.add_header(n, v);
    return msg;
}

// How a value reads back once its quoting is undone (printable ASCII kept, other bytes \xNN, cut).
std::string shown(std::string_view raw) {
    std::string out;
    for (unsigned char c : raw) {
        if (out.size() >= auth::limits::max_value_length) return out + "...";
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

struct Expected {
    std::string method, result;
    Fields properties;  // name -> value as shown()
};

struct Sample {
    std::string name;
    Fields message;                     // header fields as received
    std::vector<std::string> resinfos;  // as the checks hand them in
    std::vector<Expected> expected;
};

std::string json_string(std::string_view s) {
    return "\"" + core::json_escape(s) + "\"";
}

constexpr std::string_view ours = "mx.vigil.test";

std::vector<Sample> samples() {
    static const char raw[] = "a\"b\\c(d)e;f=g\r\nX-Injected: yes\0\xc3\xa9";
    const std::string hostile(raw, sizeof raw - 1);
    std::string long_domain;
    while (long_domain.size() < 1000) long_domain += "abcdefghi.";
    long_domain += "example";
    const Fields plain = {{"From", " a@example.com"}, {"Subject", " hi"}};
    return {
        {"clean",
         plain,
         {"iprev=pass policy.iprev=192.0.2.1",
          "spf=pass" + auth::dnssec_comment(dns::Dnssec::secure) +
              " smtp.mailfrom=" + auth::ar_value("example.com"),
          "spf=none smtp.helo=mx.example.com",
          "dkim=pass" + auth::dnssec_comment(dns::Dnssec::secure) +
              " header.d=example.com header.i=@example.com header.s=sel2024 header.a=rsa-sha256 "
              "header.b=\"AbC+/9=x\"",
          "dkim=fail (body hash did not verify) header.d=example.org header.i=user@sub.example.org "
          "header.s=ed "
          "header.a=ed25519-sha256 header.b=\"zz+/Yw==\"",
          "dmarc=pass header.from=example.com policy.dmarc=reject"},
         {{"iprev", "pass", {{"policy.iprev", "192.0.2.1"}}},
          {"spf", "pass", {{"smtp.mailfrom", "example.com"}}},
          {"spf", "none", {{"smtp.helo", "mx.example.com"}}},
          {"dkim",
           "pass",
           {{"header.d", "example.com"},
            {"header.i", "@example.com"},
            {"header.s", "sel2024"},
            {"header.a", "rsa-sha256"},
            {"header.b", "AbC+/9=x"}}},
          {"dkim",
           "fail",
           {{"header.d", "example.org"},
            {"header.i", "user@sub.example.org"},
            {"header.s", "ed"},
            {"header.a", "ed25519-sha256"},
            {"header.b", "zz+/Yw=="}}},
          {"dmarc", "pass", {{"header.from", "example.com"}, {"policy.dmarc", "reject"}}}}},
        {"ipv6 and an address literal",
         plain,
         {"spf=temperror" + auth::dnssec_comment(dns::Dnssec::bogus) +
              " smtp.helo=" + auth::ar_value("[2001:db8::25]"),
          "iprev=permerror policy.iprev=2001:db8::25", "dkim=none"},
         {{"iprev", "permerror", {{"policy.iprev", "2001:db8::25"}}},
          {"spf", "temperror", {{"smtp.helo", "[2001:db8::25]"}}},
          {"dkim", "none", {}}}},
        {"the worst bytes",
         plain,
         {"spf=fail smtp.mailfrom=" + auth::ar_value(hostile),
          "spf=neutral smtp.helo=" + auth::ar_value(long_domain),
          "dkim=permerror (" + hostile + ") header.d=" + long_domain,
          // A check that forgot to quote: the value ends at the first space or parenthesis.
          "dmarc=fail header.from=evil\"example(x)y policy.dmarc=quarantine"},
         {{"spf", "fail", {{"smtp.mailfrom", shown(hostile)}}},
          {"spf", "neutral", {{"smtp.helo", shown(long_domain)}}},
          {"dkim", "permerror", {{"header.d", shown(long_domain)}}},
          {"dmarc", "fail", {{"header.from", "evil\"example"}, {"policy.dmarc", "quarantine"}}}}},
        {"nothing to say", plain, {}, {}},
        {"forged fields claiming our authserv-id",
         {{"Authentication-Results", " mx.vigil.test; spf=pass smtp.mailfrom=example.com"},
          {"Received", " from x by y"},
          {"Authentication-Results", " other.example; dkim=pass header.d=example.com"},
          {"Authentication-Results", " MX.VIGIL.TEST; dmarc=pass header.from=example.com"},
          {"From", " a@example.com"},
          {"Authentication-Results", " (c) \"mx.vigil.test\" 1; none"},
          {"Authentication-Results", "\r\n\tmx.vigil.test;\r\n\tdkim=pass header.d=example.com"}},
         {"spf=fail smtp.mailfrom=example.com"},
         {{"spf", "fail", {{"smtp.mailfrom", "example.com"}}}}},
    };
}

}  // namespace

TEST_CASE("header edits: exactly one Authentication-Results of ours, on top, above the checks' fields",
          "[actions][ar]") {
    auto cfg = engine::load_config_string("[server]\nauthserv_id = \"mx.vigil.test\"\n");
    Fields received = {{"Authentication-Results", " mx.vigil.test; spf=pass"},
                       {"Received", " from a by b"},
                       {"Authentication-Results", " other.example; spf=fail"},
                       {"Authentication-Results", " Mx.Vigil.Test; dkim=pass"}};
    core::Envelope env;
    core::Verdict v;
    v.action = core::Action::accept;
    auto edits = engine::header_edits(*cfg, env, message_of(received), v,
                                      {"dkim=none", "spf=pass smtp.mailfrom=example.net"},
                                      {{"Received-SPF", " pass"}, {"DKIM-Signature", " v=1; d=x"}});
    auto out = apply_edits(received, edits);
    REQUIRE(out.size() == 5);
    CHECK(out[0] == std::pair<std::string, std::string>{
                        "Authentication-Results",
                        " mx.vigil.test;\r\n\tspf=pass smtp.mailfrom=example.net;\r\n\tdkim=none"});
    CHECK(out[1].first == "Received-SPF");
    CHECK(out[2].first == "DKIM-Signature");
    CHECK(out[3].first == "Received");
    CHECK(out[4] ==
          std::pair<std::string, std::string>{"Authentication-Results", " other.example; spf=fail"});

    SECTION("the forged occurrences counted while streaming are used when given") {
        engine::IncomingFields streamed(*cfg);
        for (const auto& [n, val] : received) streamed.add(n, val);
        // Not found in the (empty) message held: the streamed count is what is used.
        auto e = engine::header_edits(*cfg, env, core::Message{}, v, {}, {}, &streamed);
        auto o = apply_edits(received, e);
        REQUIRE(o.size() == 3);
        CHECK(o[0].second == " mx.vigil.test; none");
        CHECK(o[2].second == " other.example; spf=fail");
    }
    SECTION("quarantined mail keeps the header; rejected and tempfailed mail gets no edits") {
        v.action = core::Action::quarantine;
        CHECK(apply_edits(received, engine::header_edits(*cfg, env, message_of(received), v, {}))[0].second ==
              " mx.vigil.test; none");
        v.action = core::Action::tempfail;
        CHECK(engine::header_edits(*cfg, env, message_of(received), v, {}).empty());
    }
}

// Also writes the fields to $VIGIL_AR_SAMPLES (JSON lines) for test/unit/auth/authres_parse.py, which
// reads them back with python3-authres.
TEST_CASE("header edits: Authentication-Results samples", "[actions][ar][ar-samples]") {
    auto cfg = engine::load_config_string("[server]\nauthserv_id = \"mx.vigil.test\"\n");
    std::ofstream out;
    if (const char* path = std::getenv("VIGIL_AR_SAMPLES"))
        out.open(path, std::ios::binary | std::ios::trunc);
    for (const auto& s : samples()) {
        INFO(s.name);
        core::Envelope env;
        core::Verdict v;
        v.action = core::Action::accept;
        auto fields =
            apply_edits(s.message, engine::header_edits(*cfg, env, message_of(s.message), v, s.resinfos));
        std::vector<std::string> ars;
        for (const auto& [n, val] : fields) {
            if (n == "Authentication-Results") ars.push_back(val);
        }
        int mine = 0;
        for (const auto& a : ars) {
            if (auth::claimed_authserv_id(a) == std::string(ours)) ++mine;
        }
        CHECK(mine == 1);
        REQUIRE(!fields.empty());
        CHECK(fields.front().first == "Authentication-Results");
        CHECK(auth::claimed_authserv_id(fields.front().second) == std::string(ours));
        CHECK(fields.front().second.find('\0') == std::string::npos);
        if (!out.is_open()) continue;
        std::string line =
            "{\"name\":" + json_string(s.name) + ",\"authserv_id\":" + json_string(ours) + ",\"fields\":[";
        for (std::size_t i = 0; i < ars.size(); ++i) line += (i ? "," : "") + json_string(ars[i]);
        line += "],\"expected\":[";
        for (std::size_t i = 0; i < s.expected.size(); ++i) {
            const auto& e = s.expected[i];
            line += std::string(i ? "," : "") + "{\"method\":" + json_string(e.method) +
                    ",\"result\":" + json_string(e.result) + ",\"properties\":[";
            for (std::size_t j = 0; j < e.properties.size(); ++j)
                line += std::string(j ? "," : "") + "[" + json_string(e.properties[j].first) + "," +
                        json_string(e.properties[j].second) + "]";
            line += "]}";
        }
        out << line << "]}\n";
    }
}
