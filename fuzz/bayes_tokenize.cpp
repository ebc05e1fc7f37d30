// The Bayes path over untrusted bytes: the stopgap raw-message view, the tokenizer (words, header,
// URL and MIME features, pairs), message ids, and a learn and classify through the in-memory store.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "content/bayes/bayes.hpp"
#include "content/bayes/bayes_limits.hpp"
#include "core/clock.hpp"
#include "fuzz_check.hpp"
#include "mime/parse.hpp"
#include "state/bayes/memory_store.hpp"

using namespace vigil;
namespace cb = vigil::content::bayes;

namespace {

void check_tokens(const cb::TokenList& list) {
    FUZZ_CHECK(list.tokens.size() <= cb::limits::max_tokens_per_message);
    std::set<std::uint64_t> seen;
    for (const auto& t : list.tokens) {
        FUZZ_CHECK(seen.insert(t.hash).second);
        FUZZ_CHECK(t.distance < cb::limits::osb_window);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto plain = std::make_shared<const cb::Tokenizer>();
    static const auto everything = [] {
        cb::TokenizerOptions o;
        o.osb_pairs = true;
        o.received = true;
        return std::make_shared<const cb::Tokenizer>(o);
    }();
    std::string_view raw(reinterpret_cast<const char*>(data), size);

    auto parsed = vigil::mime::parse_raw(raw);
    for (const auto& t : {plain, everything}) {
        auto a = t->tokenize(parsed);
        check_tokens(a);
        auto b = t->tokenize(parsed);
        FUZZ_CHECK(a.tokens.size() == b.tokens.size());
        for (std::size_t i = 0; i < a.tokens.size(); ++i) FUZZ_CHECK(a.tokens[i].hash == b.tokens[i].hash);
    }
    FUZZ_CHECK(cb::message_id(parsed) == cb::message_id(vigil::mime::parse_raw(raw)));

    // The same bytes straight into every field the tokenizer reads.
    mime::ParsedMessage direct;
    for (const char* name : {"From", "Reply-To", "Content-Type", "Message-ID", "Date", "X-Mailer", "List-Id",
                             "Received", "X-Priority"})
        direct.headers.push_back({name, std::string(raw), std::string(raw)});
    direct.subject = std::string(raw);
    mime::Part p;
    p.is_text = true;
    p.decoded = std::string(raw);
    p.filename = std::string(raw);
    p.content_type = std::string(raw.substr(0, 64));
    direct.parts.push_back(p);
    mime::Url u;
    u.url = std::string(raw);
    u.host = std::string(raw.substr(0, 255));
    direct.urls.push_back(u);
    std::vector<std::string> texts;
    auto list = everything->tokenize_with_text(direct, texts);
    check_tokens(list);
    FUZZ_CHECK(texts.size() == list.tokens.size());

    // Learn both ways and classify: a probability in [0, 1], never NaN.
    state::bayes::MemoryStore store;
    cb::FilterOptions fo;
    fo.min_spam_learned = fo.min_ham_learned = 1;
    for (auto method : {cb::Method::chi_square, cb::Method::osb}) {
        fo.classifier.method = method;
        cb::Filter f(everything, store, core::SystemClock::instance(), fo);
        f.learn(direct, cb::Label::spam);
        f.learn(parsed, cb::Label::ham);
        for (const auto* m : {&direct, &parsed}) {
            auto c = f.classify(*m);
            FUZZ_CHECK(c.scored());
            FUZZ_CHECK(c.probability >= 0.0 && c.probability <= 1.0);
            FUZZ_CHECK(!cb::symbols_for(c).empty());
        }
    }
    return 0;
}
