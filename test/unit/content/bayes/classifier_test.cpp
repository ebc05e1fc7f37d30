#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "content/bayes/classifier.hpp"

using namespace vigil::content::bayes;

TEST_CASE("chi2q is the chi-square upper tail for even degrees of freedom", "[bayes]") {
    // Reference values: scipy.stats.chi2.sf(x, v).
    CHECK(chi2q(0, 2) == Approx(1.0));
    CHECK(chi2q(2, 2) == Approx(std::exp(-1.0)));
    CHECK(chi2q(4, 4) == Approx(0.40600584970983794));
    CHECK(chi2q(10, 6) == Approx(0.12465201948308113));
    CHECK(chi2q(100, 2) == Approx(0.0).margin(1e-20));
    CHECK(chi2q(1e-9, 200) == Approx(1.0));  // capped at 1
}

TEST_CASE("token probability is Robinson's f(w) over the spam and ham ratios", "[bayes]") {
    double s = 0.030, x = 0.538;
    // Never seen: no probability.
    CHECK(token_probability({0, 0}, {100, 100}, s, x) < 0);
    // Only in spam: close to 1, pulled toward x by s.
    CHECK(token_probability({10, 0}, {100, 100}, s, x) == Approx((s * x + 10.0) / (s + 10.0)));
    CHECK(token_probability({0, 10}, {100, 100}, s, x) == Approx((s * x) / (s + 10.0)));
    // Ratios, not counts: 1 of 10 spam against 1 of 100 ham.
    double p = 0.1 / (0.1 + 0.01);
    CHECK(token_probability({1, 1}, {10, 100}, s, x) == Approx((s * x + 2 * p) / (s + 2)));
    // Counts above the totals (a store changing between reads) stay within [0, 1].
    double q = token_probability({50, 1}, {10, 100}, s, x);
    CHECK(q > 0.5);
    CHECK(q < 1.0);
}

TEST_CASE("chi-square combining", "[bayes]") {
    // One token: the combined probability is the token's own.
    std::vector<double> one{0.8};
    CHECK(combine_chi(one) == Approx(0.8));
    // Evidence both ways in equal measure: undecided.
    std::vector<double> even{0.99, 0.01};
    CHECK(combine_chi(even) == Approx(0.5));
    // Two spammy tokens, worked by hand: S = 1 - e^-m(1 + m) with m = -ln(0.1^2),
    // H = 1 - e^-m(1 + m) with m = -ln(0.9^2).
    std::vector<double> two{0.9, 0.9};
    double m_s = -std::log(0.01), m_h = -std::log(0.81);
    double S = 1 - std::exp(-m_s) * (1 + m_s), H = 1 - std::exp(-m_h) * (1 + m_h);
    CHECK(combine_chi(two) == Approx((S - H + 1) / 2));
    CHECK(combine_chi(two) == Approx(0.96231617).epsilon(1e-7));
    std::vector<double> none;
    CHECK(combine_chi(none) == 0.5);
    // Thousands of extreme tokens neither underflow nor give NaN.
    std::vector<double> many(5000, 0.999999);
    CHECK(combine_chi(many) == Approx(1.0));
    std::vector<double> many_ham(5000, 1e-6);
    CHECK(combine_chi(many_ham) == Approx(0.0).margin(1e-9));
}

TEST_CASE("classify (chi-square) drops weak tokens and keeps the strongest", "[bayes]") {
    ClassifierOptions o;  // chi_square
    Totals totals{100, 100};
    // Weak (equal ratios) tokens do not count.
    std::vector<Token> toks(3);
    std::vector<TokenCounts> counts{{5, 5}, {3, 3}, {0, 0}};
    auto s = classify(toks, counts, totals, o);
    CHECK(s.used == 0);
    CHECK(s.probability == 0.5);
    // One strong spam token decides alone.
    counts = {{5, 5}, {20, 0}, {0, 0}};
    s = classify(toks, counts, totals, o);
    CHECK(s.used == 1);
    CHECK(s.probability == Approx(token_probability({20, 0}, totals, o.robinson_s, o.robinson_x)));
    // At most max_significant tokens.
    std::vector<Token> many(400);
    std::vector<TokenCounts> mc(400, TokenCounts{30, 1});
    s = classify(many, mc, totals, o);
    CHECK(s.used == o.max_significant);
    CHECK(s.probability > 0.99);
    // Nothing learned of one class: no opinion.
    s = classify(many, mc, Totals{100, 0}, o);
    CHECK(s.used == 0);
    CHECK(s.probability == 0.5);
    // Mismatched spans: no opinion rather than a read past the end.
    std::vector<TokenCounts> short_counts(2);
    CHECK(classify(many, short_counts, totals, o).used == 0);
}

TEST_CASE("classify (OSB) follows rspamd's token weights", "[bayes]") {
    ClassifierOptions o;
    o.method = Method::osb;
    Totals totals{10, 10};
    // One single token in 10 of 10 spam: fw = 1, w = 10/11, p = (w/2 + 10)/(w + 10).
    std::vector<Token> one(1);
    std::vector<TokenCounts> c{{10, 0}};
    auto s = classify(one, c, totals, o);
    double w = 10.0 / 11.0, bs = (w * 0.5 + 10) / (w + 10), bh = (w * 0.5) / (w + 10);
    CHECK(s.used == 1);
    CHECK(s.probability == Approx((1 - bh + bs) / 2));
    // Seen once: below min_token_hits.
    c = {{1, 0}};
    CHECK(classify(one, c, totals, o).used == 0);
    // rspamd's feature weight is Robinson's strength: with the same counts an adjacent pair
    // (weight 3125) is pulled nearer to 0.5 than a pair 4 words apart (weight 1).
    std::vector<Token> near{{1, 1}}, far{{1, 4}};
    c = {{2, 0}};
    double p_near = classify(near, c, totals, o).probability, p_far = classify(far, c, totals, o).probability;
    CHECK(p_near < p_far);
    CHECK(p_near > 0.5);
    // Hundreds of tokens take the likelihood-ratio fallback without NaN.
    std::vector<Token> many(2000);
    std::vector<TokenCounts> mc(2000, TokenCounts{9, 1});
    auto big = classify(many, mc, totals, o);
    CHECK(big.used == 2000);
    CHECK(std::isfinite(big.probability));
    CHECK(big.probability > 0.99);
}
