// The fulfillment part of the ledger's configuration file (TOML): which modules run, in which
// order, how they reach the LMS, how failed lines are retried, and whether placing an order waits
// for its fulfillment. Every key is optional; the defaults are the original's behaviour.
//
//   [fulfillment]
//   mode = "async"                 # "async": placing answers once PostCheckout is durable;
//                                  # "sync": it waits up to sync_timeout_ms for the outcome.
//   sync_timeout_ms = 10000
//   modules = ["enrollment", "course_entitlement", "enrollment_code", "coupon", "donation"]
//   workers = 32                   # the process manager's workers (see ProcessManagerOptions)
//   orders_per_run_max = 64        # the most orders one worker runs and records at once
//
//   [fulfillment.lms]              # how the LMS modules reach the LMS
//   lms_url = "http://127.0.0.1:18000"
//   api_key = "..."
//   timeout_ms = 7000              # the LMS's answer, once connected
//   connect_timeout_ms = 7000
//
//   [fulfillment.enrollment]       # per-module overrides of [fulfillment.lms] (enrollment and
//   timeout_ms = 3000              # course_entitlement only; the other modules take none)
//
//   [fulfillment.retry]            # automatic retry n (from 1) waits
//   first_delay_ms = 1000          #   min(first_delay_ms * multiplier^(n-1), delay_ms_max),
//   multiplier = 2                 # after the attempt that failed; after retries_max automatic
//   retries_max = 11               # retries a line waits for a human (a manual retry).
//   delay_ms_max = 3600000
//
// Parsing never throws: any problem (TOML syntax, an unknown key or module, a wrong type, a value
// out of range) is a ConfigError naming the key and its line.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "fulfillment/http_client.h"
#include "fulfillment/module.h"
#include "fulfillment/modules.h"
#include "fulfillment/router.h"

namespace ledger::fulfillment {

struct ModuleConfig {
  std::string name{};  // One of the names in modules.h.
  // Used by the LMS modules only; the others' stay at their defaults.
  LmsSettings lms{};

  friend bool operator==(const ModuleConfig&, const ModuleConfig&) = default;
};

struct RetryPolicy {
  int64_t first_delay_ms = 1'000;
  int64_t multiplier = 2;
  uint32_t retries_max = 11;
  int64_t delay_ms_max = 3'600'000;

  // The wait before automatic retry `retry` (from 1); nullopt when retry > retries_max.
  std::optional<int64_t> DelayMs(uint32_t retry) const;

  friend bool operator==(const RetryPolicy&, const RetryPolicy&) = default;
};

enum class FulfillmentMode : uint8_t {
  kAsync = 1,
  kSync = 2,
};

struct FulfillmentConfig {
  std::vector<ModuleConfig> modules{};  // In routing order: the first that supports a line.
  RetryPolicy retry{};
  FulfillmentMode mode = FulfillmentMode::kAsync;
  int64_t sync_timeout_ms = 10'000;
  int64_t workers = 32;
  int64_t orders_per_run_max = 64;
  // Keys the enrollment codes (MintEnrollmentCodes). Not in the configuration file: ledgerd
  // keeps it in DIR/enrollment-codes.key. Empty: enrollment code lines fail as a configuration
  // error.
  std::string enrollment_code_secret{};

  friend bool operator==(const FulfillmentConfig&, const FulfillmentConfig&) = default;
};

struct ConfigError {
  // "fulfillment.lms.timeout_ms (line 7): must be an integer, not a string".
  std::string message{};
};

// The configuration with every default: all five modules, in the order of the header comment,
// with no LMS URL or API key (LMS lines then fail with a configuration error).
FulfillmentConfig DefaultFulfillmentConfig();

// Parses a whole TOML document and reads its [fulfillment] table (defaults when absent); other
// tables are left to their own readers.
Result<FulfillmentConfig, ConfigError> ParseFulfillmentConfig(std::string_view toml_document);

// The configured modules, in order. `http_client` (not null) is shared by the LMS modules.
std::vector<std::unique_ptr<Module>> BuildModules(const FulfillmentConfig& config,
                                                  std::shared_ptr<HttpClient> http_client);

// A Router over BuildModules(config, http_client).
Router BuildRouter(const FulfillmentConfig& config, std::shared_ptr<HttpClient> http_client);

}  // namespace ledger::fulfillment
