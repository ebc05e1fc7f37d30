#pragma once
// The Bayes maths: per-token counts and the learned totals in, a spam probability out. Pure
// functions; the store and the tokenizer are elsewhere.
//
// Two combining methods, both ending in Fisher's inverse chi-square (docs/content-bayes.md compares
// them on the evaluation corpus):
// - chi_square, SpamAssassin's: each token's p(w) = spam ratio / (spam ratio + ham ratio), pulled
//   toward x by Robinson's f(w) with strength s; tokens with |f(w) - 0.5| below min_strength are
//   ignored; the `max_significant` strongest are combined (combine_chi()):
//   S = 1 - C^-1(-2 ln prod(1 - f), 2n) (evidence of spam), H = 1 - C^-1(-2 ln prod f, 2n)
//   (evidence of ham), probability = (1 + S - H) / 2.
// - osb, rspamd's: every token seen at least min_token_hits times counts, pairs weighted by their
//   distance (adjacent words strongest), tokens within min_prob_strength of 0.5 dropped, the
//   sums of log-probabilities combined with the same inverse chi-square.
#include <cstddef>
#include <cstdint>
#include <span>

#include "content/bayes/store.hpp"
#include "content/bayes/tokenizer.hpp"

namespace vigil::content::bayes {

enum class Method { chi_square, osb };

struct ClassifierOptions {
    Method method = Method::chi_square;
    // chi_square: SpamAssassin's CombineChi constants, except min_strength (SpamAssassin: 0.346),
    // which at 0.2 gave the same ROC and a better-calibrated probability on the evaluation corpus.
    double robinson_s = 0.030;
    double robinson_x = 0.538;
    double min_strength = 0.2;
    std::size_t max_significant = 150;
    // osb (rspamd's bayes.c defaults).
    std::uint32_t min_token_hits = 2;
    double min_prob_strength = 0.05;
};

struct Score {
    double probability = 0.5;  // 0 ham .. 1 spam
    std::size_t used = 0;      // tokens that took part
};

// Needs totals.spam > 0 and totals.ham > 0 (else returns 0.5 with used = 0): the caller checks the
// minimum learned counts.
Score classify(std::span<const Token> tokens, std::span<const TokenCounts> counts, const Totals& totals,
               const ClassifierOptions& options);

// The probability that a chi-square variable with v (even) degrees of freedom exceeds x2
// (Gary Robinson's chi2q, as SpamAssassin and rspamd compute it).
double chi2q(double x2, unsigned v);

// SpamAssassin's per-token probability with Robinson's f(w); negative when the token was never seen.
double token_probability(const TokenCounts& c, const Totals& totals, double s, double x);

// SpamAssassin's combine() over significant token probabilities.
double combine_chi(std::span<const double> probabilities);

}  // namespace vigil::content::bayes
