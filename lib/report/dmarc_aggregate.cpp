#include "report/dmarc_aggregate.hpp"

#include <openssl/rand.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "core/ip_address.hpp"
#include "core/printable.hpp"

namespace vigil::report {

namespace {

// The value if it is one of `allowed` (compared lowercase), else `fallback`.
template <class List>
std::string token(std::string_view value, const List& allowed, std::string_view fallback) {
    auto v = core::to_lower(core::trim(value));
    for (auto a : allowed) {
        if (v == a) return v;
    }
    return std::string(fallback);
}

constexpr std::array<std::string_view, 3> kDispositions = {"none", "quarantine", "reject"};
constexpr std::array<std::string_view, 2> kAlignment = {"r", "s"};
constexpr std::array<std::string_view, 2> kDmarcResults = {"pass", "fail"};
constexpr std::array<std::string_view, 6> kOverrides = {"forwarded",    "sampled_out",  "trusted_forwarder",
                                                        "mailing_list", "local_policy", "other"};
constexpr std::array<std::string_view, 7> kDkimResults = {"none",    "pass",      "fail",     "policy",
                                                          "neutral", "temperror", "permerror"};
constexpr std::array<std::string_view, 2> kScopes = {"helo", "mfrom"};
constexpr std::array<std::string_view, 7> kSpfResults = {"none",     "neutral",   "pass",     "fail",
                                                         "softfail", "temperror", "permerror"};

// Everything of a <record> but its count: two rows with the same key are merged.
std::string row_key(const DmarcEvaluation& e) {
    std::string k;
    auto add = [&k](std::string_view s) {
        k += std::to_string(s.size());
        k += ':';
        k += s;
    };
    add(report_ip(e.source_ip));
    add(e.disposition);
    add(e.dkim_aligned);
    add(e.spf_aligned);
    k += std::to_string(e.reasons.size());
    for (const auto& r : e.reasons) add(r);
    add(e.reason_comment);
    add(e.header_from);
    add(e.envelope_from);
    add(e.envelope_to);
    k += std::to_string(e.dkim.size());
    for (const auto& d : e.dkim) {
        add(d.domain);
        add(d.selector);
        add(d.result);
    }
    k += std::to_string(e.spf.size());
    for (const auto& s : e.spf) {
        add(s.domain);
        add(s.scope);
        add(s.result);
    }
    return k;
}

bool host_name_chars(std::string_view s) {
    if (s.empty() || s.size() > 253 || s.front() == '.' || s.front() == '-') return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '-' || c == '_';
    });
}

// atext of RFC 5322 plus '.', the characters a dot-atom msg-id part may hold.
bool atext_or_dot(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos;
}

}  // namespace

std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            switch (c) {
                case '&':
                    out += "&amp;";
                    break;
                case '<':
                    out += "&lt;";
                    break;
                case '>':
                    out += "&gt;";
                    break;
                case '"':
                    out += "&quot;";
                    break;
                case '\'':
                    out += "&apos;";
                    break;
                default:
                    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
                        out += '?';
                    } else {
                        out += static_cast<char>(c);
                    }
            }
            ++i;
            continue;
        }
        // A well-formed UTF-8 sequence (no overlongs, no surrogates, at most U+10FFFF) is kept.
        std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        bool ok = len != 0 && c <= 0xF4 && i + len <= text.size();
        for (std::size_t k = 1; ok && k < len; ++k)
            ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
        if (ok && len >= 3) {
            auto c1 = static_cast<unsigned char>(text[i + 1]);
            if (c == 0xE0 && c1 < 0xA0) ok = false;   // overlong
            if (c == 0xED && c1 >= 0xA0) ok = false;  // surrogate
            if (c == 0xF0 && c1 < 0x90) ok = false;   // overlong
            if (c == 0xF4 && c1 >= 0x90) ok = false;  // beyond U+10FFFF
        }
        if (ok && len == 3 && c == 0xEF && static_cast<unsigned char>(text[i + 1]) == 0xBF &&
            static_cast<unsigned char>(text[i + 2]) >= 0xBE) {
            ok = false;  // U+FFFE and U+FFFF are not XML characters
        }
        if (ok) {
            out.append(text.substr(i, len));
            i += len;
        } else {
            out += '?';
            ++i;
        }
    }
    return out;
}

std::string report_ip(std::string_view text) {
    auto ip = core::IpAddress::parse(text);
    if (!ip) return std::string(text);
    auto u = ip->unmapped();
    if (u.is_v4()) return u.to_string();
    const auto& b = u.bytes();
    std::string out;
    for (int g = 0; g < 8; ++g) {
        if (g) out += ':';
        out += fmt::format("{:x}", (b[2 * g] << 8) | b[2 * g + 1]);
    }
    return out;
}

