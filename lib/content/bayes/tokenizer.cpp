#include "content/bayes/tokenizer.hpp"

#include <libpsl.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include "content/bayes/bayes_limits.hpp"

namespace vigil::content::bayes {

namespace {

// Bumped whenever a change makes the same message give other tokens: a store learned with another
// version is refused rather than silently mixed.
constexpr int tokenizer_version = 1;

// ---- UTF-8 and case folding

// Invalid bytes decode to U+DC80..U+DCFF (as Python's surrogateescape) and encode back to the raw
// byte: text the parser could not convert still tokenizes, byte for byte.
constexpr char32_t raw_byte_base = 0xDC00;

std::size_t decode(std::string_view s, std::size_t i, char32_t& cp) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
        cp = b;
        return 1;
    }
    std::size_t len = b >= 0xF5 ? 0 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0;
    if (len == 0 || i + len > s.size()) {
        cp = raw_byte_base + b;
        return 1;
    }
    char32_t v = len == 2 ? b & 0x1F : len == 3 ? b & 0x0F : b & 0x07;
    for (std::size_t k = 1; k < len; ++k) {
        auto c = static_cast<unsigned char>(s[i + k]);
        if ((c & 0xC0) != 0x80) {
            cp = raw_byte_base + b;
            return 1;
        }
        v = (v << 6) | (c & 0x3F);
    }
    // Overlong forms and surrogates are invalid too.
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v < 0xE000)) {
        cp = raw_byte_base + b;
        return 1;
    }
    cp = v;
    return len;
}

void encode(std::string& out, char32_t cp) {
    if (cp >= raw_byte_base + 0x80 && cp <= raw_byte_base + 0xFF) {
        out += static_cast<char>(cp - raw_byte_base);
    } else if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Simple case folding for the scripts mail mostly comes in (Latin, Greek, Cyrillic), plus the
// fullwidth ASCII forms spam uses to dodge word matches, mapped to ASCII. No ICU: a table look-up
// per character instead of a conversion of every text to UTF-16.
char32_t fold(char32_t c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xFF01 && c <= 0xFF5E) return fold(c - 0xFF01 + 0x21);
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c >= 0x100 && c <= 0x17F) {
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c + 1 : c;
        if (c == 0x178) return 0xFF;
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;
        return (c & 1) ? c : c + 1;
    }
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
    if (c == 0x3C2) return 0x3C3;  // final sigma
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

enum class CharClass { word, separator, ignorable };

constexpr bool is_ascii_word(char32_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
        case '-':
        case ',':
        case '@':
        case '*':
        case '!':
        case '_':
        case '\'':
        case '"':
        case '$':
        case '.':
            return true;
        default:
            return false;
    }
}

// For each ASCII byte: its lowercase form if it belongs inside a word, else 0.
constexpr auto ascii_word_table = [] {
    std::array<char, 128> t{};
    for (int c = 0; c < 128; ++c)
        if (is_ascii_word(static_cast<char32_t>(c)))
            t[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return t;
}();

CharClass classify(char32_t c) {
    if (c < 0x80) return is_ascii_word(c) ? CharClass::word : CharClass::separator;
    // Invisible characters spam puts inside words ("V\u200Biagra"): dropped, not split on.
    if (c == 0xAD || c == 0x34F || (c >= 0x200B && c <= 0x200D) || c == 0x2060 || c == 0xFEFF)
        return CharClass::ignorable;
    if (c >= raw_byte_base + 0x80 && c <= raw_byte_base + 0xFF) return CharClass::word;
    if (c < 0xC0) return (c == 0xAA || c == 0xB5 || c == 0xBA) ? CharClass::word : CharClass::separator;
    if ((c >= 0x2000 && c <= 0x206F) || (c >= 0x2E00 && c <= 0x2E7F) || (c >= 0x3000 && c <= 0x303F) ||
        (c >= 0xFE10 && c <= 0xFE6F) || c == 0xFFFD)
        return CharClass::separator;
    return CharClass::word;
}

void fold_into(std::string& out, std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp;
        i += decode(s, i, cp);
        encode(out, fold(cp));
    }
}

