#include "report/dmarc_mail.hpp"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "report/dmarc_aggregate.hpp"

namespace vigil::report {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool address_char(char c) {
    // Printable ASCII without space and the characters that would change the meaning of a
    // command line, a header field or an address list.
    return c > 0x20 && c < 0x7f && c != '<' && c != '>' && c != ',' && c != ';' && c != '"' && c != '\\' &&
           c != '(' && c != ')' && c != '[' && c != ']';
}

bool domain_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

}  // namespace

std::optional<MailtoUri> parse_mailto(std::string_view uri) {
    uri = core::trim(uri);
    if (uri.size() > limits::max_rua_uri || uri.size() < 7 || !core::iequals(uri.substr(0, 7), "mailto:")) {
        return std::nullopt;
    }
    uri.remove_prefix(7);
    MailtoUri out;
    // "!" size [unit]: the size limit ends the URI (a literal '!' in an address must be %21).
    if (auto bang = uri.rfind('!'); bang != std::string_view::npos) {
        auto size = uri.substr(bang + 1);
        uri = uri.substr(0, bang);
        std::uint64_t unit = 1;
        if (!size.empty()) {
            switch (size.back()) {
                case 'k':
                case 'K':
                    unit = 1ull << 10;
                    break;
                case 'm':
                case 'M':
                    unit = 1ull << 20;
                    break;
                case 'g':
                case 'G':
                    unit = 1ull << 30;
                    break;
                case 't':
                case 'T':
                    unit = 1ull << 40;
                    break;
                default:
                    break;
            }
            if (unit != 1) size.remove_suffix(1);
        }
        if (size.empty() || size.size() > 12 ||
            !std::all_of(size.begin(), size.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return std::nullopt;
        }
        out.max_bytes = std::stoull(std::string(size)) * unit;
    }
    if (uri.find('?') != std::string_view::npos) return std::nullopt;  // hfields: not a plain address
    for (std::size_t i = 0; i < uri.size(); ++i) {
        char c = uri[i];
        if (c == '%') {
            if (i + 2 >= uri.size() || hex_value(uri[i + 1]) < 0 || hex_value(uri[i + 2]) < 0)
                return std::nullopt;
            c = static_cast<char>(hex_value(uri[i + 1]) * 16 + hex_value(uri[i + 2]));
            i += 2;
        }
        if (!address_char(c)) return std::nullopt;
        out.address += c;
    }
    auto at = out.address.rfind('@');
    if (at == std::string::npos || at == 0 || at + 1 == out.address.size() ||
        out.address.size() > limits::max_rua_address || out.address.front() == '-') {
        return std::nullopt;
    }
    out.domain = core::to_lower(out.address.substr(at + 1));
    if (!std::all_of(out.domain.begin(), out.domain.end(), domain_char) || out.domain.front() == '.' ||
        out.domain.find('.') == std::string::npos) {
        return std::nullopt;
    }
    if (out.domain.back() == '.') out.domain.pop_back();
    return out;
}

std::string_view to_string(Authorization a) {
    switch (a) {
        case Authorization::same_organization:
            return "same organization";
        case Authorization::authorized:
            return "authorized";
        case Authorization::refused:
            return "not authorized";
        case Authorization::temperror:
            return "temperror";
    }
    return "?";
}

bool starts_with_dmarc1(std::string_view txt) {
    auto t = core::trim(txt);
    if (t.empty() || (t[0] != 'v' && t[0] != 'V')) return false;
    t.remove_prefix(1);
    t = core::trim(t);
    if (t.empty() || t[0] != '=') return false;
    t.remove_prefix(1);
    t = core::trim(t);
    if (t.substr(0, 6) != "DMARC1") return false;
    t.remove_prefix(6);
    t = core::trim(t);
    return t.empty() || t[0] == ';';
}

DestinationCheck check_external_destination(dns::Resolver& resolver,
                                            std::chrono::steady_clock::time_point deadline,
                                            std::string_view policy_domain, std::string_view rua_domain,
                                            const std::function<std::string(std::string_view)>& org_domain) {
    DestinationCheck out;
    auto policy_org = core::to_lower(org_domain(policy_domain));
    auto rua_org = core::to_lower(org_domain(rua_domain));
    if (!policy_org.empty() && policy_org == rua_org) {
        out.result = Authorization::same_organization;
        out.detail =
            fmt::format("{} and {} share the organizational domain {}", core::printable(policy_domain),
                        core::printable(rua_domain), core::printable(policy_org));
        return out;
    }
    out.query =
        fmt::format("{}._report._dmarc.{}", core::to_lower(policy_domain), core::to_lower(rua_domain));
    if (auto q = dns::normalize_query_name(out.query); !q.ok()) {
        // A name we cannot even ask for (too long, odd bytes) can never be authorized.
        out.result = Authorization::refused;
        out.detail = fmt::format("{}: {}", core::printable(out.query), core::printable(q.error));
        return out;
    }
    auto answer = resolver.resolve(out.query, dns::RrType::txt, deadline);
    switch (answer.status) {
        case dns::Status::answer:
            for (const auto& r : answer.records) {
                if (starts_with_dmarc1(r.txt_joined())) {
                    out.result = Authorization::authorized;
                    out.detail = fmt::format("{} has a v=DMARC1 record", core::printable(out.query));
                    return out;
                }
            }
            out.result = Authorization::refused;
            out.detail =
                fmt::format("{} has TXT records, none starting with v=DMARC1", core::printable(out.query));
            return out;
        case dns::Status::nxdomain:
        case dns::Status::nodata:
            out.result = Authorization::refused;
            out.detail = fmt::format("{}: {} (the destination did not agree to receive reports for {})",
                                     core::printable(out.query), dns::to_string(answer.status),
                                     core::printable(policy_domain));
            return out;
        case dns::Status::malformed:
        case dns::Status::servfail:
        case dns::Status::timeout:
            out.result = Authorization::temperror;
            break;
    }
    out.detail = fmt::format("{}: {}{}{}", core::printable(out.query), dns::to_string(answer.status),
                             answer.detail.empty() ? "" : ": ", core::printable(answer.detail));
    return out;
}

std::string base64_encode(std::string_view data, std::size_t line_length) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t col = 0;
    auto put = [&](char c) {
        out += c;
        if (line_length && ++col == line_length) {
            out += '\n';
            col = 0;
        }
    };
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        std::uint32_t v = (static_cast<unsigned char>(data[i]) << 16) |
                          (static_cast<unsigned char>(data[i + 1]) << 8) |
                          static_cast<unsigned char>(data[i + 2]);
        put(kAlphabet[(v >> 18) & 63]);
        put(kAlphabet[(v >> 12) & 63]);
        put(kAlphabet[(v >> 6) & 63]);
        put(kAlphabet[v & 63]);
    }
    if (i < data.size()) {
        std::uint32_t v = static_cast<unsigned char>(data[i]) << 16;
        if (i + 1 < data.size()) v |= static_cast<unsigned char>(data[i + 1]) << 8;
        put(kAlphabet[(v >> 18) & 63]);
        put(kAlphabet[(v >> 12) & 63]);
        put(i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=');
        put('=');
    }
    if (line_length && col != 0) out += '\n';
    return out;
}

