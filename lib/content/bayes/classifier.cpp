#include "content/bayes/classifier.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace vigil::content::bayes {

double chi2q(double x2, unsigned v) {
    // sum_{i < v/2} e^-m m^i / i!, with m = x2 / 2: the tail of the chi-square distribution for
    // even degrees of freedom, summed as Robinson's recurrence so no factorial overflows.
    double m = x2 / 2.0;
    double term = std::exp(-m);
    double sum = term;
    for (unsigned i = 1; i < v / 2; ++i) {
        term *= m / i;
        sum += term;
    }
    return std::min(sum, 1.0);
}

double token_probability(const TokenCounts& c, const Totals& totals, double s, double x) {
    if (c.spam == 0 && c.ham == 0) return -1;
    double ratio_s = totals.spam ? static_cast<double>(c.spam) / static_cast<double>(totals.spam) : 0;
    double ratio_h = totals.ham ? static_cast<double>(c.ham) / static_cast<double>(totals.ham) : 0;
    // Counts larger than the totals (a store changed between reads, or expiry) must not give a
    // ratio above 1.
    ratio_s = std::min(ratio_s, 1.0);
    ratio_h = std::min(ratio_h, 1.0);
    if (ratio_s + ratio_h == 0) return -1;
    double p = ratio_s / (ratio_s + ratio_h);
    double n = static_cast<double>(c.spam) + static_cast<double>(c.ham);
    return (s * x + n * p) / (s + n);
}

double combine_chi(std::span<const double> probabilities) {
    if (probabilities.empty()) return 0.5;
    // Logs of the products, so thousands of small factors never underflow (SpamAssassin keeps
    // the exponent aside with frexp for the same reason).
    double ln_spam = 0, ln_ham = 0;
    for (double p : probabilities) {
        ln_spam += std::log(p);       // all tokens spammy: near 0
        ln_ham += std::log(1.0 - p);  // all tokens hammy: near 0
    }
    auto v = static_cast<unsigned>(2 * probabilities.size());
    // Each is the confidence that the tokens are NOT uniformly random in that direction.
    double ham_evidence = 1.0 - chi2q(-2.0 * ln_spam, v);
    double spam_evidence = 1.0 - chi2q(-2.0 * ln_ham, v);
    return (spam_evidence - ham_evidence + 1.0) / 2.0;
}

namespace {

Score classify_chi(std::span<const Token> tokens, std::span<const TokenCounts> counts, const Totals& totals,
                   const ClassifierOptions& o) {
    std::vector<double> probs;
    probs.reserve(tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        double p = token_probability(counts[i], totals, o.robinson_s, o.robinson_x);
        if (p < 0 || std::fabs(p - 0.5) < o.min_strength) continue;
        probs.push_back(p);
    }
    if (probs.size() > o.max_significant) {
        std::nth_element(probs.begin(), probs.begin() + static_cast<std::ptrdiff_t>(o.max_significant),
                         probs.end(),
                         [](double a, double b) { return std::fabs(a - 0.5) > std::fabs(b - 0.5); });
        probs.resize(o.max_significant);
    }
    Score s;
    s.used = probs.size();
    s.probability = combine_chi(probs);
    return s;
}

// rspamd's weights by a pair's distance: adjacent words count most. Index 0 (single tokens) is 1.
constexpr double feature_weight[] = {1.0, 3125.0, 256.0, 27.0, 1.0};

Score classify_osb(std::span<const Token> tokens, std::span<const TokenCounts> counts, const Totals& totals,
                   const ClassifierOptions& o) {
    double ln_spam = 0, ln_ham = 0;
    std::size_t used = 0;
    auto spam_learns = static_cast<double>(std::max<std::uint64_t>(1, totals.spam));
    auto ham_learns = static_cast<double>(std::max<std::uint64_t>(1, totals.ham));
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const auto& c = counts[i];
        double total = static_cast<double>(c.spam) + static_cast<double>(c.ham);
        if (total < o.min_token_hits || total == 0) continue;
        double spam_freq = c.spam / spam_learns, ham_freq = c.ham / ham_learns;
        double spam_prob = spam_freq / (spam_freq + ham_freq);
        double ham_prob = ham_freq / (spam_freq + ham_freq);
        double fw = feature_weight[std::min<std::size_t>(tokens[i].distance, 4)];
        double w = (fw * total) / (1.0 + fw * total);
        // Robinson's f(w) with strength w and an assumed 0.5.
        double bs = (w * 0.5 + total * spam_prob) / (w + total);
        if (std::fabs(bs - 0.5) < o.min_prob_strength) continue;
        double bh = (w * 0.5 + total * ham_prob) / (w + total);
        ln_spam += std::log(bs);
        ln_ham += std::log(bh);
        ++used;
    }
    Score s;
    s.used = used;
    if (used == 0) return s;
    double h, sp;
    if (ln_spam > -300 && ln_ham > -300) {
        h = 1.0 - chi2q(-2.0 * ln_spam, static_cast<unsigned>(2 * used));
        sp = 1.0 - chi2q(-2.0 * ln_ham, static_cast<unsigned>(2 * used));
    } else if (ln_spam < ln_ham) {
        // Too many tokens for the series: the likelihood ratio decides (rspamd's fallback).
        h = (1.0 - std::exp(ln_spam - ln_ham)) / (1.0 + std::exp(ln_spam - ln_ham));
        sp = 1.0 - h;
    } else {
        sp = (1.0 - std::exp(ln_ham - ln_spam)) / (1.0 + std::exp(ln_ham - ln_spam));
        h = 1.0 - sp;
    }
    s.probability = std::isfinite(sp) && std::isfinite(h) ? (sp + 1.0 - h) / 2.0 : 0.5;
    return s;
}

}  // namespace

Score classify(std::span<const Token> tokens, std::span<const TokenCounts> counts, const Totals& totals,
               const ClassifierOptions& options) {
    if (totals.spam == 0 || totals.ham == 0 || counts.size() != tokens.size()) return {};
    return options.method == Method::osb ? classify_osb(tokens, counts, totals, options)
                                         : classify_chi(tokens, counts, totals, options);
}

}  // namespace vigil::content::bayes