bool is_strip_char(char c) {
    return c == '-' || c == '\'' || c == '"' || c == '.' || c == ',';
}

// Calls emit(piece) for each piece of a raw word: split at runs of 3+ dots or 2+ dashes (a
// formatting habit that would otherwise glue two words into a one-off token), then stripped of
// leading and trailing - ' " . , as SpamAssassin does.
template <typename Emit>
bool emit_pieces(std::string_view w, Emit& emit) {
    std::size_t start = 0;
    auto flush = [&](std::size_t end) {
        std::string_view p = w.substr(start, end - start);
        while (!p.empty() && is_strip_char(p.front())) p.remove_prefix(1);
        while (!p.empty() && is_strip_char(p.back())) p.remove_suffix(1);
        return p.empty() || emit(p);
    };
    for (std::size_t i = 0; i < w.size();) {
        std::size_t run = 0;
        if (w[i] == '.' || w[i] == '-') {
            while (i + run < w.size() && w[i + run] == w[i]) ++run;
            if ((w[i] == '.' && run >= 3) || (w[i] == '-' && run >= 2)) {
                if (!flush(i)) return false;
                start = i + run;
            }
            i += run;
        } else {
            ++i;
        }
    }
    return flush(w.size());
}

// Normalised words of text in order; emit returns false to stop.
template <typename Emit>
bool split_words(std::string_view text, Emit&& emit) {
    std::string cur;
    for (std::size_t i = 0; i < text.size();) {
        auto b = static_cast<unsigned char>(text[i]);
        if (b < 0x80) {  // ASCII, most of most mail: one table look-up
            char lower = ascii_word_table[b];
            ++i;
            if (lower != 0) {
                cur += lower;
            } else if (!cur.empty()) {
                if (!emit_pieces(cur, emit)) return false;
                cur.clear();
            }
            continue;
        }
        char32_t cp;
        i += decode(text, i, cp);
        cp = fold(cp);
        switch (classify(cp)) {
            case CharClass::ignorable:
                break;
            case CharClass::word:
                encode(cur, cp);
                break;
            case CharClass::separator:
                if (!cur.empty()) {
                    if (!emit_pieces(cur, emit)) return false;
                    cur.clear();
                }
                break;
        }
    }
    return cur.empty() || emit_pieces(cur, emit);
}

// Turns a normalised piece into tokenizer words (length bounds, long words); emit(word) each.
template <typename Emit>
bool bounded_words(std::string_view piece, Emit& emit) {
    std::size_t cps = 0, non_ascii = 0;
    for (std::size_t i = 0; i < piece.size();) {
        char32_t cp;
        i += decode(piece, i, cp);
        ++cps;
        if (cp >= 0x80) ++non_ascii;
    }
    if (cps < limits::min_word_chars) return true;
    if (cps <= limits::max_word_chars) return emit(piece);
    std::string tok;
    if (non_ascii * 2 >= cps) {
        // Text without spaces between words (CJK): overlapping code point pairs, SpamAssassin's
        // answer to the same problem ("8:" tuples).
        std::size_t prev_start = 0, prev_len = 0, made = 0;
        for (std::size_t i = 0; i < piece.size() && made < 4 * limits::max_word_chars;) {
            char32_t cp;
            std::size_t len = decode(piece, i, cp);
            if (prev_len > 0) {
                tok.assign("8:");
                tok.append(piece.substr(prev_start, prev_len + len));
                if (!emit(std::string_view(tok))) return false;
                ++made;
            }
            prev_start = i;
            prev_len = len;
            i += len;
        }
        return true;
    }
    // Spambayes' trick that SpamAssassin keeps: a long word's first 7 characters, not its length.
    tok.assign("sk:");
    std::size_t i = 0;
    for (std::size_t n = 0; n < limits::skip_prefix_chars && i < piece.size(); ++n) {
        char32_t cp;
        i += decode(piece, i, cp);
    }
    tok.append(piece.substr(0, i));
    return emit(std::string_view(tok));
}

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
        if (x != y) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

