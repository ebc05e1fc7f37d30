#include "auth/dkim/signature.hpp"

#include "core/printable.hpp"

#include <algorithm>
#include <charconv>

#include "auth/dkim/dkim_limits.hpp"
#include "auth/dkim/tags.hpp"

namespace vigil::auth::dkim {

namespace {

// Digits only, at most 12 of them in t=/x=/l= (RFC 6376: 12-digit cap for l=, t=, x=... we take the
// first 12 as the RFC allows ignoring more; longer is a permerror here: bounded, simpler).
std::optional<std::uint64_t> parse_number(std::string_view v, std::size_t max_digits = 18) {
    if (v.empty() || v.size() > max_digits) return std::nullopt;
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
    return n;
}

// Calls f(piece) for each piece of `v` split on `sep`, with FWS around it trimmed, until f returns
// false; returns false then. No allocation: d=, s= and h= are split on every signature.
template <class F>
bool each_piece(std::string_view v, char sep, F&& f) {
    std::size_t start = 0;
    while (true) {
        auto end = v.find(sep, start);
        auto piece = v.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        while (!piece.empty() && is_fws(piece.front())) piece.remove_prefix(1);
        while (!piece.empty() && is_fws(piece.back())) piece.remove_suffix(1);
        if (!f(piece)) return false;
        if (end == std::string_view::npos) return true;
        start = end + 1;
    }
}

std::vector<std::string_view> split(std::string_view v, char sep) {
    std::vector<std::string_view> out;
    each_piece(v, sep, [&](std::string_view piece) {
        out.push_back(piece);
        return true;
    });
    return out;
}

std::string printable(std::string_view s, std::size_t max = 64) {
    std::string out;
    for (char c : s.substr(0, max)) {
        auto u = static_cast<unsigned char>(c);
        out.push_back(u >= 0x20 && u < 0x7f && c != '"' && c != '\\' ? c : '?');
    }
    return out;
}

}  // namespace

std::string_view to_string(Result r) {
    switch (r) {
        case Result::none:
            return "none";
        case Result::pass:
            return "pass";
        case Result::fail:
            return "fail";
        case Result::neutral:
            return "neutral";
        case Result::policy:
            return "policy";
        case Result::permerror:
            return "permerror";
        case Result::temperror:
            return "temperror";
    }
    return "none";
}

bool valid_domain(std::string_view d) {
    if (d.empty() || d.size() > limits::max_domain_length) return false;
    // each_piece trims FWS around pieces (right for h=), but a domain-name has none inside (§3.5 d=).
    if (std::any_of(d.begin(), d.end(), [](char c) { return is_fws(c); })) return false;
    return each_piece(d, '.', [](std::string_view label) {
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label) {
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
            if (!ok) return false;
        }
        return true;
    });
}

