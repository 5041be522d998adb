// projection_bench: rebuild of the order status projection from the log (issue 4, "Benchmark").
//
// The log holds --orders realistic order streams (default 1,000,000, about 6,000,000 events):
// each order is PaymentCaptured, OrderCreated (1 to 3 lines with attributes, user, billing
// address) and PostCheckout, then its lines' outcomes: fulfilled at once, or failed (network,
// timeout, configuration), retried and fulfilled, or failed for good; a fifth of the orders
// then have a line revoked. Every stream is appended in one Append call by one of several
// appender threads, with RocksDbOptions::sync = false: the fill is set-up, not a measurement,
// and a synced fill of 6M events would take longer than every case together.
//
// Cases, and the number each should reach on the 2-core reference machine:
//   scan_decode                 the reference, measured in the same run: ScanAll over the whole
//                               log (hashes checked, the default) with DecodeEvent on every
//                               payload and nothing else. No target; what a rebuild is held to.
//   rebuild_order_status        ProjectionRunner::RebuildNow of OrderStatusProjection into a
//                               fresh state store, with the runner's default options (hashes
//                               checked; one walk of the log per two cores, in parallel, each
//                               for the streams that hash to it). Target: >= 1,000,000 events/s,
//                               peak RSS bounded (independent of --orders). Ratio to
//                               scan_decode printed.
//   rebuild_order_status_unverified   the same with RunnerOptions::verify_hashes = false.
//   rebuild_order_status_one_walk     the same with RunnerOptions::rebuild_partitions = 1: one
//                               walk applying every event. With --partitions N, shows what N
//                               parallel walks gain or cost against one.
//   rebuild_order_status_decode_thread   only with --cases rebuild_decode_thread: the default
//                               options but RunnerOptions::decode_thread = true (the log read and
//                               decoded on a second thread), to see what that thread gains.
//   scan_decode_after           the reference again after the rebuilds (the machine is shared:
//                               ratios use the mean of the two reference runs).
//
// Peak RSS is the process's VmHWM, reset (through /proc/self/clear_refs) before each case; the
// RSS before the case is printed with it.
//
// Output: one JSON object per case per line on stdout; human notes on stderr.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/allocator.h"
#include "benchmarks/bench_support.h"
#include "domain/events.h"
#include "domain/order_state.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "eventstore/state_store.h"
#include "projections/order_status_projection.h"
#include "projections/projection_runner.h"
#include "tests/support/sample_orders.h"

namespace ledger::benchmarks {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Settings {
  uint64_t orders = 1'000'000;
  size_t fill_threads = 4;
  // Orders whose rows are compared with a fresh fold after each rebuild.
  size_t check_orders = 2000;
  // Which measurements run: "reference" (scan_decode before and after), "rebuild",
  // "rebuild_unverified", "rebuild_one_walk", "rebuild_decode_thread". The first four by default.
  std::vector<std::string> cases = {"reference", "rebuild", "rebuild_unverified",
                                    "rebuild_one_walk"};
  // RunnerOptions::rebuild_partitions for the rebuild cases but rebuild_one_walk (0: one per
  // two cores).
  size_t partitions = 0;
  bool keep = false;
  std::string dir;  // Empty: a temporary directory, removed at the end.
};

using bench::ProcessCpuSeconds;
using bench::SecondsSince;
using bench::ThreadCpuSeconds;

template <typename T>
T Check(eventstore::StoreResult<T> result, std::string_view what) {
  return bench::Check("projection_bench", std::move(result), what);
}

// A field of /proc/self/status in kB (VmRSS, VmHWM); 0 when it cannot be read.
uint64_t ProcStatusKb(std::string_view field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return 0;
}

// Resets VmHWM to the current RSS (Linux >= 4.0), so that each case reports its own peak.
void ResetPeakRss() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
}

const char* const kProductTypes[] = {"Seat", "Course Entitlement", "Enrollment Code", "Coupon",
                                     "Donation"};

