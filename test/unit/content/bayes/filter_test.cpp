#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bayes_test_support.hpp"
#include "content/bayes/bayes.hpp"
#include "fakes.hpp"
#include "mime/parse.hpp"
#include "state/bayes/memory_store.hpp"

using namespace vigil;
using namespace vigil::content::bayes;
using vigil::state::bayes::MemoryStore;
using vigil::test::FakeClock;
using vigil::test::bayes::body_only;
using vigil::test::bayes::FakeStore;
using vigil::test::bayes::message;

namespace {

std::shared_ptr<const Tokenizer> tokenizer() {
    static auto t = std::make_shared<const Tokenizer>();
    return t;
}

FilterOptions min_learned(std::uint64_t n) {
    FilterOptions o;
    o.min_spam_learned = o.min_ham_learned = n;
    return o;
}

mime::ParsedMessage spam(int i) {
    return message({{"Subject", "cheap pills offer " + std::to_string(i)},
                    {"Message-ID", "<s" + std::to_string(i) + "@x>"}},
                   "buy cheap viagra pills now click here unsubscribe offer" + std::to_string(i));
}

mime::ParsedMessage ham(int i) {
    return message(
        {{"Subject", "meeting notes " + std::to_string(i)}, {"Message-ID", "<h" + std::to_string(i) + "@y>"}},
        "the patch for the kernel build is attached, see the review thread" + std::to_string(i));
}

}  // namespace

TEST_CASE("classify reads the message's tokens and the totals in one call", "[bayes]") {
    FakeStore store;
    FakeClock clock;
    Filter f(tokenizer(), store, clock, min_learned(200));
    auto msg = body_only("cheap cheap pills");
    auto expected = tokenizer()->tokenize(msg);
    store.expect_read([&](std::span<const std::uint64_t> t, std::span<TokenCounts> c, Totals& totals) {
        REQUIRE(t.size() == expected.tokens.size());
        for (std::size_t i = 0; i < t.size(); ++i) CHECK(t[i] == expected.tokens[i].hash);
        for (auto& x : c) x = {40, 0};
        totals = {200, 200};
        return StoreResult{};
    });
    auto c = f.classify(msg);
    CHECK(c.scored());
    CHECK(c.probability > 0.99);
    CHECK(c.tokens == expected.tokens.size());
    CHECK(c.used == expected.tokens.size());
    auto syms = symbols_for(c);
    CHECK(std::find(syms.begin(), syms.end(), "BAYES_99") != syms.end());
}

TEST_CASE("no opinion below the minimum learned counts", "[bayes]") {
    FakeStore store;
    FakeClock clock;
    Filter f(tokenizer(), store, clock, min_learned(200));
    for (Totals t : {Totals{199, 5000}, Totals{5000, 199}, Totals{0, 0}}) {
        store.expect_read([t](std::span<const std::uint64_t>, std::span<TokenCounts> c, Totals& totals) {
            for (auto& x : c) x = {40, 0};
            totals = t;
            return StoreResult{};
        });
        auto c = f.classify(body_only("cheap pills"));
        CHECK(c.status == Classification::Status::too_few_learned);
        CHECK(symbols_for(c).empty());
    }
    // Exactly the minimum scores.
    store.expect_read([](std::span<const std::uint64_t>, std::span<TokenCounts> c, Totals& totals) {
        for (auto& x : c) x = {0, 40};
        totals = {200, 200};
        return StoreResult{};
    });
    auto c = f.classify(body_only("cheap pills"));
    CHECK(c.scored());
    CHECK(c.probability < 0.01);
    CHECK(symbols_for(c) == std::vector<std::string_view>{"BAYES_00"});
}

TEST_CASE("a store error gives no opinion and says why", "[bayes]") {
    FakeStore store;
    FakeClock clock;
    Filter f(tokenizer(), store, clock, min_learned(1));
    store.expect_read([](std::span<const std::uint64_t>, std::span<TokenCounts>, Totals&) {
        return StoreResult{StoreStatus::unavailable, "cannot open /x"};
    });
    auto c = f.classify(body_only("anything"));
    CHECK(c.status == Classification::Status::store_error);
    CHECK(c.store.status == StoreStatus::unavailable);
    CHECK(c.store.detail == "cannot open /x");
    CHECK(symbols_for(c).empty());
}

