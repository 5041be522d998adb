// The [fulfillment] configuration: defaults, a full document, per-module overrides, and every
// kind of mistake reported as a ConfigError that names the key and its line.
#include <catch2/catch.hpp>

#include "fulfillment/config.h"

#include <fmt/format.h>
#include "fulfillment/process_manager.h"

namespace ledger::fulfillment {
namespace {

FulfillmentConfig Parse(std::string_view text) {
  auto parsed = ParseFulfillmentConfig(text);
  if (!parsed) FAIL(parsed.error().message);
  return std::move(*parsed);
}

std::string ErrorOf(std::string_view text) {
  auto parsed = ParseFulfillmentConfig(text);
  REQUIRE_FALSE(parsed.has_value());
  return parsed.error().message;
}

std::vector<std::string> Names(const FulfillmentConfig& config) {
  std::vector<std::string> names;
  for (const auto& module : config.modules) names.push_back(module.name);
  return names;
}

TEST_CASE("config: no [fulfillment] table gives the original's defaults", "[config]") {
  const FulfillmentConfig config = Parse("[server]\nport = 8080\n");
  CHECK(config == DefaultFulfillmentConfig());
  CHECK(Names(config) == std::vector<std::string>{"enrollment", "course_entitlement",
                                                  "enrollment_code", "coupon", "donation"});
  CHECK(config.mode == FulfillmentMode::kAsync);
  CHECK(config.modules[0].lms.timeout_ms == 7'000);
  CHECK(config.retry.retries_max == 11);
  CHECK(config.workers == static_cast<int64_t>(ProcessManagerOptions{}.workers));
  CHECK(config.orders_per_run_max ==
        static_cast<int64_t>(ProcessManagerOptions{}.orders_per_run_max));
  // 2^n seconds: 1, 2, 4, ... 1024 s, then no more automatic retries (about half an hour).
  int64_t total_ms = 0;
  for (uint32_t retry = 1; retry <= 11; ++retry) {
    REQUIRE(config.retry.DelayMs(retry).has_value());
    CHECK(*config.retry.DelayMs(retry) == (int64_t{1} << (retry - 1)) * 1'000);
    total_ms += *config.retry.DelayMs(retry);
  }
  CHECK(total_ms == 2'047'000);
  CHECK_FALSE(config.retry.DelayMs(12).has_value());
  CHECK_FALSE(config.retry.DelayMs(0).has_value());
}

TEST_CASE("config: a full document, with per-module overrides of [fulfillment.lms]", "[config]") {
  const FulfillmentConfig config = Parse(R"(
[fulfillment]
mode = "sync"
sync_timeout_ms = 2500
modules = ["donation", "enrollment", "course_entitlement"]
workers = 4
orders_per_run_max = 128

[fulfillment.lms]
lms_url = "http://127.0.0.1:18000"
api_key = "secret"
timeout_ms = 5000
connect_timeout_ms = 1000

[fulfillment.course_entitlement]
timeout_ms = 9000
api_key = "other"

[fulfillment.retry]
first_delay_ms = 100
multiplier = 3
retries_max = 4
delay_ms_max = 500
)");
  CHECK(config.mode == FulfillmentMode::kSync);
  CHECK(config.sync_timeout_ms == 2'500);
  CHECK(config.workers == 4);
  CHECK(config.orders_per_run_max == 128);
  CHECK(Names(config) == std::vector<std::string>{"donation", "enrollment", "course_entitlement"});
  CHECK(config.modules[1].lms == LmsSettings{.lms_url = "http://127.0.0.1:18000",
                                             .api_key = "secret",
                                             .timeout_ms = 5'000,
                                             .connect_timeout_ms = 1'000});
  CHECK(config.modules[2].lms == LmsSettings{.lms_url = "http://127.0.0.1:18000",
                                             .api_key = "other",
                                             .timeout_ms = 9'000,
                                             .connect_timeout_ms = 1'000});
  CHECK(config.modules[0].lms == LmsSettings{});
  CHECK(config.retry.DelayMs(1) == 100);
  CHECK(config.retry.DelayMs(2) == 300);
  CHECK(config.retry.DelayMs(3) == 500);  // Capped by delay_ms_max.
  CHECK(config.retry.DelayMs(4) == 500);
  CHECK_FALSE(config.retry.DelayMs(5).has_value());

  auto client = std::make_shared<HttpClient>();
  const auto modules = BuildModules(config, client);
  REQUIRE(modules.size() == 3);
  CHECK(modules[0]->name() == "donation");
  CHECK(modules[1]->name() == "enrollment");
  CHECK(modules[2]->name() == "course_entitlement");
  const Router router = BuildRouter(config, client);
  CHECK(router.modules().size() == 3);
}

TEST_CASE("config: mistakes are errors naming the key and its line", "[config]") {
  using Catch::Contains;
  CHECK_THAT(ErrorOf("[fulfillment]\nmodules = [\"enrollment\", \"executive_education\"]\n"),
             Contains("fulfillment.modules (line 2): unknown module \"executive_education\""));
  CHECK_THAT(ErrorOf("[fulfillment]\nmodules = [\"coupon\", \"coupon\"]\n"),
             Contains("listed twice"));
  CHECK_THAT(ErrorOf("[fulfillment]\nmodules = \"coupon\"\n"),
             Contains("must be an array of module names, not a string"));
  CHECK_THAT(ErrorOf("[fulfillment]\nmodules = [1]\n"), Contains("must be a string"));
  CHECK_THAT(ErrorOf("[fulfillment.lms]\ntimeout_ms = \"7s\"\n"),
             Contains("fulfillment.lms.timeout_ms (line 2): must be an integer, not a string"));
  CHECK_THAT(ErrorOf("[fulfillment.lms]\ntimeout_ms = 0\n"), Contains("must be between 1"));
  CHECK_THAT(ErrorOf("[fulfillment.lms]\ntimeout = 5\n"),
             Contains("fulfillment.lms.timeout (line 2): unknown key"));
  CHECK_THAT(ErrorOf("[fulfillment.lms]\nlms_url = \"https://lms.example.com\"\n"),
             Contains("must start with http://"));
  CHECK_THAT(ErrorOf("[fulfillment.lms]\nlms_url = \"http://lms/api\"\n"), Contains("no path"));
  CHECK_THAT(ErrorOf("[fulfillment.lms]\nlms_url = \"not a url\"\n"), Contains("not a URL"));
  // A port no connection can use: refused here, not a network error on every line.
  for (const char* port : {"0", "99999", "65536"}) {
    CHECK_THAT(ErrorOf(fmt::format("[fulfillment.lms]\nlms_url = \"http://127.0.0.1:{}\"\n", port)),
               Contains("a port is 1 to 65535"));
  }
  CHECK(ParseFulfillmentConfig("[fulfillment.lms]\nlms_url = \"http://127.0.0.1:65535\"\n"));
  // The port's own text, whatever the URL parser makes of it.
  CHECK_THAT(ErrorOf("[fulfillment.lms]\nlms_url = \"http://127.0.0.1:+80\"\n"),
             Contains("has port \"+80\"; a port is 1 to 65535"));
  CHECK_THAT(ErrorOf("[fulfillment.lms]\nlms_url = \"http://127.0.0.1:80x/\"\n"),
             Contains("has port \"80x\""));
  CHECK_THAT(ErrorOf("[fulfillment.lms]\nlms_url = \"http://127.0.0.1:\"\n"),
             Contains("has port \"\""));
  // Settings for a module that is not listed: a typo or a leftover.
  CHECK_THAT(ErrorOf("[fulfillment]\nmodules = [\"donation\"]\n[fulfillment.enrollment]\n"
                     "lms_url = \"http://127.0.0.1:1\"\n"),
             Contains("fulfillment.enrollment (line 3): settings for module enrollment, which is "
                      "not in fulfillment.modules (donation)"));
  CHECK_THAT(ErrorOf("[fulfillment]\nmode = \"eventually\"\n"),
             Contains("must be \"async\" or \"sync\""));
  CHECK_THAT(ErrorOf("[fulfillment]\nworkers = 0\n"),
             Contains("fulfillment.workers (line 2): must be between 1 and 1024, not 0"));
  CHECK_THAT(ErrorOf("[fulfillment]\norders_per_run_max = 1001\n"),
             Contains("must be between 1 and 1000, not 1001"));
  CHECK_THAT(ErrorOf("[fulfillment]\nworkers = \"many\"\n"),
             Contains("must be an integer, not a string"));
  CHECK_THAT(ErrorOf("[fulfillment]\nflavour = 1\n"),
             Contains("fulfillment.flavour (line 2): unknown key"));
  CHECK_THAT(ErrorOf("fulfillment = 3\n"), Contains("fulfillment (line 1): must be a table"));
  CHECK_THAT(ErrorOf("[fulfillment.coupon]\nlms_url = \"http://x\"\n"),
             Contains("module coupon takes no settings"));
  CHECK_THAT(ErrorOf("[fulfillment.retry]\nmultiplier = 2.5\n"),
             Contains("must be an integer, not a floating-point number"));
  // Named at the key that sets the bound, with its line.
  CHECK_THAT(ErrorOf("[fulfillment.retry]\nfirst_delay_ms = 10\ndelay_ms_max = 5\n"),
             Contains("fulfillment.retry.delay_ms_max (line 3): delay_ms_max (5) must be at least "
                      "first_delay_ms (10)"));
  CHECK_THAT(ErrorOf("[fulfillment.retry]\nfirst_delay_ms = 7200000\n"),
             Contains("fulfillment.retry.first_delay_ms (line 2): delay_ms_max"));
  CHECK_THAT(ErrorOf("[fulfillment.enrollment]\napi_key = \"a\\nb\"\n"), Contains("line breaks"));
  CHECK_THAT(ErrorOf("[fulfillment\nmode = 1\n"), Contains("TOML syntax error (line 1"));
  CHECK_THAT(ErrorOf("\xff\xfe garbage = = ="), Contains("TOML syntax error"));
}

TEST_CASE("config: an empty module list is allowed (every line fails as unsupported)", "[config]") {
  CHECK(Parse("[fulfillment]\nmodules = []\n").modules.empty());
}

}  // namespace
}  // namespace ledger::fulfillment
