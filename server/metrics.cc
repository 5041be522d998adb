#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ledger::server {
namespace {

std::string EscapeLabel(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

}  // namespace

void PrometheusText::Samples(std::initializer_list<MetricSample> samples) {
  for (const MetricSample& sample : samples) {
    const auto value = static_cast<double>(sample.value);
    if (sample.kind == MetricSample::Kind::kCounter) {
      Counter(sample.name, sample.help, value);
    } else {
      Gauge(sample.name, sample.help, value);
    }
  }
}

void PrometheusText::Family(std::string_view name, std::string_view help, std::string_view type) {
  if (families_.contains(name)) return;
  families_.emplace(name);
  text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void PrometheusText::Sample(std::string_view name, const MetricLabels& labels, double value) {
  text_ += name;
  if (!labels.empty()) {
    text_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) text_ += ',';
      text_ += fmt::format("{}=\"{}\"", labels[i].first, EscapeLabel(labels[i].second));
    }
    text_ += '}';
  }
  text_ += ' ';
  text_ += FormatValue(value);
  text_ += '\n';
}

void PrometheusText::Counter(std::string_view name, std::string_view help, double value,
                             const MetricLabels& labels) {
  Family(name, help, "counter");
  Sample(name, labels, value);
}

void PrometheusText::Gauge(std::string_view name, std::string_view help, double value,
                           const MetricLabels& labels) {
  Family(name, help, "gauge");
  Sample(name, labels, value);
}

void PrometheusText::Histogram(std::string_view name, std::string_view help,
                               const HistogramSnapshot& histogram, const MetricLabels& labels) {
  Family(name, help, "histogram");
  const std::string bucket = std::string(name) + "_bucket";
  for (size_t i = 0; i < histogram.upper_bounds.size(); ++i) {
    MetricLabels with_le = labels;
    with_le.emplace_back("le", FormatValue(histogram.upper_bounds[i]));
    Sample(bucket, with_le, static_cast<double>(histogram.cumulative[i]));
  }
  MetricLabels with_inf = labels;
  with_inf.emplace_back("le", "+Inf");
  Sample(bucket, with_inf, static_cast<double>(histogram.count));
  Sample(std::string(name) + "_sum", labels, histogram.sum);
  Sample(std::string(name) + "_count", labels, static_cast<double>(histogram.count));
}

void HttpMetrics::Record(const HttpServerRequest& request, int status, int64_t handler_us) {
  const std::string& route = request.route.empty() ? std::string("unmatched") : request.route;
  // The method is the client's word: any token at all. Labels take the standard ones, else
  // "other", so that no client can add series without bound.
  static constexpr std::string_view kMethods[] = {"GET",     "HEAD",  "POST",    "PUT",  "DELETE",
                                                  "OPTIONS", "PATCH", "CONNECT", "TRACE"};
  const bool standard =
      std::find(std::begin(kMethods), std::end(kMethods), request.method) != std::end(kMethods);
  std::lock_guard lock(mutex_);
  Route& entry = routes_[route];
  ++entry.requests[{standard ? request.method : std::string("other"), status}];
  if (entry.seconds == nullptr) {
    // 50 us .. about 13 s.
    entry.seconds =
        std::make_unique<ledger::Histogram>(ledger::Histogram::ExponentialBounds(0.00005, 2, 19));
  }
  entry.seconds->Observe(static_cast<double>(handler_us) / 1e6);
}

void HttpMetrics::Write(PrometheusText& out) const {
  std::lock_guard lock(mutex_);
  for (const auto& [route, entry] : routes_) {
    for (const auto& [key, count] : entry.requests) {
      out.Counter("ledger_http_requests_total", "HTTP requests answered, by route, method, status",
                  static_cast<double>(count),
                  {{"route", route}, {"method", key.first}, {"code", std::to_string(key.second)}});
    }
  }
  for (const auto& [route, entry] : routes_) {
    out.Histogram("ledger_http_request_seconds",
                  "Time in the handler, by route (streams: until the response header)",
                  entry.seconds->Read(), {{"route", route}});
  }
}

}  // namespace ledger::server