bool is_domain_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

// A lowercase host name, or "" when s is not one (empty labels, other characters).
std::string clean_domain(std::string_view s) {
    std::string d = lower_ascii(trim(s));
    while (!d.empty() && d.back() == '.') d.pop_back();
    if (d.empty() || d.size() > 253 || d.front() == '.' || d.find("..") != std::string::npos) return {};
    for (char c : d)
        if (!is_domain_char(c)) return {};
    return d;
}

// The value of a parameter (charset=, boundary=) of a structured field, unquoted.
std::string_view param(std::string_view value, std::string_view name) {
    std::string lower = lower_ascii(value);
    std::size_t pos = 0;
    while ((pos = lower.find(name, pos)) != std::string::npos) {
        bool at_start = pos == 0 || lower[pos - 1] == ';' || lower[pos - 1] == ' ' || lower[pos - 1] == '\t';
        std::size_t eq = pos + name.size();
        while (eq < lower.size() && (lower[eq] == ' ' || lower[eq] == '\t')) ++eq;
        if (at_start && eq < lower.size() && lower[eq] == '=') {
            std::size_t v = eq + 1;
            while (v < value.size() && (value[v] == ' ' || value[v] == '\t')) ++v;
            if (v < value.size() && value[v] == '"') {
                std::size_t end = value.find('"', v + 1);
                return value.substr(v + 1, (end == std::string_view::npos ? value.size() : end) - v - 1);
            }
            std::size_t end = v;
            while (end < value.size() && value[end] != ';' && value[end] != ' ' && value[end] != '\t' &&
                   value[end] != '\r' && value[end] != '\n')
                ++end;
            return value.substr(v, end - v);
        }
        pos += name.size();
    }
    return {};
}

struct Address {
    std::string_view display;  // before '<', quotes removed
    std::string_view addr;     // local@domain
};

Address parse_address(std::string_view v) {
    Address a;
    auto lt = v.find('<');
    if (lt != std::string_view::npos) {
        auto gt = v.find('>', lt);
        a.addr = trim(v.substr(lt + 1, (gt == std::string_view::npos ? v.size() : gt) - lt - 1));
        a.display = trim(v.substr(0, lt));
    } else {
        // "addr (Comment Name)" or a bare address.
        auto at = v.find('@');
        if (at != std::string_view::npos) {
            std::size_t s = at, e = at;
            while (s > 0 && v[s - 1] != ' ' && v[s - 1] != '\t' && v[s - 1] != '"') --s;
            while (e < v.size() && v[e] != ' ' && v[e] != '\t' && v[e] != '(' && v[e] != '"') ++e;
            a.addr = v.substr(s, e - s);
            auto lp = v.find('(', e);
            if (lp != std::string_view::npos) {
                auto rp = v.find(')', lp);
                a.display = v.substr(lp + 1, (rp == std::string_view::npos ? v.size() : rp) - lp - 1);
            }
        } else {
            a.display = trim(v);
        }
    }
    while (!a.display.empty() && a.display.front() == '"') a.display.remove_prefix(1);
    while (!a.display.empty() && a.display.back() == '"') a.display.remove_suffix(1);
    return a;
}

std::string_view domain_of(std::string_view addr) {
    auto at = addr.rfind('@');
    return at == std::string_view::npos ? std::string_view{} : addr.substr(at + 1);
}

bool parse_ipv4(std::string_view s, std::array<int, 4>& o) {
    int part = 0;
    std::size_t digits = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == '.') {
            if (digits == 0 || digits > 3 || part > 3) return false;
            ++part;
            digits = 0;
            continue;
        }
        if (s[i] < '0' || s[i] > '9') return false;
        o[part] = (digits == 0 ? 0 : o[part] * 10) + (s[i] - '0');
        if (o[part] > 255) return false;
        ++digits;
    }
    return part == 4;
}