std::vector<AggregateRow> merge_rows(std::vector<AggregateRow> rows) {
    std::vector<AggregateRow> out;
    std::map<std::string, std::size_t> index;
    for (auto& r : rows) {
        auto key = row_key(r.evaluation);
        auto [it, fresh] = index.emplace(std::move(key), out.size());
        if (fresh) {
            out.push_back(std::move(r));
        } else {
            auto& kept = out[it->second];
            kept.count += r.count;
            kept.evaluation.time = std::max(kept.evaluation.time, r.evaluation.time);
        }
    }
    return out;
}

std::string build_report_xml(const ReportMetadata& meta, const DmarcEvaluation& policy,
                             const std::vector<AggregateRow>& input) {
    auto rows = merge_rows(input);
    auto x = [](std::string_view s) { return xml_escape(s); };
    std::string out;
    out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>\n";
    out += "  <report_metadata>\n";
    out +=
        fmt::format("    <org_name>{}</org_name>\n    <email>{}</email>\n", x(meta.org_name), x(meta.email));
    if (!meta.extra_contact_info.empty()) {
        out += fmt::format("    <extra_contact_info>{}</extra_contact_info>\n", x(meta.extra_contact_info));
    }
    out += fmt::format("    <report_id>{}</report_id>\n", x(meta.report_id));
    out += fmt::format("    <date_range>\n      <begin>{}</begin>\n      <end>{}</end>\n    </date_range>\n",
                       meta.begin, meta.end);
    out += "  </report_metadata>\n";

    // RFC 7489's schema requires sp: without one published, p applies to subdomains (§6.3).
    auto p = token(policy.p, kDispositions, "none");
    auto sp = policy.sp.empty() ? p : token(policy.sp, kDispositions, p);
    out += "  <policy_published>\n";
    out += fmt::format("    <domain>{}</domain>\n", x(policy.policy_domain));
    out += fmt::format("    <adkim>{}</adkim>\n", token(policy.adkim, kAlignment, "r"));
    out += fmt::format("    <aspf>{}</aspf>\n", token(policy.aspf, kAlignment, "r"));
    out += fmt::format("    <p>{}</p>\n    <sp>{}</sp>\n", p, sp);
    out += fmt::format("    <pct>{}</pct>\n", std::clamp(policy.pct, 0, 100));
    out += fmt::format("    <fo>{}</fo>\n", x(policy.fo.empty() ? "0" : policy.fo));
    out += "  </policy_published>\n";

    for (const auto& row : rows) {
        const auto& e = row.evaluation;
        out += "  <record>\n    <row>\n";
        out += fmt::format("      <source_ip>{}</source_ip>\n      <count>{}</count>\n",
                           x(report_ip(e.source_ip)), row.count);
        out += "      <policy_evaluated>\n";
        out += fmt::format("        <disposition>{}</disposition>\n",
                           token(e.disposition, kDispositions, "none"));
        out += fmt::format("        <dkim>{}</dkim>\n", token(e.dkim_aligned, kDmarcResults, "fail"));
        out += fmt::format("        <spf>{}</spf>\n", token(e.spf_aligned, kDmarcResults, "fail"));
        for (std::size_t i = 0; i < e.reasons.size(); ++i) {
            auto type = token(e.reasons[i], kOverrides, "other");
            // The one comment belongs to the first reason; an unknown reason keeps its name as one.
            std::string comment = i == 0 ? e.reason_comment : "";
            if (type == "other" && core::to_lower(core::trim(e.reasons[i])) != "other") {
                comment = comment.empty() ? e.reasons[i] : e.reasons[i] + ": " + comment;
            }
            out += fmt::format("        <reason>\n          <type>{}</type>\n", type);
            if (!comment.empty()) out += fmt::format("          <comment>{}</comment>\n", x(comment));
            out += "        </reason>\n";
        }
        out += "      </policy_evaluated>\n    </row>\n";
        out += "    <identifiers>\n";
        if (!e.envelope_to.empty())
            out += fmt::format("      <envelope_to>{}</envelope_to>\n", x(e.envelope_to));
        out += fmt::format("      <envelope_from>{}</envelope_from>\n", x(e.envelope_from));
        out += fmt::format("      <header_from>{}</header_from>\n", x(e.header_from));
        out += "    </identifiers>\n    <auth_results>\n";
        for (const auto& d : e.dkim) {
            out += fmt::format("      <dkim>\n        <domain>{}</domain>\n", x(d.domain));
            if (!d.selector.empty()) out += fmt::format("        <selector>{}</selector>\n", x(d.selector));
            out += fmt::format("        <result>{}</result>\n      </dkim>\n",
                               token(d.result, kDkimResults, "temperror"));
        }
        // The schema wants at least one SPF result; a message without one reports "none" for the
        // MAIL FROM domain.
        auto spf = e.spf;
        if (spf.empty()) spf.push_back({e.envelope_from, "mfrom", "none"});
        for (const auto& s : spf) {
            out += fmt::format(
                "      <spf>\n        <domain>{}</domain>\n        <scope>{}</scope>\n"
                "        <result>{}</result>\n      </spf>\n",
                x(s.domain), token(s.scope, kScopes, "mfrom"), token(s.result, kSpfResults, "temperror"));
        }
        out += "    </auth_results>\n  </record>\n";
    }
    out += "</feedback>\n";
    return out;
}

