// Metrics in the Prometheus text format (GET /metrics): a writer for the format, and the HTTP
// server's request counters and latencies.
//
// Families written by LedgerApi (see README "Metrics"): ledger_store_* (appends, group-commit
// sizes, write+fsync time, head), ledger_projection_* (checkpoint, lag), ledger_fulfillment_*
// (attempts, outcomes, retries pending), ledger_subscribe_* (open streams, events sent) and
// ledger_http_* (requests by route, method and status; handler latency by route).
//
// Thread safety: HttpMetrics may be recorded into and written from any thread. PrometheusText
// is a plain builder for one answer.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/histogram.h"
#include "server/http_server.h"

namespace ledger::server {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// One unlabelled counter or gauge, for writing a family of them from a table.
struct MetricSample {
  enum class Kind { kCounter, kGauge };
  Kind kind;
  std::string_view name;
  std::string_view help;
  uint64_t value;
};

class PrometheusText {
 public:
  // Each call adds one sample; the family's # HELP and # TYPE lines come before its first.
  // Samples of one family must be added one after the other.
  void Counter(std::string_view name, std::string_view help, double value,
               const MetricLabels& labels = {});
  void Gauge(std::string_view name, std::string_view help, double value,
             const MetricLabels& labels = {});
  void Histogram(std::string_view name, std::string_view help, const HistogramSnapshot& histogram,
                 const MetricLabels& labels = {});
  void Samples(std::initializer_list<MetricSample> samples);

  const std::string& text() const { return text_; }

 private:
  void Family(std::string_view name, std::string_view help, std::string_view type);
  void Sample(std::string_view name, const MetricLabels& labels, double value);

  std::string text_;
  std::set<std::string, std::less<>> families_;
};

class HttpMetrics {
 public:
  // HttpServerOptions::on_handled calls this.
  void Record(const HttpServerRequest& request, int status, int64_t handler_us);
  void Write(PrometheusText& out) const;

 private:
  struct Route {
    std::map<std::pair<std::string, int>, uint64_t> requests;  // (method, status) -> count
    std::unique_ptr<ledger::Histogram> seconds;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Route> routes_;  // By route pattern ("unmatched" for none).
};

}  // namespace ledger::server