// Open-addressing set of hashes (0 marks an empty slot; a real hash of 0 is stored as 1).
class HashSet {
  public:
    HashSet() : slots_(1024, 0) {}
    bool insert(std::uint64_t h) {
        if (h == 0) h = 1;
        if ((size_ + 1) * 2 > slots_.size()) grow();
        return place(h);
    }

  private:
    bool place(std::uint64_t h) {
        std::size_t mask = slots_.size() - 1;
        for (std::size_t i = h & mask;; i = (i + 1) & mask) {
            if (slots_[i] == h) return false;
            if (slots_[i] == 0) {
                slots_[i] = h;
                ++size_;
                return true;
            }
        }
    }
    void grow() {
        std::vector<std::uint64_t> old(slots_.size() * 2, 0);
        old.swap(slots_);
        size_ = 0;
        for (auto h : old)
            if (h != 0) place(h);
    }
    std::vector<std::uint64_t> slots_;
    std::size_t size_ = 0;
};

// Collects distinct tokens up to the cap; hashes "prefix + text".
class TokenSink {
  public:
    TokenSink(const HashKey& key, TokenList& out, std::vector<std::string>* texts)
        : key_(key), out_(out), texts_(texts) {}

    bool full() const { return out_.truncated; }

    // Returns the token's hash (also when it was already present); 0 if the cap stopped it.
    std::uint64_t add(std::string_view prefix, std::string_view text) {
        scratch_.assign(prefix);
        scratch_.append(text);
        std::uint64_t h = siphash13(key_, scratch_);
        if (!add_hash(h, 0, texts_ ? scratch_ : std::string())) return 0;
        return h;
    }

    bool add_hash(std::uint64_t h, std::uint8_t distance, const std::string& text) {
        if (out_.truncated) return false;
        if (!seen_.insert(h)) return true;
        if (out_.tokens.size() >= limits::max_tokens_per_message) {
            out_.truncated = true;
            return false;
        }
        out_.tokens.push_back({h, distance});
        if (texts_) texts_->push_back(text);
        return true;
    }

    bool keep_text() const { return texts_ != nullptr; }

  private:
    const HashKey& key_;
    TokenList& out_;
    std::vector<std::string>* texts_;
    HashSet seen_;
    std::string scratch_;
};

// A word sequence (subject, then the body): each word, then each pair with the words before it.
class WordStream {
  public:
    WordStream(TokenSink& sink, bool pairs, std::size_t max_distance)
        : sink_(sink), pairs_(pairs), max_distance_(std::clamp<std::size_t>(max_distance, 1, W)) {}
    bool operator()(std::string_view word) {
        std::uint64_t h = sink_.add("", word);
        if (h == 0) return false;
        if (pairs_) {
            for (std::size_t d = 1; d <= std::min(n_, max_distance_); ++d) {
                const auto& prev = window_[(pos_ + W - d) % W];
                std::string text;
                if (sink_.keep_text()) text = prev.text + " ~" + std::to_string(d) + " " + std::string(word);
                if (!sink_.add_hash(pair_hash(prev.hash, h, static_cast<unsigned>(d)),
                                    static_cast<std::uint8_t>(d), text))
                    return false;
            }
            auto& slot = window_[pos_];
            slot.hash = h;
            if (sink_.keep_text()) slot.text = std::string(word);
            pos_ = (pos_ + 1) % W;
            n_ = std::min(n_ + 1, W);
        }
        return true;
    }
    void reset() { n_ = 0; }

  private:
    // The previous W words, a ring; pos_ is the next slot to write.
    static constexpr std::size_t W = limits::osb_window - 1;
    struct Prev {
        std::uint64_t hash = 0;
        std::string text;
    };
    TokenSink& sink_;
    bool pairs_;
    std::size_t max_distance_;
    std::array<Prev, W> window_{};
    std::size_t pos_ = 0;
    std::size_t n_ = 0;
};

const mime::DecodedHeader* find_header(const mime::ParsedMessage& m, std::string_view name) {
    for (const auto& h : m.headers)
        if (iequals(h.name, name)) return &h;
    return nullptr;
}

