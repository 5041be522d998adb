// Small pieces every benchmark program shares: latency percentiles, clocks, failing loudly and
// flag parsing.
#pragma once

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ledger::bench {

// Any failure ends the run: a benchmark that works around failures measures nothing.
[[noreturn]] inline void Die(std::string_view program, std::string_view what) {
  fmt::print(stderr, "{}: {}\n", program, what);
  std::_Exit(1);
}

// The value of `result` (a ledger Result), or Die naming `what` and the error.
template <typename Result>
auto Check(std::string_view program, Result result, std::string_view what) {
  if (!result) Die(program, fmt::format("{} failed: {}", what, result.error().ToString()));
  if constexpr (!std::is_void_v<typename Result::value_type>) return std::move(result).value();
}

inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// CPU time of the whole process (every thread, RocksDB's background work included), in seconds.
inline double ProcessCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& time) {
    return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// CPU time of the calling thread, in seconds.
inline double ThreadCpuSeconds() {
  timespec time{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time);
  return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_nsec) / 1e9;
}

// The value at `fraction` (0.5: median, 0.99: p99) by nearest rank; 0 for no samples.
template <typename T>
T Percentile(std::vector<T> values, double fraction) {
  if (values.empty()) return T{};
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(fraction * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(rank, values.size() - 1)];
}

// Walks argv as --name value pairs; exits with a message on anything unknown or malformed.
class Flags {
 public:
  Flags(int argc, char** argv, std::string_view usage) : argc_(argc), argv_(argv), usage_(usage) {}

  // Calls `visit(name, value)` for each pair; `visit` returns false for an unknown name. The
  // names in `switches` take no value: `visit(name, "")`.
  template <typename Visit>
  void Parse(Visit visit, std::initializer_list<std::string_view> switches = {}) {
    for (int i = 1; i < argc_; ++i) {
      const std::string_view name = argv_[i];
      if (name == "--help" || name == "-h") {
        std::fputs(usage_.data(), stdout);
        std::exit(0);
      }
      if (std::find(switches.begin(), switches.end(), name) != switches.end()) {
        if (!visit(name, std::string())) Fail(std::string("bad flag: ") + std::string(name));
        continue;
      }
      if (!name.starts_with("--") || i + 1 >= argc_ || !visit(name, std::string(argv_[i + 1]))) {
        Fail(std::string("bad or incomplete flag: ") + std::string(name));
      }
      ++i;
    }
  }

  // The comma-separated items of `value`, empty ones left out.
  static std::vector<std::string> List(const std::string& value) {
    std::vector<std::string> items;
    for (size_t begin = 0; begin <= value.size();) {
      size_t end = value.find(',', begin);
      if (end == std::string::npos) end = value.size();
      if (end > begin) items.push_back(value.substr(begin, end - begin));
      begin = end + 1;
    }
    return items;
  }

  // A positive integer, or exit.
  uint64_t Count(std::string_view name, const std::string& value) const {
    char* end = nullptr;
    const unsigned long long parsed = std::strtoull(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || parsed == 0) {
      Fail(std::string(name) + " needs a positive integer, not '" + value + "'");
    }
    return parsed;
  }

  [[noreturn]] void Fail(const std::string& message) const {
    std::fprintf(stderr, "%s\n\n%s", message.c_str(), usage_.data());
    std::exit(2);
  }

 private:
  int argc_;
  char** argv_;
  std::string_view usage_;
};

}  // namespace ledger::bench