std::string build_report_message(const ReportMessage& m) {
    auto boundary = fmt::format("vigil-dmarc-{}", random_hex());
    std::time_t t = static_cast<std::time_t>(m.date);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char date[64];
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    std::string msg;
    msg += fmt::format("From: {}\n", m.from);
    msg += fmt::format("To: {}\n", m.to);
    msg += fmt::format("Subject: {}\n", m.subject);
    msg += fmt::format("Date: {}\n", date);
    msg += fmt::format("Message-ID: <{}.{}@{}>\n", m.date, random_hex(), m.submitter);
    // RFC 3834: an automatic message; keeps vacation responders from answering it.
    msg += "Auto-Submitted: auto-generated\n";
    msg += "MIME-Version: 1.0\n";
    msg += fmt::format("Content-Type: multipart/mixed; boundary=\"{}\"\n\n", boundary);
    msg += "This is a MIME message: a DMARC aggregate report (RFC 7489) is attached.\n\n";
    msg += fmt::format(
        "--{}\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n", boundary);
    msg += m.text;
    if (!m.text.empty() && m.text.back() != '\n') msg += '\n';
    msg += fmt::format(
        "\n--{}\nContent-Type: application/gzip; name=\"{}\"\n"
        "Content-Disposition: attachment; filename=\"{}\"\nContent-Transfer-Encoding: base64\n\n",
        boundary, m.file_name, m.file_name);
    msg += base64_encode(m.gzip);
    msg += fmt::format("\n--{}--\n", boundary);
    return msg;
}

}  // namespace vigil::report