SignatureParse parse_signature(std::string_view value, const SignaturePolicy& policy) {
    SignatureParse out;
    auto tags = parse_tag_list(value);
    bool readable = false;  // out's report fields are filled
    auto fail = [&](std::string why, Result r = Result::permerror) {
        // Keep what can be read for reports even if the rest is broken (only here: a good signature
        // fills them from the parsed values, and this pass is a good part of a parse's cost).
        for (std::size_t k = 0; !readable && k < tags.tags.size(); ++k) {
            const auto& t = tags.tags[k];
            if (t.name == "d") out.domain = printable(core::to_lower(t.value), limits::max_domain_length);
            if (t.name == "s") out.selector = printable(core::to_lower(t.value), limits::max_domain_length);
            if (t.name == "a") out.algorithm = printable(core::to_lower(t.value), 32);
            if (t.name == "b") out.b_text = printable(strip_fws(t.value), 8);
            if (t.name == "i") out.identity = printable(t.value, 128);
        }
        out.error = r;
        out.detail = std::move(why);
        out.sig.reset();
        return out;
    };
    if (!tags.ok()) return fail("signature syntax: " + tags.error);
    Signature s;
    for (auto req : {"v", "a", "b", "bh", "d", "h", "s"}) {
        if (!tags.find(req)) return fail(std::string("missing required tag ") + req + "=");
    }
    if (tags.find("v")->value != "1")
        return fail("unsupported version v=" + printable(tags.find("v")->value, 16));

    s.algorithm = core::to_lower(tags.find("a")->value);
    if (s.algorithm == "rsa-sha256") {
        s.key_type = KeyType::rsa;
        s.hash = HashAlg::sha256;
    } else if (s.algorithm == "ed25519-sha256") {
        s.key_type = KeyType::ed25519;
        s.hash = HashAlg::sha256;
    } else if (s.algorithm == "rsa-sha1") {
        s.key_type = KeyType::rsa;
        s.hash = HashAlg::sha1;
    } else {
        return fail("unknown algorithm a=" + printable(s.algorithm, 32));
    }

    s.domain = core::to_lower(tags.find("d")->value);
    if (!valid_domain(s.domain)) return fail("invalid signing domain d=" + printable(s.domain));
    s.selector = core::to_lower(tags.find("s")->value);
    // A selector may have several labels (RFC 6376 §3.1).
    if (!valid_domain(s.selector)) return fail("invalid selector s=" + printable(s.selector));

    if (const auto* c = tags.find("c")) {
        auto parts = split(c->value, '/');
        if (parts.size() > 2) return fail("invalid c=" + printable(c->value, 32));
        auto canon_of = [](std::string_view v) -> std::optional<Canon> {
            if (core::iequals(v, "simple")) return Canon::simple;
            if (core::iequals(v, "relaxed")) return Canon::relaxed;
            return std::nullopt;
        };
        auto h = canon_of(parts[0]);
        auto b = parts.size() == 2 ? canon_of(parts[1]) : std::optional(Canon::simple);
        if (!h || !b) return fail("unknown canonicalization c=" + printable(c->value, 32));
        s.header_canon = *h;
        s.body_canon = *b;
    }

    const auto h_value = tags.find("h")->value;
    const auto h_count = static_cast<std::size_t>(std::count(h_value.begin(), h_value.end(), ':')) + 1;
    if (h_count > limits::max_signed_header_names)
        return fail("h= names more than " + std::to_string(limits::max_signed_header_names) + " fields");
    s.signed_headers.reserve(h_count);
    bool has_from = false;
    const char* h_error = nullptr;
    each_piece(h_value, ':', [&](std::string_view n) {
        if (n.empty()) {
            h_error = "empty header name in h=";
            return false;
        }
        for (char c : n) {
            auto u = static_cast<unsigned char>(c);
            if (u <= 0x20 || u >= 0x7f || c == ':') {
                h_error = "invalid header name in h=";
                return false;
            }
        }
        s.signed_headers.push_back(core::to_lower(n));
        if (s.signed_headers.back() == "from") has_from = true;
        return true;
    });
    if (h_error) return fail(h_error);
    if (!has_from) return fail("h= does not include From");

    const auto* b = tags.find("b");
    auto sig = base64_decode(b->value);
    if (!sig || sig->empty()) return fail("b= is not valid base64");
    if (sig->size() > limits::max_signature_bytes) return fail("b= longer than any accepted key");
    s.sig = std::move(*sig);
    s.b_text = strip_fws(b->value);
    s.b_begin = b->raw_begin;
    s.b_end = b->raw_end;
    auto bh = base64_decode(tags.find("bh")->value);
    if (!bh || bh->empty()) return fail("bh= is not valid base64");
    if (bh->size() != (s.hash == HashAlg::sha1 ? 20u : 32u))
        return fail("bh= has the wrong length for a=" + s.algorithm);
    s.body_hash = std::move(*bh);

    if (const auto* i = tags.find("i")) {
        auto at = i->value.rfind('@');
        if (at == std::string_view::npos) return fail("i= has no @");
        auto idom = core::to_lower(i->value.substr(at + 1));
        if (!valid_domain(idom)) return fail("invalid domain in i=");
        if (idom != s.domain && !(idom.size() > s.domain.size() && idom.ends_with("." + s.domain)))
            return fail("i= domain is not d= or a subdomain of it");
        s.identity = std::string(i->value);
    } else {
        s.identity = "@" + s.domain;
    }
    if (const auto* l = tags.find("l")) {
        auto n = parse_number(l->value, 18);
        if (!n) return fail("invalid l=");
        s.length = *n;
    }
    if (const auto* q = tags.find("q")) {
        bool dns = false;
        for (auto m : split(q->value, ':')) {
            if (core::iequals(m, "dns/txt") || core::iequals(m, "dns")) dns = true;
        }
        if (!dns) return fail("q= offers no dns/txt query method");
    }
    if (const auto* t = tags.find("t")) {
        auto n = parse_number(t->value, 12);
        if (!n) return fail("invalid t=");
        s.timestamp = static_cast<std::int64_t>(*n);
    }
    if (const auto* x = tags.find("x")) {
        auto n = parse_number(x->value, 12);
        if (!n) return fail("invalid x=");
        s.expiry = static_cast<std::int64_t>(*n);
        if (s.timestamp && *s.expiry < *s.timestamp) return fail("x= is before t=");
    }
    out.domain = s.domain;
    out.selector = s.selector;
    out.algorithm = s.algorithm;
    out.b_text = s.b_text.substr(0, 8);
    out.identity = printable(s.identity, 128);
    readable = true;
    if (s.hash == HashAlg::sha1 && !policy.allow_sha1) {
        out.sig = std::move(s);
        return fail("rsa-sha1 refused (RFC 8301)", Result::policy);
    }
    out.sig = std::move(s);
    return out;
}

