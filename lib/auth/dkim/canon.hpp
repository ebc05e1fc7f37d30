#pragma once
// RFC 6376 §3.4 canonicalisation. Header fields are canonicalised one at a time; the body streams
// through a BodyCanonicalizer chunk by chunk (the body is never held), and BodyHashes keeps one
// hashing context per distinct (canonicalisation, algorithm) with snapshots at the l= lengths asked for.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "auth/dkim/crypto.hpp"

namespace vigil::auth::dkim {

enum class Canon { simple, relaxed };
std::string_view to_string(Canon c);

// "name:value\r\n" in the given canonicalisation; `value` is the exact bytes after the colon.
std::string canon_header(Canon c, std::string_view name, std::string_view value);
// The same, appended to `out`.
void append_canon_header(std::string& out, Canon c, std::string_view name, std::string_view value);

// Streaming body canonicaliser: feed() any chunking of the body, then finish(). Output is handed
// to `sink` in pieces. Memory is bounded by the output buffer whatever the input (long lines,
// runs of blank lines or white space are counted, not stored).
class BodyCanonicalizer {
  public:
    explicit BodyCanonicalizer(Canon c) : canon_(c) {}
    template <class Sink>
    void feed(std::string_view chunk, Sink&& sink) {
        std::size_t i = 0, n = chunk.size();
        while (i < n) {
            if (cr_pending_ || special(chunk[i])) {
                // The two things every line has, taken whole rather than a byte at a time: its CRLF,
                // and (relaxed) a run of white space, which is one pending space however long.
                if (!cr_pending_ && chunk[i] == '\r' && i + 1 < n && chunk[i + 1] == '\n') {
                    wsp_pending_ = false;  // relaxed: white space at the end of a line goes
                    ++pending_crlf_;
                    i += 2;
                } else if (!cr_pending_ && chunk[i] != '\r') {  // relaxed SP or HTAB
                    wsp_pending_ = true;
                    while (++i < n && (chunk[i] == ' ' || chunk[i] == '\t')) {
                    }
                } else {
                    step(chunk[i++], sink);
                }
                continue;
            }
            // A run of ordinary bytes goes out in one piece.
            std::size_t j = i + 1;
            if (canon_ == Canon::simple) {
                const void* cr = std::memchr(chunk.data() + j, '\r', n - j);
                j = cr ? static_cast<std::size_t>(static_cast<const char*>(cr) - chunk.data()) : n;
            } else {
                j = relaxed_run_end(chunk.data(), j, n);
            }
            content(chunk[i], sink);
            put_run(chunk.substr(i + 1, j - i - 1), sink);
            i = j;
        }
        flush(sink);
    }
    template <class Sink>
    void finish(Sink&& sink) {
        if (cr_pending_) {
            cr_pending_ = false;
            content('\r', sink);
        }
        // RFC 6376 §3.4.3/§3.4.4: trailing empty lines go; a non-empty body ends in one CRLF; an empty
        // body is CRLF in simple and empty in relaxed.
        if (emitted_any_ || canon_ == Canon::simple) put_run("\r\n", sink);
        flush(sink);
    }

    // Relaxed: the end of the run from `j` whose bytes all go out unchanged: no CR, no HTAB, and a
    // space only when the byte after it (within p[0, n)) is none of SP, HTAB, CR. A single space
    // between two ordinary bytes is already canonical, so ordinary text goes out a line at a time.
    static std::size_t relaxed_run_end(const char* p, std::size_t j, std::size_t n);

  private:
    static constexpr std::size_t buffer_size = 16 * 1024;

    bool special(char ch) const {
        return ch == '\r' || (canon_ == Canon::relaxed && (ch == ' ' || ch == '\t'));
    }
    template <class Sink>
    void flush(Sink& sink) {
        if (len_ > 0) {
            sink(std::string_view(buf_.data(), len_));
            len_ = 0;
        }
    }
    template <class Sink>
    void put(char ch, Sink& sink) {
        if (len_ == buffer_size) flush(sink);
        buf_[len_++] = ch;
    }
    template <class Sink>
    void put_run(std::string_view s, Sink& sink) {
        while (!s.empty()) {
            if (len_ == buffer_size) flush(sink);
            std::size_t n = std::min(s.size(), buffer_size - len_);
            std::memcpy(buf_.data() + len_, s.data(), n);
            len_ += n;
            s.remove_prefix(n);
        }
    }
    template <class Sink>
    void content(char ch, Sink& sink) {
        for (; pending_crlf_ > 0; --pending_crlf_) put_run("\r\n", sink);
        if (wsp_pending_) {
            put(' ', sink);
            wsp_pending_ = false;
        }
        put(ch, sink);
        emitted_any_ = true;
    }
    template <class Sink>
    void step(char ch, Sink& sink) {
        if (cr_pending_) {
            cr_pending_ = false;
            if (ch == '\n') {
                wsp_pending_ = false;  // relaxed: white space at the end of a line goes
                ++pending_crlf_;
                return;
            }
            content('\r', sink);  // a bare CR is ordinary data
        }
        if (ch == '\r') {
            cr_pending_ = true;
            return;
        }
        if (canon_ == Canon::relaxed && (ch == ' ' || ch == '\t')) {
            wsp_pending_ = true;
            return;
        }
        content(ch, sink);
    }

    Canon canon_;
    std::array<char, buffer_size> buf_;  // not zeroed: only [0, len_) is ever read
    std::size_t len_ = 0;
    std::uint64_t pending_crlf_ = 0;
    bool cr_pending_ = false;
    bool wsp_pending_ = false;
    bool emitted_any_ = false;
};

// Body hashes for every signature of a message. register_need() before the first chunk; then
// feed()/finish(); then result() per need.
class BodyHashes {
  public:
    // `length`: l= value, if any. Returns false when the caps on contexts or snapshots are reached.
    bool register_need(Canon c, HashAlg alg, std::optional<std::uint64_t> length);
    void feed(std::string_view chunk);
    void finish();
    // The body hash, or nullopt when l= exceeds the canonical body length.
    std::optional<std::string> result(Canon c, HashAlg alg, std::optional<std::uint64_t> length) const;
    // Canonical body bytes seen so far for (c, alg) (for l= risk reporting).
    std::uint64_t canonical_length(Canon c) const;

  private:
    struct Stream {
        Canon canon;
        HashAlg alg;
        Hasher hasher;
        std::uint64_t count = 0;
        std::vector<std::uint64_t> lengths;          // l= targets, sorted
        std::map<std::uint64_t, std::string> snaps;  // l= target -> hash
        std::optional<std::string> full;
        Stream(Canon c, HashAlg a) : canon(c), alg(a), hasher(a) {}
        void take(std::string_view out);
    };
    struct Canonicalizer {
        // Built in place: the canonicaliser holds its output buffer, too big to copy per message.
        explicit Canonicalizer(Canon c) : canon(c), body(c) {}
        Canon canon;
        BodyCanonicalizer body;
        std::uint64_t count = 0;
    };
    std::vector<Stream> streams_;
    std::vector<Canonicalizer> canons_;
    bool finished_ = false;
};

}  // namespace vigil::auth::dkim
