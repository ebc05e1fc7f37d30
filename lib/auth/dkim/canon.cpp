#include "auth/dkim/canon.hpp"

#include <algorithm>

#include "auth/dkim/dkim_limits.hpp"

namespace vigil::auth::dkim {

std::string_view to_string(Canon c) { return c == Canon::simple ? "simple" : "relaxed"; }

std::string canon_header(Canon c, std::string_view name, std::string_view value) {
    std::string out;
    if (c == Canon::simple) {
        out.reserve(name.size() + value.size() + 3);
        out.append(name).append(":").append(value).append("\r\n");
        return out;
    }
    out.reserve(name.size() + value.size() + 3);
    for (char ch : name) out.push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch);
    // RFC 6376 §3.4.2: no white space around the colon (names never hold WSP in core::Message, but be
    // safe), unfold, compress WSP runs, trim.
    while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
    out.push_back(':');
    bool wsp = false, any = false;
    for (char ch : value) {
        if (ch == '\r' || ch == '\n') continue;
        if (ch == ' ' || ch == '\t') {
            wsp = true;
            continue;
        }
        if (wsp && any) out.push_back(' ');
        wsp = false;
        any = true;
        out.push_back(ch);
    }
    out.append("\r\n");
    return out;
}

void BodyHashes::Stream::take(std::string_view out) {
    // Split the output at every l= target so a snapshot is taken exactly there.
    while (!out.empty()) {
        auto next = std::upper_bound(lengths.begin(), lengths.end(), count);
        // Targets equal to the current count were snapshotted when the count was reached.
        if (next == lengths.end() || *next - count > out.size()) {
            hasher.update(out);
            count += out.size();
            break;
        }
        auto take_n = static_cast<std::size_t>(*next - count);
        hasher.update(out.substr(0, take_n));
        count += take_n;
        out.remove_prefix(take_n);
        snaps[count] = hasher.snapshot();
    }
}

bool BodyHashes::register_need(Canon c, HashAlg alg, std::optional<std::uint64_t> length) {
    auto it = std::find_if(streams_.begin(), streams_.end(), [&](const Stream& s) { return s.canon == c && s.alg == alg; });
    if (it == streams_.end()) {
        if (streams_.size() >= limits::max_body_hashers) return false;
        streams_.emplace_back(c, alg);
        it = streams_.end() - 1;
        if (std::none_of(canons_.begin(), canons_.end(), [&](const Canonicalizer& k) { return k.canon == c; })) {
            if (canons_.empty()) canons_.reserve(2);  // simple and relaxed: never reallocated
            canons_.emplace_back(c);
        }
    }
    if (length) {
        if (std::find(it->lengths.begin(), it->lengths.end(), *length) == it->lengths.end()) {
            if (it->lengths.size() >= limits::max_length_snapshots) return false;
            it->lengths.insert(std::upper_bound(it->lengths.begin(), it->lengths.end(), *length), *length);
            if (*length == 0) it->snaps[0] = it->hasher.snapshot();
        }
    }
    return true;
}

void BodyHashes::feed(std::string_view chunk) {
    if (finished_) return;
    for (auto& k : canons_) {
        k.body.feed(chunk, [&](std::string_view out) {
            k.count += out.size();
            for (auto& s : streams_) {
                if (s.canon == k.canon) s.take(out);
            }
        });
    }
}

void BodyHashes::finish() {
    if (finished_) return;
    for (auto& k : canons_) {
        k.body.finish([&](std::string_view out) {
            k.count += out.size();
            for (auto& s : streams_) {
                if (s.canon == k.canon) s.take(out);
            }
        });
    }
    for (auto& s : streams_) s.full = s.hasher.final();
    finished_ = true;
}

std::optional<std::string> BodyHashes::result(Canon c, HashAlg alg, std::optional<std::uint64_t> length) const {
    for (const auto& s : streams_) {
        if (s.canon != c || s.alg != alg) continue;
        if (!length) return s.full;
        if (*length == s.count) return s.full;
        auto it = s.snaps.find(*length);
        if (it == s.snaps.end()) return std::nullopt;
        return it->second;
    }
    return std::nullopt;
}

std::uint64_t BodyHashes::canonical_length(Canon c) const {
    for (const auto& k : canons_) {
        if (k.canon == c) return k.count;
    }
    return 0;
}

}  // namespace vigil::auth::dkim