TEST_CASE("learn sends one atomic update and reports what the store found", "[bayes]") {
    FakeStore store;
    FakeClock clock;  // 2023-11-14
    Filter f(tokenizer(), store, clock);
    auto msg = spam(1);
    auto expected_tokens = tokenizer()->tokenize(msg);
    struct Case {
        Label to, previous;
        LearnOutcome outcome;
    };
    for (auto cs : {Case{Label::spam, Label::none, LearnOutcome::learned},
                    Case{Label::spam, Label::ham, LearnOutcome::relearned},
                    Case{Label::spam, Label::spam, LearnOutcome::already_learned},
                    Case{Label::none, Label::ham, LearnOutcome::forgotten},
                    Case{Label::none, Label::none, LearnOutcome::not_learned}}) {
        store.expect_update([&](std::span<const Update> u, std::span<Label> prev, std::uint32_t day) {
            REQUIRE(u.size() == 1);
            CHECK(u[0].id == message_id(msg));
            CHECK(u[0].to == cs.to);
            CHECK_FALSE(u[0].only_if_unseen);
            CHECK(u[0].tokens.size() == expected_tokens.tokens.size());
            CHECK(day == 1'700'000'000 / 86400);
            prev[0] = cs.previous;
            return StoreResult{};
        });
        CHECK(f.learn(msg, cs.to) == cs.outcome);
    }
    store.expect_update([](std::span<const Update>, std::span<Label>, std::uint32_t) {
        return StoreResult{StoreStatus::full, "full"};
    });
    StoreResult err;
    CHECK(f.learn(msg, Label::spam, &err) == LearnOutcome::store_error);
    CHECK(err.status == StoreStatus::full);
}

TEST_CASE("autolearn: only past the thresholds, never over a person's choice", "[bayes]") {
    FakeStore store;
    FakeClock clock;
    Filter f(tokenizer(), store, clock);
    AutolearnPolicy p;
    // Disabled: no store call at all (the fake fails on any).
    CHECK(f.autolearn(spam(1), 50.0, p) == LearnOutcome::skipped);
    p.enabled = true;
    CHECK(autolearn_label(12.0, p) == Label::spam);
    CHECK(autolearn_label(11.9, p) == Label::none);
    CHECK(autolearn_label(0.1, p) == Label::ham);
    CHECK(autolearn_label(3.0, p) == Label::none);
    // Between the thresholds: nothing.
    CHECK(f.autolearn(spam(1), 5.0, p) == LearnOutcome::skipped);
    store.expect_update([](std::span<const Update> u, std::span<Label> prev, std::uint32_t) {
        REQUIRE(u.size() == 1);
        CHECK(u[0].to == Label::spam);
        CHECK(u[0].only_if_unseen);
        prev[0] = Label::none;
        return StoreResult{};
    });
    CHECK(f.autolearn(spam(1), 20.0, p) == LearnOutcome::learned);
    store.expect_update([](std::span<const Update> u, std::span<Label> prev, std::uint32_t) {
        CHECK(u[0].to == Label::ham);
        prev[0] = Label::spam;  // a person said spam: left alone
        return StoreResult{};
    });
    CHECK(f.autolearn(spam(1), -1.0, p) == LearnOutcome::skipped);
}

TEST_CASE("learn, relearn and forget round trip through a store", "[bayes]") {
    MemoryStore store;
    FakeClock clock;
    Filter f(tokenizer(), store, clock, min_learned(1));
    auto msg = spam(7);
    auto tokens = tokenizer()->tokenize(msg);
    auto first = tokens.tokens.front().hash;

    CHECK(f.learn(msg, Label::spam) == LearnOutcome::learned);
    CHECK(store.counts(first).spam == 1);
    CHECK(f.learn(msg, Label::spam) == LearnOutcome::already_learned);  // a no-op
    CHECK(store.counts(first).spam == 1);
    Label seen;
    REQUIRE(store.seen(message_id(msg), seen).ok());
    CHECK(seen == Label::spam);

    CHECK(f.learn(msg, Label::ham) == LearnOutcome::relearned);  // flips the class
    CHECK(store.counts(first).spam == 0);
    CHECK(store.counts(first).ham == 1);

    CHECK(f.learn(msg, Label::none) == LearnOutcome::forgotten);  // undoes it
    CHECK(store.counts(first).ham == 0);
    CHECK(store.token_count() == 0);
    CHECK(f.learn(msg, Label::none) == LearnOutcome::not_learned);
    REQUIRE(store.seen(message_id(msg), seen).ok());
    CHECK(seen == Label::none);

    // Totals follow.
    for (int i = 0; i < 3; ++i) f.learn(spam(i), Label::spam);
    for (int i = 0; i < 2; ++i) f.learn(ham(i), Label::ham);
    f.learn(spam(0), Label::ham);
    std::vector<std::uint64_t> none;
    std::vector<TokenCounts> nc;
    Totals t;
    REQUIRE(store.read(none, nc, t).ok());
    CHECK(t.spam == 2);
    CHECK(t.ham == 3);
}

TEST_CASE("the filter scores once enough of both classes are learned", "[bayes]") {
    MemoryStore store;
    FakeClock clock;
    Filter f(tokenizer(), store, clock, min_learned(5));
    for (int i = 0; i < 5; ++i) f.learn(spam(i), Label::spam);
    for (int i = 0; i < 4; ++i) f.learn(ham(i), Label::ham);
    CHECK(f.classify(spam(100)).status == Classification::Status::too_few_learned);
    f.learn(ham(4), Label::ham);
    auto s = f.classify(spam(100));
    auto h = f.classify(ham(100));
    REQUIRE(s.scored());
    REQUIRE(h.scored());
    CHECK(s.probability > 0.9);
    CHECK(h.probability < 0.1);
    // Batch learning gives the same store as one by one.
    MemoryStore b;
    Filter fb(tokenizer(), b, clock, min_learned(5));
    std::vector<mime::ParsedMessage> msgs;
    for (int i = 0; i < 5; ++i) msgs.push_back(spam(i));
    std::vector<const mime::ParsedMessage*> ptrs;
    for (const auto& m : msgs) ptrs.push_back(&m);
    StoreResult err;
    auto out = fb.learn_batch(ptrs, Label::spam, err);
    REQUIRE(err.ok());
    CHECK(std::count(out.begin(), out.end(), LearnOutcome::learned) == 5);
    auto tok = tokenizer()->tokenize(spam(0)).tokens.front().hash;
    CHECK(b.counts(tok).spam == store.counts(tok).spam);
}

TEST_CASE("message ids ignore what transport adds", "[bayes]") {
    auto a = message({{"Message-ID", "<1@example.com>"}, {"Subject", "hello"}}, "body text");
    auto b = message({{"Received", "from x by y"},
                      {"Delivered-To", "me@example.org"},
                      {"Message-ID", "<1@example.com>"},
                      {"Subject", "[SPAM] hello"},
                      {"X-Spam-Status", "Yes"}},
                     "body text");
    CHECK(message_id(a) == message_id(b));
    auto other_body = message({{"Message-ID", "<1@example.com>"}}, "other text");
    auto other_id = message({{"Message-ID", "<2@example.com>"}}, "body text");
    CHECK_FALSE(message_id(a) == message_id(other_body));
    CHECK_FALSE(message_id(a) == message_id(other_id));
    CHECK(message_id(a).hex().size() == 32);
    // The same file read with and without its mbox "From " line is the same message.
    std::string raw = "Message-ID: <9@x>\nSubject: s\n\nbody\n";
    CHECK(message_id(vigil::mime::parse_raw(raw)) ==
          message_id(vigil::mime::parse_raw("From a@b Mon Jan  1 00:00:00 2024\n" + raw)));
}

TEST_CASE("BAYES_* bands", "[bayes]") {
    using V = std::vector<std::string_view>;
    CHECK(symbols_for_probability(0.0) == V{"BAYES_00"});
    CHECK(symbols_for_probability(0.0099) == V{"BAYES_00"});
    CHECK(symbols_for_probability(0.01) == V{"BAYES_05"});
    CHECK(symbols_for_probability(0.1) == V{"BAYES_20"});
    CHECK(symbols_for_probability(0.3) == V{"BAYES_40"});
    CHECK(symbols_for_probability(0.5) == V{"BAYES_50"});
    CHECK(symbols_for_probability(0.7) == V{"BAYES_60"});
    CHECK(symbols_for_probability(0.9) == V{"BAYES_80"});
    CHECK(symbols_for_probability(0.97) == V{"BAYES_95"});
    CHECK(symbols_for_probability(0.995) == V{"BAYES_99"});
    CHECK(symbols_for_probability(0.9995) == V{"BAYES_99", "BAYES_999"});
    CHECK(symbols_for_probability(1.0) == V{"BAYES_99", "BAYES_999"});
    CHECK(symbols_for_probability(std::nan("")).empty());
    CHECK(symbols_for_probability(-0.1).empty());
    // Every probability in [0, 1] gets exactly one of the nine bands.
    for (int i = 0; i <= 1000; ++i) {
        auto s = symbols_for_probability(i / 1000.0);
        REQUIRE(!s.empty());
        CHECK(std::count_if(s.begin(), s.end(), [](auto n) { return n != "BAYES_999"; }) == 1);
    }
    auto defs = symbol_defs();
    CHECK(defs.size() == 10);
    std::set<std::string> names;
    for (const auto& d : defs) {
        names.insert(d.name);
        CHECK(d.name.rfind("BAYES_", 0) == 0);
        CHECK_FALSE(d.description.empty());
    }
    CHECK(names.size() == defs.size());
    // Ham bands take points off, spam bands add, increasing with the probability.
    for (std::size_t i = 1; i + 1 < defs.size(); ++i)
        CHECK(defs[i].default_weight >= defs[i - 1].default_weight);
    CHECK(defs.front().default_weight < 0);
    CHECK(defs[8].default_weight > 0);
}
