#include "fulfillment/config.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "base/assert.h"
#include "base/text.h"

namespace ledger::fulfillment {
namespace {

constexpr std::array<std::string_view, 5> kModuleNames = {
    kEnrollmentModule, kCourseEntitlementModule, kEnrollmentCodeModule, kCouponModule,
    kDonationModule};

constexpr int64_t kTimeoutMsMax = 3'600'000;
// Threads, each parked while idle; a store call carries at most EventStore::kEventsPerAppendMax
// events, and an order's outcomes are a few.
constexpr int64_t kWorkersMax = 1024;
constexpr int64_t kOrdersPerRunMax = 1000;
constexpr int64_t kDelayMsMax = 7 * 24 * 3'600'000LL;
// Beyond this many retries the domain refuses the attempt number anyway (domain::kAttemptsMax).
constexpr int64_t kRetriesMax = 999;

using Problem = std::optional<ConfigError>;

bool IsLmsModule(std::string_view name) {
  return name == kEnrollmentModule || name == kCourseEntitlementModule;
}

bool IsModuleName(std::string_view name) {
  for (std::string_view known : kModuleNames) {
    if (name == known) return true;
  }
  return false;
}

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date or time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

ConfigError ErrorAt(std::string_view path, const toml::node& node, std::string_view problem) {
  return ConfigError{fmt::format("{} (line {}): {}", path, node.source().begin.line, problem)};
}

Problem ReadInteger(const toml::node& node, std::string_view path, int64_t min, int64_t max,
                    int64_t& out) {
  const auto* value = node.as_integer();
  if (value == nullptr) {
    return ErrorAt(path, node, fmt::format("must be an integer, not {}", TypeName(node)));
  }
  if (value->get() < min || value->get() > max) {
    return ErrorAt(path, node,
                   fmt::format("must be between {} and {}, not {}", min, max, value->get()));
  }
  out = value->get();
  return std::nullopt;
}

Problem ReadString(const toml::node& node, std::string_view path, std::string& out) {
  const auto* value = node.as_string();
  if (value == nullptr) {
    return ErrorAt(path, node, fmt::format("must be a string, not {}", TypeName(node)));
  }
  out = value->get();
  return std::nullopt;
}

// An LMS base URL: http://host[:port], nothing after but an optional "/".
Problem CheckLmsUrl(const toml::node& node, std::string_view path, std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return ErrorAt(path, node, fmt::format("\"{}\" is not a URL", url));
  const boost::urls::url_view& view = *parsed;
  if (view.scheme() != "http") {
    return ErrorAt(path, node, fmt::format("\"{}\" must start with http://", url));
  }
  if (view.encoded_host().empty()) {
    return ErrorAt(path, node, fmt::format("\"{}\" has no host", url));
  }
  if (view.has_port()) {
    // Found out now rather than as a network error on every line, retried for nothing.
    // Boost.URL 1.81 reads "h:+80" as an empty port and a path "+80", and "h:80x" as port 80 and
    // path "x": a path that does not start with "/" is the rest of the port's text.
    std::string port_text(view.port());
    const std::string_view rest = view.encoded_path();
    if (!rest.empty() && rest.front() != '/') port_text.append(rest.substr(0, rest.find('/')));
    const std::optional<uint64_t> port = ParseDecimal(port_text);
    if (!port || *port == 0 || *port > 65535) {
      return ErrorAt(path, node,
                     fmt::format("\"{}\" has port \"{}\"; a port is 1 to 65535", url, port_text));
    }
  }
  const bool plain = (view.encoded_path().empty() || view.encoded_path() == "/") &&
                     !view.has_query() && !view.has_fragment() && !view.has_userinfo();
  if (!plain) {
    return ErrorAt(
        path, node,
        fmt::format("\"{}\" must be http://host[:port] with no path, query or user", url));
  }
  return std::nullopt;
}

Problem ReadLmsSettings(const toml::table& table, std::string_view path, LmsSettings& settings) {
  for (const auto& [key, node] : table) {
    const std::string key_path = fmt::format("{}.{}", path, key.str());
    Problem problem;
    if (key == "lms_url") {
      problem = ReadString(node, key_path, settings.lms_url);
      if (!problem) problem = CheckLmsUrl(node, key_path, settings.lms_url);
    } else if (key == "api_key") {
      problem = ReadString(node, key_path, settings.api_key);
      if (!problem &&
          settings.api_key.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
        problem = ErrorAt(key_path, node, "must not contain line breaks or NUL");
      }
    } else if (key == "timeout_ms") {
      problem = ReadInteger(node, key_path, 1, kTimeoutMsMax, settings.timeout_ms);
    } else if (key == "connect_timeout_ms") {
      problem = ReadInteger(node, key_path, 1, kTimeoutMsMax, settings.connect_timeout_ms);
    } else {
      problem = ErrorAt(key_path, node,
                        "unknown key (known: lms_url, api_key, timeout_ms, connect_timeout_ms)");
    }
    if (problem) return problem;
  }
  return std::nullopt;
}

Problem ReadRetry(const toml::table& table, RetryPolicy& retry) {
  for (const auto& [key, node] : table) {
    const std::string key_path = fmt::format("fulfillment.retry.{}", key.str());
    Problem problem;
    if (key == "first_delay_ms") {
      problem = ReadInteger(node, key_path, 1, kDelayMsMax, retry.first_delay_ms);
    } else if (key == "multiplier") {
      problem = ReadInteger(node, key_path, 1, 16, retry.multiplier);
    } else if (key == "retries_max") {
      int64_t retries_max = 0;
      problem = ReadInteger(node, key_path, 0, kRetriesMax, retries_max);
      retry.retries_max = static_cast<uint32_t>(retries_max);
    } else if (key == "delay_ms_max") {
      problem = ReadInteger(node, key_path, 1, kDelayMsMax, retry.delay_ms_max);
    } else {
      problem = ErrorAt(key_path, node,
                        "unknown key (known: first_delay_ms, multiplier, retries_max, "
                        "delay_ms_max)");
    }
    if (problem) return problem;
  }
  return std::nullopt;
}

Problem ReadModuleList(const toml::node& node, std::vector<std::string>& names) {
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    return ErrorAt("fulfillment.modules", node,
                   fmt::format("must be an array of module names, not {}", TypeName(node)));
  }
  names.clear();
  for (const toml::node& element : *array) {
    std::string name;
    if (Problem problem = ReadString(element, "fulfillment.modules", name)) return problem;
    if (!IsModuleName(name)) {
      return ErrorAt(
          "fulfillment.modules", element,
          fmt::format("unknown module \"{}\" (known: {})", name, fmt::join(kModuleNames, ", ")));
    }
    for (const std::string& seen : names) {
      if (seen == name) {
        return ErrorAt("fulfillment.modules", element,
                       fmt::format("module \"{}\" is listed twice", name));
      }
    }
    names.push_back(std::move(name));
  }
  return std::nullopt;
}

const toml::table* TableOrNull(const toml::node& node) { return node.as_table(); }

Problem ReadFulfillment(const toml::table& fulfillment, FulfillmentConfig& config) {
  std::vector<std::string> names;
  for (const ModuleConfig& module : config.modules) names.push_back(module.name);
  LmsSettings lms_defaults;
  const toml::table* retry_table = nullptr;
  std::vector<std::pair<std::string, const toml::table*>> overrides;
  for (const auto& [key, node] : fulfillment) {
    const std::string key_path = fmt::format("fulfillment.{}", key.str());
    Problem problem;
    if (key == "mode") {
      std::string mode;
      problem = ReadString(node, key_path, mode);
      if (!problem && mode == "async") config.mode = FulfillmentMode::kAsync;
      if (!problem && mode == "sync") config.mode = FulfillmentMode::kSync;
      if (!problem && mode != "async" && mode != "sync") {
        problem =
            ErrorAt(key_path, node, fmt::format("must be \"async\" or \"sync\", not \"{}\"", mode));
      }
    } else if (key == "sync_timeout_ms") {
      problem = ReadInteger(node, key_path, 1, kTimeoutMsMax, config.sync_timeout_ms);
    } else if (key == "workers") {
      problem = ReadInteger(node, key_path, 1, kWorkersMax, config.workers);
    } else if (key == "orders_per_run_max") {
      problem = ReadInteger(node, key_path, 1, kOrdersPerRunMax, config.orders_per_run_max);
    } else if (key == "modules") {
      problem = ReadModuleList(node, names);
    } else if (key == "lms" || key == "retry" || IsModuleName(key.str())) {
      const toml::table* table = TableOrNull(node);
      if (table == nullptr) {
        problem = ErrorAt(key_path, node, fmt::format("must be a table, not {}", TypeName(node)));
      } else if (key == "lms") {
        problem = ReadLmsSettings(*table, key_path, lms_defaults);
      } else if (key == "retry") {
        problem = ReadRetry(*table, config.retry);
        retry_table = table;
      } else if (!IsLmsModule(key.str()) && !table->empty()) {
        problem = ErrorAt(key_path, node, fmt::format("module {} takes no settings", key.str()));
      } else {
        overrides.emplace_back(std::string(key.str()), table);
      }
    } else {
      problem = ErrorAt(key_path, node,
                        fmt::format("unknown key (known: mode, sync_timeout_ms, modules, "
                                    "workers, orders_per_run_max, lms, retry, and a table per "
                                    "module: {})",
                                    fmt::join(kModuleNames, ", ")));
    }
    if (problem) return problem;
  }
  if (config.retry.delay_ms_max < config.retry.first_delay_ms) {
    // Only [fulfillment.retry] can make them disagree (the defaults agree). Named at the key
    // it sets: delay_ms_max when it is there, else first_delay_ms.
    LEDGER_ASSERT(retry_table != nullptr, "the default retry delays disagree");
    const char* key = retry_table->contains("delay_ms_max") ? "delay_ms_max" : "first_delay_ms";
    return ErrorAt(fmt::format("fulfillment.retry.{}", key), *retry_table->get(key),
                   fmt::format("delay_ms_max ({}) must be at least first_delay_ms ({})",
                               config.retry.delay_ms_max, config.retry.first_delay_ms));
  }
  // Settings for a module that does not run are a typo or a leftover: said, not ignored.
  for (const auto& [override_name, table] : overrides) {
    if (std::find(names.begin(), names.end(), override_name) == names.end()) {
      return ErrorAt(fmt::format("fulfillment.{}", override_name), *table,
                     fmt::format("settings for module {}, which is not in fulfillment.modules "
                                 "({})",
                                 override_name, fmt::join(names, ", ")));
    }
  }
  config.modules.clear();
  for (const std::string& name : names) {
    ModuleConfig module{.name = name, .lms = {}};
    if (IsLmsModule(name)) {
      module.lms = lms_defaults;
      for (const auto& [override_name, table] : overrides) {
        if (override_name != name) continue;
        if (Problem problem =
                ReadLmsSettings(*table, fmt::format("fulfillment.{}", name), module.lms)) {
          return problem;
        }
      }
    }
    config.modules.push_back(std::move(module));
  }
  return std::nullopt;
}

}  // namespace