std::string report_file_name(std::string_view receiver, std::string_view policy_domain, std::int64_t begin,
                             std::int64_t end, std::string_view unique_id) {
    if (!host_name_chars(receiver) || !host_name_chars(policy_domain)) return {};
    if (!std::all_of(unique_id.begin(), unique_id.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        })) {
        return {};
    }
    std::string name =
        fmt::format("{}!{}!{}!{}", core::to_lower(receiver), core::to_lower(policy_domain), begin, end);
    if (!unique_id.empty()) name += fmt::format("!{}", unique_id);
    return name + ".xml.gz";
}

std::string gzip_compress(std::string_view data) {
    z_stream zs{};
    // windowBits 15 + 16: a gzip wrapper instead of zlib's.
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        throw std::runtime_error("zlib: deflateInit2 failed");
    }
    std::string out;
    out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 32);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&zs, Z_FINISH);
    auto produced = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) throw std::runtime_error(fmt::format("zlib: deflate failed ({})", rc));
    out.resize(produced);
    return out;
}

std::optional<std::string> report_id_template_error(std::string_view tmpl) {
    if (tmpl.empty()) return "must not be empty";
    if (tmpl.size() > 200) return "is longer than 200 characters";
    int ats = 0;
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] == '{') {
            auto close = tmpl.find('}', i);
            if (close == std::string_view::npos) return "has a '{' without '}'";
            auto name = tmpl.substr(i + 1, close - i - 1);
            if (name != "domain" && name != "begin" && name != "end" && name != "receiver" &&
                name != "random") {
                return fmt::format(
                    "has an unknown placeholder {{{}}} (known: {{domain}} {{begin}} {{end}} "
                    "{{receiver}} {{random}})",
                    core::printable(name, 40));
            }
            i = close;
        } else if (tmpl[i] == '@') {
            ++ats;
        } else if (tmpl[i] == '}' || !atext_or_dot(tmpl[i])) {
            return fmt::format(
                "may hold only letters, digits, '.', '@' and !#$%&'*+-/=?^_`|~ besides the "
                "placeholders (it becomes the Report-ID msg-id); '{}' is not allowed",
                core::printable(tmpl.substr(i, 1)));
        }
    }
    if (ats > 1) return "may hold at most one '@'";
    if (tmpl.front() == '@' || tmpl.back() == '@') return "must not start or end with '@'";
    return std::nullopt;
}

std::string expand_report_id(std::string_view tmpl, std::string_view domain, std::int64_t begin,
                             std::int64_t end, std::string_view receiver, std::string_view random) {
    std::string out;
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] == '{') {
            auto close = tmpl.find('}', i);
            if (close != std::string_view::npos) {
                auto name = tmpl.substr(i + 1, close - i - 1);
                if (name == "domain")
                    out += domain;
                else if (name == "begin")
                    out += std::to_string(begin);
                else if (name == "end")
                    out += std::to_string(end);
                else if (name == "receiver")
                    out += receiver;
                else if (name == "random")
                    out += random;
                i = close;
                continue;
            }
        }
        out += tmpl[i];
    }
    return out;
}

std::string random_hex() {
    std::array<unsigned char, 8> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        throw std::runtime_error("no random bytes from OpenSSL");
    }
    std::string out;
    for (auto b : bytes) out += fmt::format("{:02x}", b);
    return out;
}

std::string report_subject(std::string_view policy_domain, std::string_view submitter,
                           std::string_view report_id) {
    std::string id(report_id);
    if (id.find('@') == std::string::npos) id += fmt::format("@{}", submitter);
    return fmt::format("Report Domain: {} Submitter: {} Report-ID: <{}>", policy_domain, submitter, id);
}

}  // namespace vigil::report
