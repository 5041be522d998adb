// Histogram: counts of observations in fixed buckets, for metrics (Prometheus-style cumulative
// buckets on read). Observing is a few relaxed atomic adds: safe and cheap on hot paths.
//
// Thread safety: Observe and Read may be called concurrently from any thread. A Read taken while
// others observe is not an atomic snapshot (a count may be ahead of the sum), as with any
// Prometheus client.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace ledger {

struct HistogramSnapshot {
  std::vector<double> upper_bounds;  // Ascending; +Inf is implied after the last.
  std::vector<uint64_t> cumulative;  // Observations <= each bound; size upper_bounds.size().
  uint64_t count = 0;                // All observations (the +Inf bucket).
  double sum = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double value);
  HistogramSnapshot Read() const;

  // `count` bounds: start, start * factor, start * factor^2, ...
  static std::vector<double> ExponentialBounds(double start, double factor, size_t count);

 private:
  const std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // Per bucket, the last one is +Inf.
  std::atomic<double> sum_{0};
};

}  // namespace ledger