KeyRecordParse parse_key_record(std::string_view txt) {
    KeyRecordParse out;
    auto tags = parse_tag_list(txt);
    if (!tags.ok()) {
        out.detail = "key record syntax: " + tags.error;
        return out;
    }
    KeyRecord k;
    if (const auto* v = tags.find("v")) {
        if (&tags.tags.front() != v) {
            out.detail = "v= is not the first tag of the key record";
            return out;
        }
        if (v->value != "DKIM1") {
            out.detail = "key record version is not DKIM1";
            return out;
        }
    }
    if (const auto* kt = tags.find("k")) {
        if (kt->value == "rsa") {
            k.type = KeyType::rsa;
        } else if (kt->value == "ed25519") {
            k.type = KeyType::ed25519;
        } else {
            out.detail = "unknown key type k=" + printable(kt->value, 32);
            return out;
        }
    }
    if (const auto* h = tags.find("h")) {
        for (auto n : split(h->value, ':')) k.hashes.push_back(core::to_lower(n));
    }
    if (const auto* s = tags.find("s")) {
        bool email = false;
        for (auto n : split(s->value, ':')) email = email || n == "*" || core::iequals(n, "email");
        if (!email) {
            out.detail = "key service type s= excludes email";
            return out;
        }
    }
    if (const auto* t = tags.find("t")) {
        for (auto f : split(t->value, ':')) {
            if (f == "y") k.testing = true;
            if (f == "s") k.strict = true;
        }
    }
    const auto* p = tags.find("p");
    if (!p) {
        out.detail = "key record has no p=";
        return out;
    }
    auto der = base64_decode(p->value);
    if (!der) {
        out.detail = "p= is not valid base64";
        return out;
    }
    if (der->empty()) k.revoked = true;
    k.public_key = std::move(*der);
    out.key = std::move(k);
    return out;
}

std::string header_hash_input(const std::vector<HeaderRef>& headers, Canon canon,
                              const std::vector<std::string>& signed_names, std::string_view sig_name,
                              std::string_view sig_value, std::size_t b_begin, std::size_t b_end) {
    std::string data;
    data.reserve(1024);
    // For each name, the next instance from the bottom not yet used.
    std::vector<std::pair<std::string_view, std::size_t>> used;  // name -> instances consumed
    used.reserve(signed_names.size());
    for (const auto& name : signed_names) {
        auto it = std::find_if(used.begin(), used.end(), [&](const auto& p) { return p.first == name; });
        if (it == used.end()) {
            used.emplace_back(name, 0);
            it = used.end() - 1;
        }
        std::size_t skip = it->second;
        for (auto h = headers.rbegin(); h != headers.rend(); ++h) {
            if (h->name.size() != name.size() || !core::iequals(h->name, name)) continue;
            if (skip > 0) {
                --skip;
                continue;
            }
            append_canon_header(data, canon, h->name, h->value);
            break;
        }
        ++it->second;
    }
    std::string blanked(sig_value.substr(0, b_begin));
    if (b_end <= sig_value.size()) blanked.append(sig_value.substr(b_end));
    append_canon_header(data, canon, sig_name, blanked);
    data.resize(data.size() - 2);  // no CRLF after the signature field itself
    return data;
}

}  // namespace vigil::auth::dkim
