#include "auth/dkim/canon.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "auth/dkim/dkim_limits.hpp"

namespace vigil::auth::dkim {

namespace {
// SP, HTAB, CR and LF: the bytes relaxed header canonicalisation removes or folds.
constexpr std::array<bool, 256> header_space = [] {
    std::array<bool, 256> t{};
    t[' '] = t['\t'] = t['\r'] = t['\n'] = true;
    return t;
}();
}  // namespace

std::string_view to_string(Canon c) {
    return c == Canon::simple ? "simple" : "relaxed";
}

std::string canon_header(Canon c, std::string_view name, std::string_view value) {
    std::string out;
    append_canon_header(out, c, name, value);
    return out;
}

void append_canon_header(std::string& out, Canon c, std::string_view name, std::string_view value) {
    if (c == Canon::simple) {
        out.append(name).append(":").append(value).append("\r\n");
        return;
    }
    // Written through a pointer into room made up front (the output is never longer than the input
    // plus ":\r\n"): appending byte by byte was most of the header hashing cost.
    const std::size_t start = out.size();
    out.resize(start + name.size() + value.size() + 3);
    char* const begin = out.data() + start;
    char* o = begin;
    for (char ch : name) *o++ = ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
    // RFC 6376 §3.4.2: no white space around the colon (names never hold WSP in core::Message, but be
    // safe), unfold, compress WSP runs, trim.
    while (o != begin && (o[-1] == ' ' || o[-1] == '\t')) --o;
    *o++ = ':';
    bool wsp = false, any = false;
    const char* v = value.data();
    const char* const end = v + value.size();
    while (v != end) {
        char ch = *v;
        if (ch == '\r' || ch == '\n') {
            ++v;
            continue;
        }
        if (ch == ' ' || ch == '\t') {
            wsp = true;
            ++v;
            continue;
        }
        if (wsp && any) *o++ = ' ';
        wsp = false;
        any = true;
        // The run of bytes up to the next SP, HTAB, CR or LF goes out as it is.
        do {
            *o++ = *v++;
        } while (v != end && !header_space[static_cast<unsigned char>(*v)]);
    }
    *o++ = '\r';
    *o++ = '\n';
    out.resize(static_cast<std::size_t>(o - out.data()));
}

std::size_t BodyCanonicalizer::relaxed_run_end(const char* p, std::size_t j, std::size_t n) {
    if constexpr (std::endian::native == std::endian::little) {
        // 16 bytes at a time (SSE2 or NEON through the compiler's vector extension): the byte loop
        // below was most of the cost of relaxed body hashing. `y` is `x` one byte on, for the
        // look-ahead after a space, so a block needs one byte past it.
        using v16 = std::uint8_t __attribute__((vector_size(16)));
        auto splat = [](std::uint8_t c) {
            v16 v;
            for (int k = 0; k < 16; ++k) v[k] = c;
            return v;
        };
        const v16 sp = splat(' '), tab = splat('\t'), cr = splat('\r');
        while (j + 17 <= n) {
            v16 x, y;
            std::memcpy(&x, p + j, 16);
            std::memcpy(&y, p + j + 1, 16);
            auto stop = (x == cr) | (x == tab) | ((x == sp) & ((y == sp) | (y == tab) | (y == cr)));
            std::uint64_t lo, hi;
            std::memcpy(&lo, &stop, 8);
            std::memcpy(&hi, reinterpret_cast<const char*>(&stop) + 8, 8);
            if ((lo | hi) == 0) {
                j += 16;
                continue;
            }
            return j + static_cast<std::size_t>(lo ? std::countr_zero(lo) : 64 + std::countr_zero(hi)) / 8;
        }
    }
    while (j < n) {
        char c = p[j];
        if (c == '\r' || c == '\t') break;
        if (c == ' ') {
            if (j + 1 < n && p[j + 1] != ' ' && p[j + 1] != '\t' && p[j + 1] != '\r') {
                j += 2;
                continue;
            }
            break;
        }
        ++j;
    }
    return j;
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
    auto it = std::find_if(streams_.begin(), streams_.end(),
                           [&](const Stream& s) { return s.canon == c && s.alg == alg; });
    if (it == streams_.end()) {
        if (streams_.size() >= limits::max_body_hashers) return false;
        streams_.emplace_back(c, alg);
        it = streams_.end() - 1;
        if (std::none_of(canons_.begin(), canons_.end(),
                         [&](const Canonicalizer& k) { return k.canon == c; })) {
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

std::optional<std::string> BodyHashes::result(Canon c, HashAlg alg,
                                              std::optional<std::uint64_t> length) const {
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