std::optional<int64_t> RetryPolicy::DelayMs(uint32_t retry) const {
  if (retry == 0 || retry > retries_max) return std::nullopt;
  int64_t delay_ms = first_delay_ms;
  for (uint32_t i = 1; i < retry && delay_ms < delay_ms_max; ++i) {
    // No overflow: delay_ms < delay_ms_max <= a week in ms, multiplier <= 16.
    delay_ms *= multiplier;
  }
  return std::min(delay_ms, delay_ms_max);
}

FulfillmentConfig DefaultFulfillmentConfig() {
  FulfillmentConfig config;
  for (std::string_view name : kModuleNames) {
    config.modules.push_back(ModuleConfig{.name = std::string(name), .lms = {}});
  }
  return config;
}

Result<FulfillmentConfig, ConfigError> ParseFulfillmentConfig(std::string_view toml_document) {
  FulfillmentConfig config = DefaultFulfillmentConfig();
  try {
    const toml::table document = toml::parse(toml_document);
    const toml::node* fulfillment = document.get("fulfillment");
    if (fulfillment == nullptr) return config;
    const toml::table* table = fulfillment->as_table();
    if (table == nullptr) {
      return Unexpected(ErrorAt("fulfillment", *fulfillment,
                                fmt::format("must be a table, not {}", TypeName(*fulfillment))));
    }
    if (Problem problem = ReadFulfillment(*table, config)) return Unexpected(std::move(*problem));
    return config;
  } catch (const toml::parse_error& error) {
    return Unexpected(ConfigError{fmt::format("TOML syntax error (line {}, column {}): {}",
                                              error.source().begin.line,
                                              error.source().begin.column, error.description())});
  } catch (const std::exception& error) {
    // toml++ allocates: keep even std::bad_alloc inside the Result.
    return Unexpected(ConfigError{fmt::format("configuration not readable: {}", error.what())});
  }
}

