#include "tools/bench/corpus.hpp"

#include <ctime>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "auth/dkim/keys.hpp"
#include "auth/dkim/sign.hpp"
#include "auth/dkim/verify.hpp"
#include "core/message.hpp"

namespace vigil::bench {
namespace dk = vigil::auth::dkim;
namespace {

constexpr const char* kWords[] = {
    "the",      "quarterly", "report",   "shows",   "that",     "delivery", "latency", "stayed",  "within",
    "budget",   "while",     "message",  "volume",  "grew",     "by",       "twelve",  "percent", "across",
    "all",      "regions",   "please",   "review",  "attached", "figures",  "before",  "friday",  "and",
    "send",     "comments",  "to",       "team",    "lead",     "meeting",  "notes",   "follow",  "below",
    "we",       "agreed",    "on",       "three",   "actions",  "first",    "migrate", "relay",   "hosts",
    "second",   "rotate",    "keys",     "third",   "publish",  "policy",   "records", "thanks",  "regards",
    "schedule", "invoice",   "customer", "account", "update",   "network",  "server",  "archive", "monday",
};

// Deterministic text of about `bytes` bytes in CRLF lines of at most 76 characters.
std::string make_body(std::mt19937_64& rng, std::size_t bytes) {
    std::string body;
    body.reserve(bytes + 80);
    std::string line;
    std::uniform_int_distribution<std::size_t> pick(0, std::size(kWords) - 1);
    while (body.size() < bytes) {
        std::string_view w = kWords[pick(rng)];
        if (line.size() + 1 + w.size() > 76) {
            body += line;
            body += "\r\n";
            line.clear();
            if (rng() % 9 == 0 && body.size() + 2 < bytes) body += "\r\n";  // paragraphs
            continue;
        }
        if (!line.empty()) line += ' ';
        line += w;
    }
    if (!line.empty()) body += line + "\r\n";
    return body;
}

std::shared_ptr<const dk::SigningKey> make_key(dk::KeyType type, const std::string& domain,
                                               const std::string& selector, const std::string& pem) {
    auto parsed = dk::parse_private_key(pem);
    if (!parsed.key) throw std::runtime_error("corpus: cannot parse generated key: " + parsed.error);
    auto k = std::make_shared<dk::SigningKey>();
    k->domain = domain;
    k->selector = selector;
    k->type = parsed.type;
    k->key = std::shared_ptr<EVP_PKEY>(parsed.key.release(), dk::PkeyFree{});
    (void)type;
    return k;
}

// Header fields as Postfix presents them to a filter: CRLF inside a folded value becomes a bare LF.
std::vector<HeaderField> milter_view(const std::vector<core::HeaderField>& fields) {
    std::vector<HeaderField> out;
    out.reserve(fields.size());
    for (const auto& f : fields) {
        HeaderField h{f.name, {}};
        h.value.reserve(f.value.size());
        for (std::size_t i = 0; i < f.value.size(); ++i) {
            if (f.value[i] == '\r' && i + 1 < f.value.size() && f.value[i + 1] == '\n') continue;
            h.value += f.value[i];
        }
        out.push_back(std::move(h));
    }
    return out;
}

}  // namespace

std::string_view to_string(Kind k) {
    switch (k) {
        case Kind::plain:
            return "unsigned";
        case Kind::rsa:
            return "rsa";
        case Kind::ed25519:
            return "ed25519";
        case Kind::dual:
            return "dual";
    }
    return "?";
}

std::optional<Kind> parse_kind(std::string_view s) {
    for (auto k : {Kind::plain, Kind::rsa, Kind::ed25519, Kind::dual}) {
        if (s == to_string(k)) return k;
    }
    if (s == "plain" || s == "none") return Kind::plain;
    if (s == "ed") return Kind::ed25519;
    return std::nullopt;
}

std::optional<std::size_t> parse_size(std::string_view s) {
    if (s.empty()) return std::nullopt;
    std::size_t mult = 1;
    char last = s.back();
    if (last == 'k' || last == 'K') mult = 1024;
    if (last == 'm' || last == 'M') mult = 1024 * 1024;
    if (mult != 1) s.remove_suffix(1);
    if (s.empty() || s.size() > 9) return std::nullopt;
    std::size_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::size_t>(c - '0');
    }
    if (v == 0) return std::nullopt;
    return v * mult;
}