std::string_view bounded(std::string_view v) {
    return v.substr(0, limits::max_header_value_bytes);
}

}  // namespace

Tokenizer::Tokenizer(TokenizerOptions options) : options_(options) {
    psl_ = psl_latest(nullptr);
}

Tokenizer::~Tokenizer() {
    if (psl_ != nullptr) psl_free(psl_);
}

std::string Tokenizer::id() const {
    std::string id = "vigil-bayes-tok" + std::to_string(tokenizer_version) + ":siphash13";
    char key[40];
    std::snprintf(key, sizeof key, ":%016llx%016llx", static_cast<unsigned long long>(options_.key.k0),
                  static_cast<unsigned long long>(options_.key.k1));
    id += key;
    id += ':';
    id += options_.body_words ? 'w' : '-';
    id += options_.subject_words ? 's' : '-';
    if (options_.osb_pairs)
        id += std::to_string(
            std::clamp(options_.pair_distance, 1u, static_cast<unsigned>(limits::osb_window - 1)));
    else
        id += '-';
    id += options_.headers ? 'h' : '-';
    id += options_.received ? 'r' : '-';
    id += options_.mime_structure ? 'm' : '-';
    id += options_.urls ? 'u' : '-';
    return id;
}

TokenList Tokenizer::tokenize(const mime::ParsedMessage& msg) const {
    TokenList out;
    run(msg, out, nullptr);
    return out;
}

TokenList Tokenizer::tokenize_with_text(const mime::ParsedMessage& msg,
                                        std::vector<std::string>& texts) const {
    TokenList out;
    texts.clear();
    run(msg, out, &texts);
    return out;
}

