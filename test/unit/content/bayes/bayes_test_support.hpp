#pragma once
// Helpers for the Bayes unit tests: parsed messages built by hand, a temporary directory, and a
// Store fake that fails the test on any call it was not told to expect.
#include <stdlib.h>
#include <catch2/catch.hpp>

#include <deque>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "content/bayes/store.hpp"
#include "mime/parsed_message.hpp"

namespace vigil::test::bayes {

namespace cb = vigil::content::bayes;

// A message with the given header fields and one text/plain part (or an HTML part).
inline mime::ParsedMessage message(std::vector<std::pair<std::string, std::string>> headers, std::string body,
                                   bool html = false) {
    mime::ParsedMessage m;
    for (auto& [n, v] : headers) {
        if (n == "Subject") m.subject = v;
        m.headers.push_back({n, v, v});
    }
    mime::Part p;
    p.content_type = html ? "text/html" : "text/plain";
    p.is_text = true;
    p.is_html = html;
    p.decoded = body;
    if (html) p.visible = body;
    p.decoded_size = body.size();
    m.parts.push_back(std::move(p));
    return m;
}

inline mime::ParsedMessage body_only(std::string body) {
    return message({}, std::move(body));
}

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "vigil-bayes-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const char* name) const { return (path / name).string(); }
};

// Each call must have been expected, in order; anything else fails the test. The destructor
// checks every expectation was used.
class FakeStore final : public cb::Store {
  public:
    using ReadFn = std::function<cb::StoreResult(std::span<const std::uint64_t>, std::span<cb::TokenCounts>,
                                                 cb::Totals&)>;
    using UpdateFn =
        std::function<cb::StoreResult(std::span<const cb::Update>, std::span<cb::Label>, std::uint32_t)>;
    using SeenFn = std::function<cb::StoreResult(const cb::MessageId&, cb::Label&)>;

    void expect_read(ReadFn f) { calls_.push_back({Kind::read, std::move(f), {}, {}}); }
    void expect_update(UpdateFn f) { calls_.push_back({Kind::update, {}, std::move(f), {}}); }
    void expect_seen(SeenFn f) { calls_.push_back({Kind::seen, {}, {}, std::move(f)}); }

    ~FakeStore() override { CHECK(calls_.empty()); }

    cb::StoreResult read(std::span<const std::uint64_t> t, std::span<cb::TokenCounts> c,
                         cb::Totals& totals) override {
        auto call = next(Kind::read, "read");
        return call.read(t, c, totals);
    }
    cb::StoreResult update(std::span<const cb::Update> u, std::span<cb::Label> prev,
                           std::uint32_t day) override {
        auto call = next(Kind::update, "update");
        return call.update(u, prev, day);
    }
    cb::StoreResult seen(const cb::MessageId& id, cb::Label& label) override {
        auto call = next(Kind::seen, "seen");
        return call.seen(id, label);
    }

  private:
    enum class Kind { read, update, seen };
    struct Call {
        Kind kind;
        ReadFn read;
        UpdateFn update;
        SeenFn seen;
    };
    Call next(Kind k, const char* what) {
        if (calls_.empty() || calls_.front().kind != k) FAIL("unexpected Store::" << what << " call");
        Call c = std::move(calls_.front());
        calls_.pop_front();
        return c;
    }
    std::deque<Call> calls_;
};

}  // namespace vigil::test::bayes