std::vector<std::unique_ptr<Module>> BuildModules(const FulfillmentConfig& config,
                                                  std::shared_ptr<HttpClient> http_client) {
  LEDGER_ASSERT(http_client != nullptr, "BuildModules needs an HTTP client");
  std::vector<std::unique_ptr<Module>> modules;
  for (const ModuleConfig& module : config.modules) {
    if (module.name == kEnrollmentModule) {
      modules.push_back(MakeEnrollmentModule(module.lms, http_client));
    } else if (module.name == kCourseEntitlementModule) {
      modules.push_back(MakeCourseEntitlementModule(module.lms, http_client));
    } else if (module.name == kEnrollmentCodeModule) {
      modules.push_back(MakeEnrollmentCodeModule(config.enrollment_code_secret));
    } else if (module.name == kCouponModule) {
      modules.push_back(MakeCouponModule());
    } else if (module.name == kDonationModule) {
      modules.push_back(MakeDonationModule());
    } else {
      LEDGER_ASSERT(false, "BuildModules: a module name the parser should have refused");
    }
  }
  return modules;
}

Router BuildRouter(const FulfillmentConfig& config, std::shared_ptr<HttpClient> http_client) {
  return Router(BuildModules(config, std::move(http_client)));
}

}  // namespace ledger::fulfillment
