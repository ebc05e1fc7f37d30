// The memory and disk bounds in the configuration: [dns] cache_mb, [dmarc_reports] max_rows_per_day.
#include <catch2/catch.hpp>
#include <string>

#include "dns/dns_limits.hpp"
#include "engine/config.hpp"
#include "report/report_limits.hpp"

using namespace vigil::engine;
using Catch::Matchers::Contains;

TEST_CASE("[dns] cache_mb: 32 MiB by default, in MiB, bounded", "[config][dns]") {
    CHECK(load_config_string("", "t.conf")->dns.cache_bytes == vigil::dns::limits::default_cache_bytes);
    CHECK(vigil::dns::limits::default_cache_bytes == std::size_t{32} << 20);
    CHECK(load_config_string("[dns]\ncache_mb = 64\n", "t.conf")->dns.cache_bytes == std::size_t{64} << 20);
    CHECK(load_config_string("[dns]\ncache_mb = 1\n", "t.conf")->dns.cache_bytes == std::size_t{1} << 20);
    CHECK(load_config_file(VIGIL_SOURCE_DIR "/conf/vigil.conf")->dns.cache_bytes == std::size_t{32} << 20);
    for (const char* bad : {"0", "16385", "-1", "\"32M\"", "1.5"}) {
        INFO(bad);
        CHECK_THROWS_WITH(load_config_string(std::string("[dns]\ncache_mb = ") + bad + "\n", "t.conf"),
                          Contains("cache_mb"));
    }
}

TEST_CASE("[dmarc_reports] max_rows_per_day: 50,000 by default, bounded", "[config][report]") {
    CHECK(load_config_string("", "t.conf")->dmarc_reports.max_rows_per_day ==
          vigil::report::limits::default_max_rows_per_day);
    CHECK(vigil::report::limits::default_max_rows_per_day == 50'000);
    CHECK(load_config_string("[dmarc_reports]\nmax_rows_per_day = 1000\n", "t.conf")
              ->dmarc_reports.max_rows_per_day == 1000);
    CHECK(load_config_file(VIGIL_SOURCE_DIR "/conf/vigil.conf")->dmarc_reports.max_rows_per_day == 50'000);
    for (const char* bad : {"0", "100000001", "\"many\""}) {
        INFO(bad);
        CHECK_THROWS_WITH(
            load_config_string(std::string("[dmarc_reports]\nmax_rows_per_day = ") + bad + "\n", "t.conf"),
            Contains("max_rows_per_day"));
    }
}