void Tokenizer::run(const mime::ParsedMessage& msg, TokenList& out, std::vector<std::string>* texts) const {
    out.tokens.reserve(1024);
    TokenSink sink(options_.key, out, texts);
    auto registrable = [&](const std::string& host) -> std::string {
        if (psl_ == nullptr || host.empty()) return host;
        const char* r = psl_registrable_domain(psl_, host.c_str());
        return r != nullptr ? std::string(r) : host;
    };
    // Words of a header value, prefixed (no pairs).
    auto header_words = [&](std::string_view prefix, std::string_view value) {
        auto emit = [&](std::string_view w) { return sink.add(prefix, w) != 0; };
        auto each = [&](std::string_view piece) { return bounded_words(piece, emit); };
        split_words(bounded(value), each);
    };
    auto domain_tokens = [&](std::string_view prefix, std::string_view raw) {
        std::string d = clean_domain(raw);
        if (d.empty()) {
            sink.add(prefix, raw.empty() ? "none" : "invalid");
            return;
        }
        std::string reg = registrable(d);
        sink.add(prefix, reg);
        if (reg != d) sink.add(std::string(prefix) + "h:", d);
    };

    if (options_.headers) {
        if (const auto* h = find_header(msg, "From")) {
            auto a = parse_address(bounded(h->value));
            domain_tokens("Hf:", domain_of(a.addr));
            header_words("Hfn:", a.display);
            if (a.display.empty()) sink.add("Hfn:", "none");
        } else {
            sink.add("Hf:", "none");
        }
        if (const auto* h = find_header(msg, "Reply-To")) {
            auto a = parse_address(bounded(h->value));
            domain_tokens("Hr:", domain_of(a.addr));
        }
        if (options_.subject_words) header_words("S:", msg.subject);
        if (const auto* h = find_header(msg, "Content-Type")) {
            std::string_view v = bounded(h->value);
            std::string type = lower_ascii(trim(v.substr(0, v.find(';'))));
            sink.add("Hct:", type);
            auto cs = param(v, "charset");
            if (!cs.empty()) sink.add("Hcs:", lower_ascii(cs));
            auto b = param(v, "boundary");
            if (!b.empty()) sink.add("Hcb:", detail::shape(b));
        } else {
            sink.add("Hct:", "none");
        }
        if (const auto* h = find_header(msg, "Content-Transfer-Encoding"))
            sink.add("Hte:", lower_ascii(trim(bounded(h->value))));
        for (const char* name : {"X-Mailer", "User-Agent", "X-MimeOLE"}) {
            if (const auto* h = find_header(msg, name)) header_words("Hxm:", h->value);
        }
        for (const char* name : {"X-Priority", "X-MSMail-Priority", "Importance", "Precedence"}) {
            if (const auto* h = find_header(msg, name))
                sink.add(std::string("Hp:") + lower_ascii(name) + "=", lower_ascii(trim(bounded(h->value))));
        }
        if (const auto* h = find_header(msg, "List-Id")) {
            auto a = parse_address(bounded(h->value));
            std::string_view id = a.addr.empty() ? trim(bounded(h->value)) : a.addr;
            sink.add("Hli:", lower_ascii(id));
        }
        if (const auto* h = find_header(msg, "Message-ID")) {
            std::string_view v = trim(bounded(h->value));
            auto lt = v.find('<');
            if (lt != std::string_view::npos) v = v.substr(lt + 1);
            v = v.substr(0, v.find('>'));
            auto at = v.rfind('@');
            if (at == std::string_view::npos) {
                sink.add("Hmi:", "noat");
            } else {
                domain_tokens("Hmd:", v.substr(at + 1));
                sink.add("Hms:", detail::shape(v.substr(0, at)));
            }
        } else {
            sink.add("Hmi:", "none");
        }
        if (const auto* h = find_header(msg, "Date")) {
            std::string_view v = trim(bounded(h->value));
            sink.add("Hds:", detail::shape(v));
            auto sp = v.rfind(' ');
            sink.add("Hdz:", lower_ascii(sp == std::string_view::npos ? v : v.substr(sp + 1)));
        } else {
            sink.add("Hds:", "none");
        }
    }

    if (options_.received) {
        std::vector<const mime::DecodedHeader*> received;
        for (const auto& h : msg.headers)
            if (iequals(h.name, "Received")) received.push_back(&h);
        std::size_t first =
            received.size() > limits::max_received_fields ? received.size() - limits::max_received_fields : 0;
        for (std::size_t i = first; i < received.size(); ++i) {
            std::string v = lower_ascii(bounded(received[i]->value));
            for (auto& c : v)
                if (c == '\r' || c == '\n' || c == '\t') c = ' ';
            // "from HELO (RDNS [IP])" and "by HOST"; tokens of the sender-side hops only.
            if (v.rfind("from ", 0) == 0) {
                std::size_t s = 5, e = v.find(' ', s);
                std::string helo = v.substr(s, e == std::string::npos ? std::string::npos : e - s);
                domain_tokens("Hrh:", helo);
                auto lp = v.find('(', s);
                auto rp = lp == std::string::npos ? std::string::npos : v.find(')', lp);
                if (lp != std::string::npos && rp != std::string::npos && lp <= e + 1) {
                    std::string_view inner = std::string_view(v).substr(lp + 1, rp - lp - 1);
                    auto lb = inner.find('['), rb = inner.find(']');
                    std::string_view rdns = trim(inner.substr(0, std::min(lb, inner.find(' '))));
                    if (!rdns.empty() && rdns != "unknown") domain_tokens("Hrr:", rdns);
                    std::array<int, 4> ip{};
                    if (lb != std::string_view::npos && rb != std::string_view::npos && rb > lb &&
                        parse_ipv4(inner.substr(lb + 1, rb - lb - 1), ip)) {
                        sink.add("Hri:", std::to_string(ip[0]) + "." + std::to_string(ip[1]));
                        sink.add("Hri:", std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." +
                                             std::to_string(ip[2]));
                        // A client whose name carries its address: a dynamic or generic host.
                        int found = 0;
                        for (int o : ip) {
                            auto os = std::to_string(o);
                            auto p = rdns.find(os);
                            if (p != std::string_view::npos && os.size() >= 2) ++found;
                        }
                        if (found >= 2) sink.add("Hrd:", "addr-in-name");
                    }
                }
            }
            auto with = v.find(" with ");
            if (with != std::string::npos) {
                std::size_t s = with + 6, e = v.find_first_of(" ;", s);
                sink.add("Hrw:", v.substr(s, e == std::string::npos ? std::string::npos : e - s));
            }
        }
    }

    if (options_.mime_structure) {
        std::size_t attachments = 0;
        for (const auto& p : msg.parts) {
            sink.add("Mt:", p.content_type);
            if (!p.charset.empty()) sink.add("Mc:", p.charset);
            if (!p.filename.empty() && attachments < limits::max_attachments) {
                ++attachments;
                auto dot = p.filename.rfind('.');
                std::string ext = dot == std::string::npos ? std::string("none")
                                                           : detail::fold_case(p.filename.substr(dot + 1));
                if (ext.size() > 10) ext = "long";
                sink.add("Mx:", ext);
            }
        }
        if (msg.parts.empty()) sink.add("Mt:", "none");
    }

    if (options_.urls) {
        std::size_t n = 0;
        for (const auto& u : msg.urls) {
            if (++n > limits::max_urls || sink.full()) break;
            std::string host = lower_ascii(u.host);
            if (u.host_is_ip) {
                sink.add("Ui:", "ip");
            } else {
                domain_tokens("Ud:", host);
            }
            if (u.display_mismatch) sink.add("Um:", "mismatch");
            // Words of the path and query.
            std::string_view url = u.url;
            auto scheme = url.find("://");
            std::size_t after_host = scheme == std::string_view::npos ? 0 : scheme + 3;
            auto slash = url.find_first_of("/?#", after_host);
            if (slash == std::string_view::npos) continue;
            std::size_t words = 0;
            auto emit = [&](std::string_view w) {
                if (++words > limits::max_url_path_words) return false;
                return sink.add("Up:", w) != 0;
            };
            std::string path;
            for (char c : url.substr(slash))  // path separators split words too
                path += (c == '/' || c == '.' || c == '_' || c == '-' || c == '=' || c == '&') ? ' ' : c;
            auto each = [&](std::string_view piece) { return bounded_words(piece, emit); };
            split_words(std::string_view(path).substr(0, limits::max_header_value_bytes), each);
        }
    }

    WordStream stream(sink, options_.osb_pairs, options_.pair_distance);
    auto feed = [&](std::string_view piece) { return bounded_words(piece, stream); };
    if (options_.body_words && options_.subject_words) {
        split_words(bounded(msg.subject), feed);
        stream.reset();
    }
    if (options_.body_words) {
        std::size_t budget = limits::max_text_bytes;
        for (const auto& p : msg.parts) {
            if (!p.is_text || sink.full()) continue;
            const std::string& text = p.text_for_body();
            std::string_view t = std::string_view(text).substr(0, budget);
            if (t.size() < text.size()) out.truncated = true;
            budget -= t.size();
            split_words(t, feed);
            stream.reset();
            if (budget == 0) break;
        }
    }
}

namespace detail {

void fold_code_point(std::string& out, char32_t cp) {
    encode(out, fold(cp));
}

std::string fold_case(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    fold_into(out, s);
    return out;
}

std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    auto emit = [&](std::string_view w) {
        out.emplace_back(w);
        return true;
    };
    auto each = [&](std::string_view piece) { return bounded_words(piece, emit); };
    split_words(text, each);
    return out;
}

std::string shape(std::string_view s, std::size_t max_bytes) {
    std::string out;
    char last = 0;
    for (char c : s.substr(0, 256)) {
        char k;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || static_cast<unsigned char>(c) >= 0x80)
            k = 'a';
        else if (c >= '0' && c <= '9')
            k = '9';
        else
            k = c;
        if ((k == 'a' || k == '9') && k == last) continue;
        out += k;
        last = k;
        if (out.size() >= max_bytes) break;
    }
    return out;
}

}  // namespace detail

}  // namespace vigil::content::bayes
