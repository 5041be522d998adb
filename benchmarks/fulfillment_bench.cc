// fulfillment_bench: orders placed to Complete through the process manager (issue 5,
// "Benchmark"). Every append is durable (RocksDB's WAL synced), each case on a fresh ledger.
//
// In the order cases, --placers threads each take the next order and place it through an
// OrderCommandService: CapturePayment (one append), then PlaceOrder (one append: OrderCreated +
// PostCheckout). A ProcessManager with --workers workers fulfills the orders meanwhile (one
// append per order: a LineFulfilled per line). A follower thread subscribed to the log counts
// each order's LineFulfilled events; the order is Complete at its last one. Latency is from the
// moment its PlaceOrder is issued to the moment the follower sees it Complete; throughput is
// orders from the first placement to the last Complete.
//
// Cases, and the number each should reach on the 2-core reference machine:
//   append_reference  what the log alone allows, measured in the same run before the order cases
//                     (and again after them: ratios use the mean): --placers + --workers threads
//                     each append, per order, the very events an order's life writes in the same
//                     three appends (1 event; 2 events; one per line), encoded beforehand, to
//                     fresh streams. No command service, no process manager. orders/s.
//   orders_no_io      --orders-no-io orders of 1 to 3 lines served by the Enrollment Code, Coupon
//                     and Donation modules (no I/O). Target: >= 10,000 orders/s; p50/p99
//                     placement -> Complete. Ratio to append_reference printed.
//   orders_lms        --orders-lms orders of one Seat line, enrolled over HTTP on the LMS
//                     stand-in (in this process, loopback). p50/p99 placement -> Complete,
//                     orders/s; no target but the latency figures.
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
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/allocator.h"
#include "benchmarks/bench_support.h"
#include "domain/decide.h"
#include "domain/order_state.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "eventstore/state_store.h"
#include "fulfillment/http_client.h"
#include "fulfillment/modules.h"
#include "fulfillment/process_manager.h"
#include "fulfillment/router.h"
#include "server/lms_standin.h"
#include "tests/support/sample_orders.h"

