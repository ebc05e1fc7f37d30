#pragma once
// Caps on what the Bayes tokenizer takes from one message (house rule 5). The parsed message is
// already bounded by mime/mime_limits.hpp; these bound the tokenizer's own work and the size of one
// learn or look-up. A message past a cap is still classified on the tokens it has (the result says
// `truncated`), so a large message cannot skip the filter.
#include <cstddef>

namespace vigil::content::bayes::limits {

// Distinct tokens per message, all kinds together (words, pairs, header and URL tokens). The
// tokenizer adds header, subject and URL tokens before body words and pairs, so the cap cuts the
// end of a long body. On the evaluation corpus (docs/content-bayes.md) the default tokenizer makes
// 169 tokens per message on average, 914 at the 99th percentile, and cuts 1 message of 3,768; with
// word pairs on, 922 on average and 104 cut.
inline constexpr std::size_t max_tokens_per_message = 5000;

// Bytes of visible text (all text parts together) read for words.
inline constexpr std::size_t max_text_bytes = 256 * 1024;

// Word length in code points: shorter words are dropped, longer ones become a "skip" token of their
// first `skip_prefix_chars` code points (SpamAssassin's MAX_TOKEN_LENGTH and "sk:" tokens).
inline constexpr std::size_t min_word_chars = 3;
inline constexpr std::size_t max_word_chars = 15;
inline constexpr std::size_t skip_prefix_chars = 7;

// Bytes of one header field's value looked at.
inline constexpr std::size_t max_header_value_bytes = 2048;
// Received fields looked at (from the bottom: the hops nearest the sender).
inline constexpr std::size_t max_received_fields = 3;
// URLs tokenized per message; path words per URL.
inline constexpr std::size_t max_urls = 100;
inline constexpr std::size_t max_url_path_words = 8;
// Attachments whose file name is tokenized.
inline constexpr std::size_t max_attachments = 20;

// Orthogonal sparse bigrams: each word is paired with the window - 1 words before it.
inline constexpr std::size_t osb_window = 5;

}  // namespace vigil::content::bayes::limits