std::string size_label(std::size_t b) {
    if (b % (1024 * 1024) == 0) return fmt::format("{} MiB", b / (1024 * 1024));
    if (b % 1024 == 0) return fmt::format("{} KiB", b / 1024);
    return fmt::format("{} B", b);
}

Corpus::Corpus(const CorpusSpec& spec) {
    std::mt19937_64 rng(spec.seed);
    for (int d = 0; d < spec.variants; ++d) domains_.push_back(fmt::format("s{}.{}", d, kZone));
    for (int c = 0; c < spec.clients; ++c) {
        clients_.push_back({fmt::format("192.0.2.{}", 101 + c), fmt::format("mail-{}.c.{}", c, kZone)});
    }

    // Keys are random on purpose (real keys, made fresh each run); the text is what the seed fixes.
    auto rsa = dk::generate_key(dk::KeyType::rsa, 2048);
    auto ed = dk::generate_key(dk::KeyType::ed25519, 0);
    if (!rsa.error.empty() || !ed.error.empty())
        throw std::runtime_error("corpus: key generation: " + rsa.error + ed.error);
    rsa_public_ = rsa.public_b64;
    ed_public_ = ed.public_b64;
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));

    for (std::size_t size : spec.sizes) {
        for (int v = 0; v < spec.variants; ++v) {
            const std::string& domain = domains_[static_cast<std::size_t>(v)];
            std::string head = fmt::format(
                "Received: from mail-{0}.c.bench.example (mail-{0}.c.bench.example [192.0.2.{1}])\r\n"
                "\tby relay.{2} (Postfix) with ESMTPS id 4Xb{3:06X}; Thu, 1 Feb 2024 10:00:{4:02} +0000\r\n"
                "From: Alice Sender <alice{3}@{2}>\r\n"
                "To: Bob Receiver <bob@{5}>\r\n"
                "Subject: benchmark message {3} of {6}\r\n"
                "Date: Thu, 1 Feb 2024 10:00:{4:02} +0000\r\n"
                "Message-ID: <bench.{3}.{6}@{2}>\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=us-ascii\r\n"
                "Content-Transfer-Encoding: 7bit\r\n"
                "\r\n",
                v % spec.clients, 101 + v % spec.clients, domain, v, v % 60, kOurHost, size);
            std::string body = make_body(rng, size > head.size() ? size - head.size() : 64);
            std::string unsigned_raw = head + body;
            auto parsed = core::parse_message(unsigned_raw);

            for (Kind kind : spec.kinds) {
                std::vector<std::shared_ptr<const dk::SigningKey>> keys;
                if (kind == Kind::rsa || kind == Kind::dual)
                    keys.push_back(make_key(dk::KeyType::rsa, domain, "rsa", rsa.private_pem));
                if (kind == Kind::ed25519 || kind == Kind::dual)
                    keys.push_back(make_key(dk::KeyType::ed25519, domain, "ed", ed.private_pem));
                std::string raw = unsigned_raw;
                if (!keys.empty()) {
                    dk::SignParams params;
                    params.timestamp = now;
                    dk::Signer signer(keys, params);
                    signer.body(parsed.body);
                    auto out = signer.finish(dk::header_refs(parsed.headers));
                    if (!out.error.empty() || out.values.size() != keys.size())
                        throw std::runtime_error("corpus: signing failed: " + out.error);
                    std::string sigs;
                    for (const auto& value : out.values) sigs += "DKIM-Signature:" + value + "\r\n";
                    raw = sigs + raw;
                }
                auto fields = core::parse_message(raw);
                Message m;
                m.kind = kind;
                m.size = size;
                m.variant = v;
                m.domain = domain;
                m.mail_from = fmt::format("alice{}@{}", v, domain);
                m.rcpt = fmt::format("bob@{}", kOurHost);
                m.headers = milter_view(fields.headers);
                m.body = std::move(fields.body);
                m.raw = std::move(raw);
                cells_[{size, kind}].push_back(std::move(m));
            }
        }
    }
}

