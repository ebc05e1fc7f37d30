#include "auth/dkim/sign.hpp"

#include "core/printable.hpp"

#include <algorithm>

namespace vigil::auth::dkim {

namespace {

// Appends `text` to `out`, folding (CRLF TAB) before it if the current line would pass 76 columns.
void append_folded(std::string& out, std::size_t& col, std::string_view text) {
    if (col + text.size() > 76 && col > 1) {
        out += "\r\n\t";
        col = 1;
    }
    out += text;
    col += text.size();
}
}  // namespace

std::vector<std::string> default_signed_headers() {
    return {"from",         "reply-to",
            "subject",      "date",
            "to",           "cc",
            "message-id",   "mime-version",
            "content-type", "content-transfer-encoding",
            "in-reply-to",  "references",
            "list-id",      "list-unsubscribe"};
}

std::vector<std::string> default_oversigned_headers() {
    return {"from", "subject", "date", "to", "cc", "reply-to", "message-id", "mime-version", "content-type"};
}

Signer::Signer(std::vector<std::shared_ptr<const SigningKey>> keys, SignParams params)
    : keys_(std::move(keys)), params_(std::move(params)) {
    hashes_.register_need(params_.body_canon, HashAlg::sha256, std::nullopt);
}

std::optional<std::string> compute_b(const SigningKey& key, HashAlg alg, Canon header_canon,
                                     const std::vector<HeaderRef>& headers,
                                     const std::vector<std::string>& signed_names, std::string_view sig_value,
                                     std::size_t b_begin, std::size_t b_end) {
    auto data =
        header_hash_input(headers, header_canon, signed_names, "DKIM-Signature", sig_value, b_begin, b_end);
    auto sig = sign_hash(key.key.get(), key.type, alg, digest(alg, data));
    if (!sig) return std::nullopt;
    return base64_encode(*sig);
}

Signer::Output Signer::finish(const std::vector<HeaderRef>& headers) {
    Output out;
    hashes_.finish();
    bool has_from = std::any_of(headers.begin(), headers.end(),
                                [](const HeaderRef& h) { return core::iequals(h.name, "from"); });
    if (!has_from) {
        out.error = "message has no From field; not signed";
        return out;
    }
    // h=: each configured name once per instance present, plus once more when oversigned.
    std::vector<std::string> names;
    for (const auto& n : params_.headers) {
        auto count = static_cast<std::size_t>(std::count_if(
            headers.begin(), headers.end(), [&](const HeaderRef& h) { return core::iequals(h.name, n); }));
        bool over = std::find(params_.oversign.begin(), params_.oversign.end(), n) != params_.oversign.end();
        for (std::size_t i = 0; i < count + (over ? 1 : 0); ++i) names.push_back(n);
    }
    for (const auto& n : params_.oversign) {
        if (std::find(params_.headers.begin(), params_.headers.end(), n) == params_.headers.end()) {
            auto count = static_cast<std::size_t>(
                std::count_if(headers.begin(), headers.end(),
                              [&](const HeaderRef& h) { return core::iequals(h.name, n); }));
            for (std::size_t i = 0; i < count + 1; ++i) names.push_back(n);
        }
    }
    auto bh = base64_encode(*hashes_.result(params_.body_canon, HashAlg::sha256, std::nullopt));
    for (const auto& key : keys_) {
        std::string v;
        std::size_t col = 16;  // "DKIM-Signature:" + space
        append_folded(v, col, " v=1;");
        append_folded(v, col, key->type == KeyType::rsa ? " a=rsa-sha256;" : " a=ed25519-sha256;");
        append_folded(v, col,
                      " c=" + std::string(to_string(params_.header_canon)) + "/" +
                          std::string(to_string(params_.body_canon)) + ";");
        append_folded(v, col, " d=" + key->domain + ";");
        append_folded(v, col, " s=" + key->selector + ";");
        if (params_.timestamp) {
            append_folded(v, col, " t=" + std::to_string(*params_.timestamp) + ";");
            if (params_.expire_after)
                append_folded(v, col,
                              " x=" + std::to_string(*params_.timestamp + *params_.expire_after) + ";");
        }
        for (std::size_t i = 0; i < names.size(); ++i) {
            std::string piece = (i == 0 ? " h=" : "") + names[i] + (i + 1 == names.size() ? ";" : ":");
            append_folded(v, col, piece);
        }
        append_folded(v, col, " bh=" + bh + ";");
        v += "\r\n\tb=";
        std::size_t b_begin = v.size();
        auto b = compute_b(*key, HashAlg::sha256, params_.header_canon, headers, names, v, b_begin, b_begin);
        if (!b) {
            out.error = "signing with " + key->file + " failed";
            out.values.clear();
            return out;
        }
        // Fold b= into lines of 72 characters (white space inside b= is ignored by verifiers).
        for (std::size_t i = 0; i < b->size(); i += 72) {
            if (i > 0) v += "\r\n\t ";
            v += b->substr(i, 72);
        }
        out.values.push_back(std::move(v));
    }
    return out;
}

}  // namespace vigil::auth::dkim