namespace ledger::benchmarks {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kApiKey = "bench-api-key";
constexpr std::string_view kCodeSecret = "fulfillment-bench-code-secret";
constexpr int64_t kT0 = 1'790'000'000'000'000;

struct Settings {
  uint64_t orders_no_io = 20'000;
  uint64_t orders_lms = 2'000;
  // A busy store: 32 clients placing orders at once (two synced appends each), and the process
  // manager with its default number of workers.
  size_t placers = 32;
  size_t workers = fulfillment::ProcessManagerOptions{}.workers;
  std::vector<std::string> cases = {"append_reference", "orders_no_io", "orders_lms"};
  // Sync the WAL on every append. Off only to see what the syncs cost (the CPU-bound ceiling).
  bool sync = true;
  bool keep = false;
  std::string dir;  // Empty: a temporary directory, removed at the end.
};

[[noreturn]] void Die(std::string_view what) { bench::Die("fulfillment_bench", what); }

template <typename T>
T Check(eventstore::StoreResult<T> result, std::string_view what) {
  return bench::Check("fulfillment_bench", std::move(result), what);
}

eventstore::RocksDbOptions StoreOptions(const Settings& settings) {
  eventstore::RocksDbOptions options;
  options.sync = settings.sync;
  return options;
}

using bench::ProcessCpuSeconds;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

enum class Workload { kNoIo, kLms };

std::string OrderNumber(uint64_t index) { return fmt::format("B-{}", index); }

// The lines of order `index`: 1 to 3 lines without I/O, or one seat.
std::vector<domain::Line> LinesFor(Workload workload, uint64_t index) {
  auto line = [&](size_t i, std::string product_type, int64_t quantity) {
    return domain::Line{.line_id = std::to_string(i + 1),
                        .product_type = std::move(product_type),
                        .sku = fmt::format("SKU-{}", i),
                        .title = "Introduction to Demo Studies",
                        .quantity = quantity,
                        .unit_price_minor = 4'900,
                        .attributes = {}};
  };
  std::vector<domain::Line> lines;
  if (workload == Workload::kLms) {
    lines.push_back(line(0, "Seat", 1));
    lines.back().attributes = {
        {.name = "course_key", .value = fmt::format("course-v1:edX+Bench+{}", index)},
        {.name = "certificate_type", .value = "verified"}};
    return lines;
  }
  static const char* const kLocalTypes[] = {"Enrollment Code", "Coupon", "Donation"};
  const size_t count = 1 + index % 3;
  for (size_t i = 0; i < count; ++i) {
    const char* type = kLocalTypes[(index + i) % 3];
    lines.push_back(line(i, type, std::string_view(type) == "Enrollment Code" ? 2 : 1));
  }
  return lines;
}

domain::CapturePayment CaptureFor(const std::string& order_number,
                                  const std::vector<domain::Line>& lines) {
  return testing::SampleCapture(order_number, testing::SumOfLines(lines), "USD", kT0);
}

domain::PlaceOrder PlacementFor(const std::string& order_number, std::vector<domain::Line> lines) {
  return testing::SamplePlaceOrder(order_number, std::move(lines), "USD", kT0);
}

double Percentile(std::vector<int64_t> sorted_values, double fraction) {
  if (sorted_values.empty()) return 0;
  const size_t index =
      std::min(sorted_values.size() - 1,
               static_cast<size_t>(fraction * static_cast<double>(sorted_values.size())));
  return static_cast<double>(sorted_values[index]);
}

// ---- append_reference ----

// The three appends of order `index`'s life, as the command service and the process manager
// would write them: decided by the domain, encoded, with their deterministic ids.
std::vector<std::vector<eventstore::NewEvent>> OrderAppends(Workload workload, uint64_t index) {
  const std::string order_number = OrderNumber(index);
  const std::vector<domain::Line> lines = LinesFor(workload, index);
  const eventstore::EventMetadata metadata{
      .correlation_id = {}, .causation_id = {}, .actor = "bench"};
  domain::OrderState state;
  auto decide = [&](const domain::Command& command) {
    auto decided = domain::Decide(state, command);
    if (!decided) Die("the reference's orders are refused by the domain");
    std::vector<eventstore::NewEvent> appended;
    for (const domain::Event& event : *decided) {
      state = domain::Evolve(std::move(state), event);
      appended.push_back(eventstore::ToNewEvent(event, metadata));
    }
    return appended;
  };
  std::vector<std::vector<eventstore::NewEvent>> appends;
  appends.push_back(decide(CaptureFor(order_number, lines)));
  appends.push_back(decide(PlacementFor(order_number, lines)));
  std::vector<eventstore::NewEvent> fulfilled;
  for (const domain::Line& line : lines) {
    const auto codes = line.product_type == "Enrollment Code"
                           ? fulfillment::MintEnrollmentCodes(kCodeSecret, order_number,
                                                              line.line_id, line.quantity)
                           : std::vector<std::string>{};
    for (auto& event : decide(domain::RecordLineFulfilled{.order_number = order_number,
                       .line_id = line.line_id,
                       .module = "coupon",
                       .external_reference = "",
                       .codes = codes,
                       .fulfilled_at_us = kT0})) {
      fulfilled.push_back(std::move(event));
    }
  }
  appends.push_back(std::move(fulfilled));
  return appends;
}

struct ReferenceResult {
  double orders_per_second = 0;
  double appends_per_second = 0;
};

ReferenceResult RunReference(const Settings& settings, const std::string& dir,
                             std::string_view label) {
  const uint64_t orders = settings.orders_no_io;
  std::vector<std::vector<std::vector<eventstore::NewEvent>>> prepared(orders);
  uint64_t events = 0;
  for (uint64_t i = 0; i < orders; ++i) {
    prepared[i] = OrderAppends(Workload::kNoIo, i);
    for (const auto& append : prepared[i]) events += append.size();
  }
  fs::remove_all(dir);
  auto store = Check(eventstore::OpenRocksDbEventStore(dir, StoreOptions(settings)),
                     "opening the reference store");
  std::atomic<uint64_t> next{0};
  const size_t threads = settings.placers + settings.workers;
  const double cpu_start = ProcessCpuSeconds();
  const auto start = Clock::now();
  std::vector<std::thread> appenders;
  for (size_t t = 0; t < threads; ++t) {
    appenders.emplace_back([&] {
      for (uint64_t i = next.fetch_add(1); i < orders; i = next.fetch_add(1)) {
        const std::string stream = domain::OrderStreamName(OrderNumber(i));
        const auto& appends = prepared[i];
        Check(store->Append(stream, eventstore::ExpectedVersion::NoStream(), appends[0]),
              "reference append");
        Check(store->Append(stream, eventstore::ExpectedVersion::Exactly(0), appends[1]),
              "reference append");
        Check(store->Append(stream, eventstore::ExpectedVersion::Exactly(2), appends[2]),
              "reference append");
      }
    });
  }
  for (auto& appender : appenders) appender.join();
  const double seconds = bench::SecondsSince(start);
  const double cpu_seconds = ProcessCpuSeconds() - cpu_start;
  ReferenceResult result{.orders_per_second = static_cast<double>(orders) / seconds,
                         .appends_per_second = 3.0 * static_cast<double>(orders) / seconds};
  fmt::print(
      "{{\"case\":\"{}\",\"orders\":{},\"events\":{},\"appends\":{},\"threads\":{},"
      "\"seconds\":{:.3f},\"orders_per_second\":{:.0f},\"appends_per_second\":{:.0f},"
      "\"events_per_second\":{:.0f},\"cpu_seconds\":{:.3f},\"cpu_us_per_order\":{:.1f},"
      "\"sync\":{}}}\n",
      label, orders, events, 3 * orders, threads, seconds, result.orders_per_second,
      result.appends_per_second, static_cast<double>(events) / seconds, cpu_seconds,
      cpu_seconds * 1e6 / static_cast<double>(orders), settings.sync);
  std::fflush(stdout);
  store.reset();
  fs::remove_all(dir);
  return result;
}

// ---- orders_no_io, orders_lms ----

fulfillment::Router MakeRouter(Workload workload, const std::string& lms_url) {
  std::vector<std::unique_ptr<fulfillment::Module>> modules;
  if (workload == Workload::kLms) {
    auto client = std::make_shared<fulfillment::HttpClient>();
    const fulfillment::LmsSettings lms{.lms_url = lms_url,
                                       .api_key = std::string(kApiKey),
                                       .timeout_ms = 7'000,
                                       .connect_timeout_ms = 7'000};
    modules.push_back(fulfillment::MakeEnrollmentModule(lms, client));
  }
  modules.push_back(fulfillment::MakeEnrollmentCodeModule(std::string(kCodeSecret)));
  modules.push_back(fulfillment::MakeCouponModule());
  modules.push_back(fulfillment::MakeDonationModule());
  return fulfillment::Router(std::move(modules));
}

// Order index of a stream "order-B-<index>"; UINT64_MAX for any other stream.
uint64_t IndexOfStream(std::string_view stream) {
  constexpr std::string_view kPrefix = "order-B-";
  if (!stream.starts_with(kPrefix)) return UINT64_MAX;
  return std::strtoull(std::string(stream.substr(kPrefix.size())).c_str(), nullptr, 10);
}

// The case's JSON line without its closing brace (the reference fields come last, once the
// reference has run again after the cases), and its orders/s.
struct OrdersResult {
  std::string json_fields;
  double orders_per_second = 0;
};

OrdersResult RunOrders(const Settings& settings, Workload workload, const std::string& dir) {
  const char* label = workload == Workload::kNoIo ? "orders_no_io" : "orders_lms";
  const uint64_t orders = workload == Workload::kNoIo ? settings.orders_no_io : settings.orders_lms;
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::unique_ptr<server::LmsStandin> standin;
  if (workload == Workload::kLms) {
    auto started = server::LmsStandin::Start({.api_key = std::string(kApiKey)});
    if (!started) Die("the LMS stand-in did not start: " + started.error());
    standin = std::move(*started);
  }
  auto store = Check(eventstore::OpenRocksDbEventStore(dir + "/log", StoreOptions(settings)),
                     "opening the store");
  auto state = Check(eventstore::OpenRocksDbStateStore(dir + "/state"), "opening the state store");
  const fulfillment::Router router = MakeRouter(workload, standin ? standin->url() : "");
  fulfillment::ProcessManagerOptions options;
  options.workers = settings.workers;
  auto manager =
      Check(fulfillment::ProcessManager::Open(*store, *state, router, options), "opening the PM");

  std::vector<uint32_t> lines_left(orders);
  for (uint64_t i = 0; i < orders; ++i) {
    lines_left[i] = static_cast<uint32_t>(LinesFor(workload, i).size());
  }
  std::vector<std::atomic<int64_t>> placed_ns(orders);
  std::vector<int64_t> complete_ns(orders, 0);
  std::atomic<uint64_t> failures{0};
  std::atomic<bool> placers_failed{false};

  // The follower: an order is Complete at its last LineFulfilled.
  std::thread follower([&] {
    auto subscription = store->SubscribeToAll(0);
    uint64_t complete = 0;
    while (complete < orders && !placers_failed.load()) {
      auto events = Check(subscription->Next(10'000, std::chrono::milliseconds(100)), "following");
      const int64_t now_ns = NowNs();
      for (const eventstore::RecordedEvent& event : events) {
        if (event.event_type == domain::FulfillmentFailed::kTypeName) ++failures;
        if (event.event_type != domain::LineFulfilled::kTypeName) continue;
        const uint64_t index = IndexOfStream(event.stream);
        if (index >= orders) Die("a LineFulfilled of an unknown order");
        if (--lines_left[index] == 0) {
          complete_ns[index] = now_ns;
          ++complete;
        }
      }
    }
  });

  manager->Start();
  std::atomic<uint64_t> next{0};
  int64_t placements_done_ns = 0;
  const double cpu_start = ProcessCpuSeconds();
  const int64_t start_ns = NowNs();
  {
    std::vector<std::thread> placers;
    for (size_t t = 0; t < settings.placers; ++t) {
      placers.emplace_back([&] {
        eventstore::OrderCommandService service(*store);
        const eventstore::EventMetadata metadata{
            .correlation_id = {}, .causation_id = {}, .actor = "bench"};
        for (uint64_t i = next.fetch_add(1); i < orders; i = next.fetch_add(1)) {
          const std::string order_number = OrderNumber(i);
          std::vector<domain::Line> lines = LinesFor(workload, i);
          auto captured = service.Handle(CaptureFor(order_number, lines), metadata);
          placed_ns[i].store(NowNs());
          auto placed = captured
                            ? service.Handle(PlacementFor(order_number, std::move(lines)), metadata)
                            : captured;
          if (!placed) {
            fmt::print(stderr, "fulfillment_bench: placing {} failed: {}\n", order_number,
                       placed.error().ToString());
            placers_failed.store(true);
            return;
          }
        }
      });
    }
    for (auto& placer : placers) placer.join();
    placements_done_ns = NowNs();
  }
  follower.join();
  if (placers_failed.load()) Die("placing failed");
  const int64_t end_ns = *std::max_element(complete_ns.begin(), complete_ns.end());
  const double cpu_seconds = ProcessCpuSeconds() - cpu_start;
  manager->Stop();
  const fulfillment::ProcessManagerStats stats = manager->stats();
  // The store's group commits over the whole case: how many appends one synced write carried
  // and how long the write took, which says whether the run waited on the disk or on the CPU.
  const eventstore::StoreStats store_stats = store->stats();
  const double commits = static_cast<double>(std::max<uint64_t>(store_stats.group_commits, 1));

  std::vector<int64_t> latencies_us(orders);
  for (uint64_t i = 0; i < orders; ++i) {
    latencies_us[i] = (complete_ns[i] - placed_ns[i].load()) / 1000;
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  const double seconds = static_cast<double>(end_ns - start_ns) / 1e9;
  const double placement_seconds = static_cast<double>(placements_done_ns - start_ns) / 1e9;
  const double orders_per_second = static_cast<double>(orders) / seconds;
  uint64_t effects = 0;
  if (standin) effects = standin->Stats().Effects("enrollment");
  OrdersResult result{
      .json_fields = fmt::format(
          "{{\"case\":\"{}\",\"orders\":{},\"placers\":{},\"workers\":{},"
          "\"seconds\":{:.3f},\"orders_per_second\":{:.0f},"
          "\"placement_orders_per_second\":{:.0f},\"latency_us_p50\":{:.0f},"
          "\"latency_us_p99\":{:.0f},\"latency_us_max\":{},\"failures\":{},"
          "\"lines_fulfilled\":{},\"lms_effects\":{},\"head_position\":{},"
          "\"cpu_seconds\":{:.3f},\"cpu_us_per_order\":{:.1f},\"sync\":{},"
          "\"pm_orders_from_cache\":{},\"pm_orders_loaded\":{},"
          "\"pm_recording_appends\":{},\"store_commits\":{},\"appends_per_commit\":{:.2f},"
          "\"events_per_commit\":{:.2f},\"write_us_mean\":{:.0f}",
          label, orders, settings.placers, settings.workers, seconds, orders_per_second,
          static_cast<double>(orders) / placement_seconds, Percentile(latencies_us, 0.50),
          Percentile(latencies_us, 0.99), latencies_us.back(), failures.load(),
          stats.lines_fulfilled, effects, store->HeadPosition(), cpu_seconds,
          cpu_seconds * 1e6 / static_cast<double>(orders), settings.sync, stats.orders_from_cache,
          stats.orders_loaded, stats.recording_appends, store_stats.group_commits,
          static_cast<double>(store_stats.appends) / commits,
          static_cast<double>(store_stats.events_appended) / commits,
          1e6 * store_stats.write_seconds.sum / commits),
      .orders_per_second = orders_per_second};
  fmt::print(stderr, "{}}}\n", result.json_fields);
  manager.reset();
  state.reset();
  store.reset();
  fs::remove_all(dir);
  return result;
}

[[noreturn]] void Usage() {
  std::fprintf(
      stderr,
      "usage: fulfillment_bench [--cases a,b,...] [--orders-no-io N] [--orders-lms N]\n"
      "                         [--placers N] [--workers N] [--sync 0|1] [--dir DIR] [--keep]\n"
      "cases: append_reference, orders_no_io, orders_lms (default: all)\n");
  std::exit(2);
}

std::vector<std::string> SplitCommas(std::string_view text) {
  std::vector<std::string> parts;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    parts.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return parts;
}

int Main(int argc, char** argv) {
  TuneAllocator();
  Settings settings;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (flag == "--cases") {
      settings.cases = SplitCommas(value());
    } else if (flag == "--orders-no-io") {
      settings.orders_no_io = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--orders-lms") {
      settings.orders_lms = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--placers") {
      settings.placers = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--workers") {
      settings.workers = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--dir") {
      settings.dir = value();
    } else if (flag == "--sync") {
      settings.sync = value() != "0";
    } else if (flag == "--keep") {
      settings.keep = true;
    } else {
      Usage();
    }
  }
  if (settings.orders_no_io == 0 || settings.orders_lms == 0 || settings.placers == 0) Usage();
  auto wants = [&](std::string_view name) {
    return std::find(settings.cases.begin(), settings.cases.end(), name) != settings.cases.end();
  };
  const bool temporary = settings.dir.empty();
  if (temporary) {
    settings.dir =
        (fs::temp_directory_path() / fmt::format("fulfillment-bench-{}", ::getpid())).string();
  }
  fs::create_directories(settings.dir);

  std::vector<double> references;
  if (wants("append_reference")) {
    references.push_back(
        RunReference(settings, settings.dir + "/reference", "append_reference").orders_per_second);
  }
  std::vector<OrdersResult> results;
  if (wants("orders_no_io")) {
    results.push_back(RunOrders(settings, Workload::kNoIo, settings.dir + "/no_io"));
  }
  if (wants("orders_lms")) {
    results.push_back(RunOrders(settings, Workload::kLms, settings.dir + "/lms"));
  }
  if (!references.empty() && !results.empty()) {
    // The machine is shared: the reference again after the order cases; ratios use the mean.
    references.push_back(
        RunReference(settings, settings.dir + "/reference", "append_reference_after")
            .orders_per_second);
  }
  double reference = 0;
  for (double value : references) reference += value / static_cast<double>(references.size());
  for (const OrdersResult& result : results) {
    if (reference > 0) {
      fmt::print("{},\"reference_orders_per_second\":{:.0f},\"ratio\":{:.3f}}}\n",
                 result.json_fields, reference, result.orders_per_second / reference);
    } else {
      fmt::print("{},\"reference_orders_per_second\":null,\"ratio\":null}}\n", result.json_fields);
    }
  }
  if (temporary && !settings.keep) fs::remove_all(settings.dir);
  return 0;
}

}  // namespace
}  // namespace ledger::benchmarks

int main(int argc, char** argv) { return ledger::benchmarks::Main(argc, argv); }