std::string OrderNumber(uint64_t index) { return fmt::format("EDX-{}", 100'000 + index); }

// The events of order `index`, the same for every run (seeded by the index), in stream order.
std::vector<domain::Event> OrderEvents(uint64_t index) {
  std::mt19937_64 random(index * 0x9e3779b97f4a7c15ull + 1);
  const std::string order_number = OrderNumber(index);
  int64_t now_us = 1'790'000'000'000'000 + static_cast<int64_t>(index) * 1000;
  auto tick = [&] { return now_us += static_cast<int64_t>(1000 + random() % 5000); };

  const size_t line_count = 1 + random() % 3;
  std::vector<domain::Line> lines;
  int64_t total = 0;
  for (size_t i = 0; i < line_count; ++i) {
    const int64_t quantity = 1 + static_cast<int64_t>(random() % 3);
    const int64_t unit_price = 1000 + static_cast<int64_t>(random() % 40) * 100;
    lines.push_back(
        domain::Line{.line_id = std::to_string(i + 1),
                     .product_type = kProductTypes[random() % std::size(kProductTypes)],
                     .sku = fmt::format("SKU-{:05}", random() % 10'000),
                     .title = "Introduction to Demo Studies",
                     .quantity = quantity,
                     .unit_price_minor = unit_price,
                     .attributes = {{.name = "course_key", .value = "course-v1:edX+Demo+2026"},
                                    {.name = "certificate_type", .value = "verified"}}});
    total += quantity * unit_price;
  }
  const int64_t user_id = static_cast<int64_t>(1 + random() % 200'000);

  std::vector<domain::Event> events;
  events.push_back(domain::PaymentCaptured{.order_number = order_number,
                                           .processor = "cybersource",
                                           .reference = "tx-" + order_number,
                                           .amount = {.minor_units = total, .currency = "USD"},
                                           .card_type = "visa",
                                           .card_last_digits = "1111",
                                           .captured_at_us = tick(),
                                           .excess = false});
  events.push_back(domain::OrderCreated{.order_number = order_number,
                                        .user = ledger::testing::SampleLearner(user_id),
                                        .lines = lines,
                                        .shipping_method = "No shipping required",
                                        .shipping_charge_minor = 0,
                                        .billing_address = ledger::testing::SampleBillingAddress(),
                                        .total_minor = total,
                                        .currency = "USD",
                                        .partner = "EDX",
                                        .basket_id = static_cast<int64_t>(index + 1),
                                        .placed_at_us = tick()});
  events.push_back(domain::PostCheckout{.order_number = order_number, .synchronous = false});

  auto fulfilled = [&](const std::string& line_id, uint32_t attempt) {
    events.push_back(domain::LineFulfilled{.order_number = order_number,
                                           .line_id = line_id,
                                           .module = "lms",
                                           .attempt = attempt,
                                           .external_reference = "ent-" + order_number + line_id,
                                           .codes = {},
                                           .fulfilled_at_us = tick()});
  };
  auto failed = [&](const std::string& line_id, uint32_t attempt, domain::FailureKind kind) {
    const bool retryable = kind != domain::FailureKind::kConfiguration;
    events.push_back(domain::FulfillmentFailed{
        .order_number = order_number,
        .line_id = line_id,
        .module = "lms",
        .attempt = attempt,
        .kind = kind,
        .message = retryable ? "the LMS did not answer in time" : "no module supports the line",
        .retryable = retryable,
        .next_retry_at_us = retryable ? now_us + 60'000'000 : 0,
        .failed_at_us = tick()});
  };
  std::vector<std::string> complete_lines;
  for (const domain::Line& line : lines) {
    const uint64_t outcome = random() % 100;
    if (outcome < 55) {
      fulfilled(line.line_id, 1);
      complete_lines.push_back(line.line_id);
    } else if (outcome < 85) {
      failed(line.line_id, 1,
             outcome % 2 == 0 ? domain::FailureKind::kNetwork : domain::FailureKind::kTimeout);
      events.push_back(domain::FulfillmentRetryRequested{.order_number = order_number,
                                                         .requested_by = "process-manager",
                                                         .reason = "backoff",
                                                         .line_ids = {line.line_id},
                                                         .automatic = true,
                                                         .requested_at_us = tick()});
      fulfilled(line.line_id, 2);
      complete_lines.push_back(line.line_id);
    } else if (outcome < 95) {
      failed(line.line_id, 1, domain::FailureKind::kTimeout);
    } else {
      failed(line.line_id, 1, domain::FailureKind::kConfiguration);
    }
  }
  if (!complete_lines.empty() && random() % 5 == 0) {
    const std::string& line_id = complete_lines.front();
    events.push_back(domain::LineRevoked{.order_number = order_number,
                                         .line_id = line_id,
                                         .module = "lms",
                                         .refund_reference = "refund-" + order_number,
                                         .revoked_at_us = tick()});
  }
  return events;
}

std::unique_ptr<eventstore::EventStore> OpenLog(const fs::path& path, bool sync) {
  eventstore::RocksDbOptions options;
  options.sync = sync;
  return Check(eventstore::OpenRocksDbEventStore(path.string(), options),
               fmt::format("open {}", path.string()));
}

// Appends every order's stream, one Append per stream, from `fill_threads` threads.
void FillLog(const fs::path& path, const Settings& settings) {
  auto store = OpenLog(path, /*sync=*/false);
  std::atomic<uint64_t> next_order{0};
  const auto start = Clock::now();
  std::vector<std::thread> appenders;
  for (size_t t = 0; t < settings.fill_threads; ++t) {
    appenders.emplace_back([&] {
      const eventstore::EventMetadata metadata{
          .correlation_id = {}, .causation_id = {}, .actor = "projection-bench"};
      std::vector<eventstore::NewEvent> batch;
      for (uint64_t index = next_order.fetch_add(1); index < settings.orders;
           index = next_order.fetch_add(1)) {
        batch.clear();
        for (const domain::Event& event : OrderEvents(index)) {
          batch.push_back(eventstore::ToNewEvent(event, metadata));
        }
        Check(store->Append(domain::OrderStreamName(OrderNumber(index)),
                            eventstore::ExpectedVersion::NoStream(), batch),
              "fill append");
      }
    });
  }
  for (std::thread& appender : appenders) appender.join();
  const double elapsed_s = SecondsSince(start);
  fmt::print(R"({{"case":"fill","sync":false,"threads":{},"orders":{},"events":{},)"
             R"("seconds":{:.3f},"events_per_second":{:.0f}}})"
             "\n",
             settings.fill_threads, settings.orders, store->HeadPosition(), elapsed_s,
             static_cast<double>(store->HeadPosition()) / elapsed_s);
  std::fflush(stdout);
}

struct Measurement {
  uint64_t events = 0;
  double seconds = 0;
  // On a shared machine the wall time depends on what else runs; the CPU time much less.
  double cpu_seconds = 0;
  // CPU time of the thread that called RebuildNow (which applies the events; with the decode
  // thread, the critical path on a machine with a core to spare).
  double calling_thread_cpu_seconds = 0;
  uint64_t rss_before_kb = 0;
  uint64_t peak_rss_kb = 0;

  double events_per_second() const { return static_cast<double>(events) / seconds; }
};

void Print(std::string_view case_name, const Measurement& measurement, std::string_view extra) {
  fmt::print(R"({{"case":"{}","events":{},"seconds":{:.3f},"events_per_second":{:.0f},)"
             R"("cpu_seconds":{:.3f},"rss_before_kb":{},"peak_rss_kb":{}{}}})"
             "\n",
             case_name, measurement.events, measurement.seconds, measurement.events_per_second(),
             measurement.cpu_seconds, measurement.rss_before_kb, measurement.peak_rss_kb, extra);
  std::fflush(stdout);
}

// The reference: the walk and the payload decoding that any rebuild must do, and nothing else.
Measurement ScanDecode(eventstore::EventStore& store) {
  Measurement measurement;
  ResetPeakRss();
  measurement.rss_before_kb = ProcStatusKb("VmRSS");
  uint64_t placed = 0;
  const double cpu_start = ProcessCpuSeconds();
  const auto start = Clock::now();
  measurement.events =
      Check(store.ScanAll(1, store.HeadPosition(),
                          [&](const eventstore::RecordedEvent& record) {
                            auto event = Check(eventstore::DecodeEvent(record), "decode");
                            placed += std::holds_alternative<domain::OrderCreated>(event);
                            return true;
                          }),
            "scan");
  measurement.seconds = SecondsSince(start);
  measurement.cpu_seconds = ProcessCpuSeconds() - cpu_start;
  measurement.peak_rss_kb = ProcStatusKb("VmHWM");
  if (placed == 0) std::_Exit(1);  // Keeps the decoding from being optimized away.
  return measurement;
}

// Compares the rows of `check_orders` orders spread over the log with a fresh fold of their
// events: a fast rebuild that computes the wrong rows would be no result at all.
void CheckRows(projections::ProjectionRunner& runner, eventstore::EventStore& store,
               uint64_t orders, size_t check_orders) {
  const projections::ProjectionView view = runner.View();
  const uint64_t step = std::max<uint64_t>(1, orders / std::max<size_t>(check_orders, 1));
  for (uint64_t index = 0; index < orders; index += step) {
    const std::string order_number = OrderNumber(index);
    auto row = Check(projections::OrderStatusProjection::Get(view, order_number), "row");
    const std::vector<domain::Event> events = OrderEvents(index);
    auto folded = domain::TryFold(events);
    auto stream = Check(store.ReadStream(domain::OrderStreamName(order_number),
                                         eventstore::Direction::kForward, 0, events.size()),
                        "read stream");
    if (!row || !folded || !(row->state == *folded) || stream.empty() ||
        row->position != stream.back().position || row->stream_version != stream.back().version) {
      fmt::print(stderr, "projection_bench: the row of {} differs from a fresh fold\n",
                 order_number);
      std::_Exit(1);
    }
  }
}

Measurement Rebuild(eventstore::EventStore& store, const fs::path& state_path,
                    const Settings& settings, const projections::RunnerOptions& options) {
  fs::remove_all(state_path);
  auto state = Check(eventstore::OpenRocksDbStateStore(state_path.string()), "open state");
  auto runner =
      Check(projections::ProjectionRunner::Open(
                store, *state,
                [] { return std::make_unique<projections::OrderStatusProjection>(); }, options),
            "open runner");
  Measurement measurement;
  ResetPeakRss();
  measurement.rss_before_kb = ProcStatusKb("VmRSS");
  const double cpu_start = ProcessCpuSeconds();
  const double thread_cpu_start = ThreadCpuSeconds();
  const auto start = Clock::now();
  Check(runner->RebuildNow(), "rebuild");
  measurement.seconds = SecondsSince(start);
  measurement.cpu_seconds = ProcessCpuSeconds() - cpu_start;
  measurement.calling_thread_cpu_seconds = ThreadCpuSeconds() - thread_cpu_start;
  measurement.peak_rss_kb = ProcStatusKb("VmHWM");
  measurement.events = runner->checkpoint();
  if (measurement.events != store.HeadPosition()) {
    fmt::print(stderr, "projection_bench: the rebuild stopped at {}, the head is {}\n",
               measurement.events, store.HeadPosition());
    std::_Exit(1);
  }
  CheckRows(*runner, store, settings.orders, settings.check_orders);
  runner.reset();
  state.reset();
  fs::remove_all(state_path);
  return measurement;
}

constexpr std::string_view kUsage = R"(usage: projection_bench [flags]

Fills a log with realistic order streams (unless --keep finds one already), then measures the
reference (scan + decode) and the rebuild of the order status projection; one JSON object per
case on stdout.

  --orders N        orders in the log (default 1000000, ~6 events each; 100000 is a quick run)
  --fill-threads N  appender threads for the fill (default 4; the fill is not synced)
  --cases LIST      some of reference,rebuild,rebuild_unverified,rebuild_one_walk,
                    rebuild_decode_thread (default: the first four)
  --partitions N    walks of the log a rebuild runs in parallel (RunnerOptions::
                    rebuild_partitions; default 0: one per two cores); rebuild_one_walk uses 1
  --check-orders N  rows compared with a fresh fold after each rebuild (default 2000)
  --dir PATH        where the log and the state stores live (default: a temporary directory)
  --keep            keep the log in --dir, and reuse a log found there instead of filling
  --help            this text
)";

Settings ParseFlags(int argc, char** argv) {
  Settings settings;
  bench::Flags flags(argc, argv, kUsage);
  flags.Parse(
      [&](std::string_view flag, const std::string& value) {
        if (flag == "--keep") {
          settings.keep = true;
        } else if (flag == "--orders") {
          settings.orders = flags.Count(flag, value);
        } else if (flag == "--fill-threads") {
          settings.fill_threads = flags.Count(flag, value);
        } else if (flag == "--partitions") {
          settings.partitions = flags.Count(flag, value);
        } else if (flag == "--check-orders") {
          settings.check_orders = flags.Count(flag, value);
        } else if (flag == "--cases") {
          settings.cases = bench::Flags::List(value);
          for (const std::string& name : settings.cases) {
            if (name != "reference" && name != "rebuild" && name != "rebuild_unverified" &&
                name != "rebuild_one_walk" && name != "rebuild_decode_thread") {
              flags.Fail("unknown case '" + name + "'");
            }
          }
        } else if (flag == "--dir") {
          settings.dir = value;
        } else {
          return false;
        }
        return true;
      },
      {"--keep"});
  return settings;
}

int Main(int argc, char** argv) {
  TuneAllocator();
  const Settings settings = ParseFlags(argc, argv);
  fs::path root;
  if (settings.dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "projection_bench.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      fmt::print(stderr, "projection_bench: cannot create a temporary directory\n");
      return 1;
    }
    root = pattern;
  } else {
    root = settings.dir;
    fs::create_directories(root);
  }
  // The log's name carries its size, so that --keep never reuses a log of another size.
  const fs::path log_path = root / fmt::format("log-{}", settings.orders);
  const fs::path state_path = root / "state";
  if (settings.keep && fs::exists(log_path / "CURRENT")) {
    fmt::print(stderr, "projection_bench: reusing the log in {}\n", log_path.string());
  } else {
    fs::remove_all(log_path);
    fmt::print(stderr, "projection_bench: filling {} with {} orders\n", log_path.string(),
               settings.orders);
    FillLog(log_path, settings);
  }
  // Reopened, as after a restart: the scans read table files (through the page cache).
  auto store = OpenLog(log_path, /*sync=*/true);
  fmt::print(stderr, "projection_bench: {} events; warming the page cache\n",
             store->HeadPosition());
  ScanDecode(*store);  // Not reported: every case then reads from the page cache alike.

  auto wants = [&](std::string_view name) {
    return std::find(settings.cases.begin(), settings.cases.end(), name) != settings.cases.end();
  };
  std::optional<Measurement> before, after;
  // The rebuild cases, in the order they run: name, case, options.
  struct RebuildCase {
    std::string_view name;
    std::string_view flag;
    projections::RunnerOptions options;
    std::optional<Measurement> measurement;
  };
  std::vector<RebuildCase> rebuilds = {
      {"rebuild_order_status", "rebuild", {.rebuild_partitions = settings.partitions}, {}},
      {"rebuild_order_status_unverified",
       "rebuild_unverified",
       {.verify_hashes = false, .rebuild_partitions = settings.partitions},
       {}},
      {"rebuild_order_status_one_walk", "rebuild_one_walk", {.rebuild_partitions = 1}, {}},
      {"rebuild_order_status_decode_thread",
       "rebuild_decode_thread",
       {.decode_thread = true, .rebuild_partitions = settings.partitions},
       {}},
  };
  if (wants("reference")) {
    before = ScanDecode(*store);
    Print("scan_decode", *before, "");
  }
  for (RebuildCase& rebuild : rebuilds) {
    if (wants(rebuild.flag)) {
      rebuild.measurement = Rebuild(*store, state_path, settings, rebuild.options);
    }
  }
  if (wants("reference")) {
    after = ScanDecode(*store);
    Print("scan_decode_after", *after, "");
  }
  // The machine is shared: the reference is the mean of a run before and a run after.
  const double reference =
      before ? (before->events_per_second() + after->events_per_second()) / 2 : 0;
  for (const RebuildCase& rebuild : rebuilds) {
    if (!rebuild.measurement) continue;
    const Measurement& measurement = *rebuild.measurement;
    Print(rebuild.name, measurement,
          fmt::format(R"(,"calling_thread_cpu_seconds":{:.3f},"orders":{},"partitions":{},)"
                      R"("reference_events_per_second":{:.0f},"ratio":{:.3f},)"
                      R"("target_events_per_second":1000000,"met":{})",
                      measurement.calling_thread_cpu_seconds, settings.orders,
                      rebuild.options.rebuild_partitions != 0
                          ? rebuild.options.rebuild_partitions
                          : projections::DefaultRebuildPartitions(),
                      reference, reference > 0 ? measurement.events_per_second() / reference : 0,
                      measurement.events_per_second() >= 1'000'000));
  }

  store.reset();
  if (!settings.keep) fs::remove_all(log_path);
  if (settings.dir.empty() && !settings.keep) fs::remove_all(root);
  return 0;
}

}  // namespace
}  // namespace ledger::benchmarks

int main(int argc, char** argv) { return ledger::benchmarks::Main(argc, argv); }
