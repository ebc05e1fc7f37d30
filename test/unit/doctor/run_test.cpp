#include <catch2/catch.hpp>

#include "doctor/doctor.hpp"
#include "doctor_fixture.hpp"

using namespace vigil;
using namespace vigil::test::doctor;
using Catch::Matchers::Contains;

TEST_CASE("a run covers only the areas not skipped, and says what it lacks", "[doctor][run]") {
    dns::FakeResolver f;  // any lookup a skipped area made would throw here
    doctor::Target t;
    t.hostname = "mx.example.test";
    doctor::RunOptions o;
    for (auto a : doctor::areas()) {
        if (a != "port25") o.skip.insert(std::string(a));
    }
    auto out = doctor::run(f, t, o);
    INFO(dump(out));
    REQUIRE(out.size() == 2);  // nothing uses sending IPs: only the missing domains are worth saying
    CHECK(out[0].area == "config");
    CHECK(out[0].level == Level::warn);
    CHECK_THAT(out[0].fix, Contains("[server] domains"));
    CHECK(out[1].area == "port25");
    CHECK(f.queries().empty());
    CHECK(doctor::exit_status(out) == 1);

    o.skip.erase("lists");
    auto with_lists = doctor::run(f, t, o);
    REQUIRE(with_lists.size() == 3);
    CHECK_THAT(with_lists[0].fix, Contains("[server] sending_ips"));
    CHECK(f.queries().empty());  // no IPs, no lists: nothing to ask
}

TEST_CASE("a run reports a shared signing domain's keys once, under the first domain it signs for",
          "[doctor][run]") {
    dns::FakeResolver f;
    doctor::Target t;
    t.hostname = "mx.example.test";
    t.domains = {"a.test", "b.test"};
    t.dkim = {{"mailer.test", {{"s1", nullptr}}}};
    t.signing_domains = {{"a.test", {"mailer.test"}}, {"b.test", {"mailer.test"}}};
    txt(f, "s1._domainkey.mailer.test",
        {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="});
    doctor::RunOptions o;
    for (auto a : doctor::areas()) {
        if (a != "dkim") o.skip.insert(std::string(a));
    }
    auto out = doctor::run(f, t, o);
    INFO(dump(out));
    REQUIRE(out.size() == 2);  // the key, and a warning that it is the only algorithm
    CHECK(out[0].subject == "mailer.test");
    CHECK(out[0].reason == "selector s1: Ed25519 key published (no private key here to compare)");
    CHECK(out[1].level == Level::warn);
    CHECK(f.count("s1._domainkey.mailer.test", dns::RrType::txt) == 1);
}