const std::vector<Message>& Corpus::cell(std::size_t size, Kind kind) const {
    auto it = cells_.find({size, kind});
    if (it == cells_.end())
        throw std::runtime_error(
            fmt::format("corpus has no {} {} messages", size_label(size), to_string(kind)));
    return it->second;
}

std::vector<std::string> Corpus::write_zones(const std::string& dir) const {
    // Long TTLs (and a long negative TTL in the SOA) keep every answer in the filters' caches for the
    // whole run: the benchmark measures a warm cache, as on a busy server.
    std::string fwd = fmt::format(
        "$ORIGIN {0}.\n$TTL 86400\n"
        "@ IN SOA ns.{0}. hostmaster.{0}. 1 7200 900 1209600 86400\n"
        "@ IN NS ns.{0}.\n"
        "ns IN A 127.0.0.1\n"
        "{1}. IN A 127.0.0.1\n"
        "_spf IN TXT \"v=spf1 ip4:192.0.2.96/28 ip4:198.51.100.0/24 -all\"\n"
        "; RFC 5782 test entries of the two lists; the clients are listed on neither (NXDOMAIN).\n"
        "2.0.0.127.bl IN A 127.0.0.2\n"
        "2.0.0.127.bl IN TXT \"test entry\"\n"
        "2.0.0.127.wl IN A 127.0.10.2\n",
        kZone, kOurHost);
    for (const auto& d : domains_) {
        fwd += fmt::format("{0}. IN TXT \"v=spf1 mx include:_spf.{1} -all\"\n", d, kZone);
        fwd += fmt::format("{0}. IN MX 10 relay.{0}.\n", d);
        fwd += fmt::format("relay.{0}. IN A 198.51.100.25\n", d);
        fwd += fmt::format("_dmarc.{0}. IN TXT \"v=DMARC1; p=reject; adkim=r; aspf=r\"\n", d);
        fwd += dk::key_txt_record("rsa", d, dk::KeyType::rsa, rsa_public_) + "\n";
        fwd += dk::key_txt_record("ed", d, dk::KeyType::ed25519, ed_public_) + "\n";
    }
    std::string rev = fmt::format(
        "$ORIGIN 2.0.192.in-addr.arpa.\n$TTL 86400\n"
        "@ IN SOA ns.{0}. hostmaster.{0}. 1 7200 900 1209600 86400\n"
        "@ IN NS ns.{0}.\n",
        kZone);
    for (const auto& c : clients_) {
        fwd += fmt::format("{0}. IN A {1}\n", c.name, c.ip);
        fwd += fmt::format("{0}. IN TXT \"v=spf1 a -all\"\n", c.name);
        rev += fmt::format("{0} IN PTR {1}.\n", c.ip.substr(c.ip.rfind('.') + 1), c.name);
    }
    std::vector<std::string> paths = {dir + "/bench.example.zone", dir + "/reverse.zone"};
    for (auto [path, text] : {std::pair{paths[0], &fwd}, std::pair{paths[1], &rev}}) {
        std::ofstream f(path, std::ios::trunc);
        f << *text;
        if (!f) throw std::runtime_error("cannot write " + path);
    }
    return paths;
}

void Corpus::write_messages(const std::string& dir) const {
    for (const auto& [key, msgs] : cells_) {
        for (const auto& m : msgs) {
            auto path = fmt::format("{}/{}-{}-{}.eml", dir, key.first, to_string(key.second), m.variant);
            std::ofstream f(path, std::ios::binary | std::ios::trunc);
            f << m.raw;
            if (!f) throw std::runtime_error("cannot write " + path);
        }
    }
}

}  // namespace vigil::bench
