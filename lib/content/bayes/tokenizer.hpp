#pragma once
// The Bayes tokenizer: a parsed message in, a bounded set of distinct 64-bit tokens out.
//
// Features (docs/content-bayes.md has the measurements that chose them), on by default:
// - words of the subject and the visible text: case-folded UTF-8, split as SpamAssassin splits
//   (letters, digits and - , @ * ! _ ' " $ . stay inside a word; leading and trailing - ' " . ,
//   stripped), 3 to 15 code points; a longer word becomes "sk:" plus its first 7 code points, a long
//   run of non-Latin letters (CJK text without spaces) becomes code point pairs;
// - header features of fields the sender writes: From and Reply-To domains and display-name words,
//   Subject words again (prefixed), the top Content-Type (type, charset, boundary shape),
//   Content-Transfer-Encoding, X-Mailer / User-Agent words, priority fields, Message-ID domain and
//   shape, the Date field's shape and zone, List-Id, Precedence; fields the receiving side adds
//   (Delivered-To, Return-Path, X-Spam-*...) are never read;
// - MIME structure: part types, charsets, attachment extensions;
// - URLs: host, registrable domain (Public Suffix List), words of the path.
// Off by default (measured worse, or gains that come from how the corpus was collected):
// - orthogonal sparse bigrams (rspamd's OSB): each word paired with each of the 4 words before it,
//   the distance part of the token;
// - the sender-side end of the Received chain (host domains, the client's /16 and /24, whether
//   its name embeds its address).
//
// Pure: no I/O, no state between calls; one Tokenizer serves every thread.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "content/bayes/token_hash.hpp"
#include "mime/parsed_message.hpp"

struct psl_ctx_st;

namespace vigil::content::bayes {

struct Token {
    std::uint64_t hash = 0;
    // 0 for a single token; 1..4 for a word pair, the words' distance (the OSB classifier weighs
    // pairs by it).
    std::uint8_t distance = 0;
};

struct TokenList {
    std::vector<Token> tokens;  // distinct hashes, in the order first produced
    bool truncated = false;     // limits::max_tokens_per_message (or max_text_bytes) was reached
};

// Feature switches, for the evaluation (vigil-eval-bayes) that chose the defaults. A store is only
// valid for the options it was learned with: id() names them.
struct TokenizerOptions {
    bool body_words = true;
    bool subject_words = true;   // subject words as plain words and again prefixed "S:"
    bool osb_pairs = false;      // word pairs (off: measured worse, docs/content-bayes.md)
    unsigned pair_distance = 4;  // pairs of words up to this far apart (1..limits::osb_window - 1)
    bool headers = true;         // header features (except Received)
    bool received = false;       // Received chain features (off: see docs/content-bayes.md)
    bool mime_structure = true;  // part types, charsets, attachment extensions
    bool urls = true;
    HashKey key = default_hash_key;
};

class Tokenizer {
  public:
    explicit Tokenizer(TokenizerOptions options = {});
    ~Tokenizer();
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    TokenList tokenize(const mime::ParsedMessage& msg) const;
    // The same, also giving each token's text (same order as the tokens): for `vigil learn
    // --dump-tokens` and the evaluation's token reports. Slower.
    TokenList tokenize_with_text(const mime::ParsedMessage& msg, std::vector<std::string>& texts) const;

    // Names the token format: the tokenizer version, the hash and the options. A store remembers
    // the id it was learned with and refuses a tokenizer with another one.
    std::string id() const;
    const TokenizerOptions& options() const { return options_; }

  private:
    void run(const mime::ParsedMessage& msg, TokenList& out, std::vector<std::string>* texts) const;
    TokenizerOptions options_;
    psl_ctx_st* psl_ = nullptr;  // libpsl's newest list; null if none could be loaded
};

// Building blocks, exposed for the unit tests.
namespace detail {
// Appends the case-folded form of one code point's UTF-8 encoding.
void fold_code_point(std::string& out, char32_t cp);
// Lowercase case-fold of a whole UTF-8 string (invalid bytes kept as they are).
std::string fold_case(std::string_view s);
// Words of text as the tokenizer takes them: bounded length, long words as "sk:" tokens.
std::vector<std::string> words(std::string_view text);
// Character-class shape of a string: runs of letters become "a", of digits "9", other bytes kept.
std::string shape(std::string_view s, std::size_t max_bytes = 64);
}  // namespace detail

}  // namespace vigil::content::bayes
