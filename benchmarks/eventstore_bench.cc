// eventstore_bench: throughput and latency of the RocksDB event store (issue 2, "Benchmarks").
//
// Every event is ~250 bytes as the writer hands it over: a 200-byte payload (compressible to
// about half, like db_bench's values), an event type, a stream name `order-EDX-<n>` and an
// actor. Every event carries a fresh EventId::NewRandom(). Appends are durable (WAL synced).
//
// Cases, and the number each should reach on the 2-core reference machine:
//   append_batch_1000     one appender, 1000 events per Append call. An Append targets one
//                         stream, so each call creates one stream of 1000 events (NoStream).
//                         Target: >= 150,000 events/s.
//   append_concurrent_16  16 appenders, one event per call, each appender writing its own
//                         streams of 6 events (NoStream, then Exactly(version)).
//                         Target: >= 30,000 events/s with latency p99 < 3 ms.
//   append_single         one appender, one event per call, streams of 6 events.
//                         Target: >= 0.8 x db_bench's `fillseq --sync=1 --batch_size=1` rate.
//   replay_all            fills the log with batch appends to --replay-events (>= 1.5 million),
//                         reopens the store (as after a restart), then ScanAll over the whole
//                         log, checking every record's hash (the default).
//                         Target: >= 2,000,000 events/s. Also reported, without targets:
//                         replay_all_unverified (ScanOptions::verify_hashes = false) and
//                         read_all_pages (the same walk as ReadAll pages of 1000 events).
//
// Output: one JSON object per case per line on stdout; human notes on stderr.
// benchmarks/run compares these figures with db_bench and prints the table of ratios.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/allocator.h"
#include "base/event_id.h"
#include "benchmarks/bench_support.h"
#include "eventstore/event_store.h"

namespace ledger::benchmarks {
namespace {

using eventstore::EventStore;
using eventstore::ExpectedVersion;
using eventstore::NewEvent;
using Clock = std::chrono::steady_clock;

constexpr size_t kPayloadPoolSize = 256;

struct Settings {
  std::vector<std::string> cases = {"append_batch_1000", "append_concurrent_16", "append_single",
                                    "replay_all"};
  double seconds = 10;  // Duration of each append case.
  uint64_t replay_events = 1'500'000;
  size_t batch_events = 1000;
  size_t concurrent_threads = 16;
  size_t stream_events = 6;
  size_t payload_bytes = 200;
  size_t read_page_events = 1000;
  bool sync = true;
  bool keep = false;
  std::string dir;  // Empty: a temporary directory, removed at the end.
};

using bench::SecondsSince;

template <typename T>
T Check(eventstore::StoreResult<T> result, std::string_view what) {
  return bench::Check("eventstore_bench", std::move(result), what);
}

// Payloads cut from one random buffer: 100 random letters written twice, so that LZ4 halves
// them as snappy halves db_bench's values (--compression_ratio=0.5).
std::vector<std::string> MakePayloads(size_t payload_bytes) {
  std::mt19937_64 random(42);
  std::uniform_int_distribution<int> letter('a', 'z');
  std::vector<std::string> payloads(kPayloadPoolSize);
  for (std::string& payload : payloads) {
    std::string half;
    for (size_t i = 0; i < (payload_bytes + 1) / 2; ++i) {
      half.push_back(static_cast<char>(letter(random)));
    }
    payload = (half + half).substr(0, payload_bytes);
  }
  return payloads;
}

// One appender's reusable events: only the event ids change between calls, as a real writer
// would mint them; the payloads rotate through the pool.
class EventSource {
 public:
  EventSource(const std::vector<std::string>& payloads, size_t count) : events_(count) {
    for (size_t i = 0; i < count; ++i) {
      events_[i].event_type = "OrderLineFulfilled";
      events_[i].actor = "bench-appender";
      events_[i].payload = payloads[i % payloads.size()];
    }
  }
  std::span<const NewEvent> Next() {
    for (NewEvent& event : events_) event.event_id = EventId::NewRandom();
    return events_;
  }

 private:
  std::vector<NewEvent> events_;
};

std::string StreamName(uint64_t number) { return fmt::format("order-EDX-{}", number); }

// Latency percentiles by nearest rank over the sorted samples, in microseconds.
struct Latency {
  double p50_us = 0, p99_us = 0, max_us = 0;
};

Latency Summarize(std::vector<double>& samples_us) {
  Latency latency;
  if (samples_us.empty()) return latency;
  std::sort(samples_us.begin(), samples_us.end());
  auto rank = [&](double quantile) {
    const auto index = static_cast<size_t>(quantile * static_cast<double>(samples_us.size() - 1));
    return samples_us[index];
  };
  latency.p50_us = rank(0.50);
  latency.p99_us = rank(0.99);
  latency.max_us = samples_us.back();
  return latency;
}

// Counts group commits through the store's commit listener, so a case can report how many
// events one WAL write (and sync) carried: the figure that decides group commit's worth.
class CommitCounter {
 public:
  explicit CommitCounter(EventStore& store)
      : store_(store), id_(store.AddCommitListener([this](uint64_t) {
          commits_.fetch_add(1, std::memory_order_relaxed);
        })) {}
  ~CommitCounter() { store_.RemoveCommitListener(id_); }
  uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }

 private:
  EventStore& store_;
  std::atomic<uint64_t> commits_{0};
  uint64_t id_;
};

std::unique_ptr<EventStore> OpenStore(const std::string& path, const Settings& settings) {
  eventstore::RocksDbOptions options;
  options.sync = settings.sync;
  return Check(eventstore::OpenRocksDbEventStore(path, options), fmt::format("open {}", path));
}

// append_batch_1000: one appender, each call one new stream of `batch_events` events.
std::string RunAppendBatch(EventStore& store, const Settings& settings,
                           const std::vector<std::string>& payloads) {
  EventSource source(payloads, settings.batch_events);
  uint64_t calls = 0;
  std::vector<double> latencies_us;
  const auto start = Clock::now();
  while (SecondsSince(start) < settings.seconds) {
    const auto events = source.Next();
    const auto call_start = Clock::now();
    Check(store.Append(StreamName(calls), ExpectedVersion::NoStream(), events), "append");
    latencies_us.push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - call_start).count());
    ++calls;
  }
  const double elapsed_s = SecondsSince(start);
  const uint64_t events = calls * settings.batch_events;
  const Latency latency = Summarize(latencies_us);
  return fmt::format(
      R"({{"case":"append_batch_1000","sync":{},"batch_events":{},"calls":{},"events":{},)"
      R"("seconds":{:.3f},"events_per_second":{:.0f},"call_latency_us_p50":{:.0f},)"
      R"("call_latency_us_p99":{:.0f},"call_latency_us_max":{:.0f}}})",
      settings.sync, settings.batch_events, calls, events, elapsed_s,
      static_cast<double>(events) / elapsed_s, latency.p50_us, latency.p99_us, latency.max_us);
}

// Shared by append_concurrent_16 and append_single: `threads` appenders, one event per call,
// each appender walking through streams of its own, `stream_events` events per stream.
std::string RunAppendOneByOne(std::string_view case_name, EventStore& store, size_t threads,
                              const Settings& settings, const std::vector<std::string>& payloads) {
  std::atomic<uint64_t> next_stream{0};
  std::vector<std::vector<double>> latencies_us(threads);
  std::latch ready(static_cast<std::ptrdiff_t>(threads) + 1);
  std::atomic<bool> stop{false};
  CommitCounter counter(store);
  std::vector<std::thread> appenders;
  for (size_t t = 0; t < threads; ++t) {
    appenders.emplace_back([&, t] {
      EventSource source(payloads, 1);
      std::vector<double>& samples = latencies_us[t];
      samples.reserve(1 << 18);
      ready.arrive_and_wait();
      while (!stop.load(std::memory_order_relaxed)) {
        const std::string stream = StreamName(next_stream.fetch_add(1));
        for (uint64_t version = 0; version < settings.stream_events; ++version) {
          const auto expected =
              version == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exactly(version - 1);
          const auto events = source.Next();
          const auto call_start = Clock::now();
          Check(store.Append(stream, expected, events), "append");
          samples.push_back(
              std::chrono::duration<double, std::micro>(Clock::now() - call_start).count());
        }
      }
    });
  }
  ready.arrive_and_wait();
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(settings.seconds));
  stop.store(true);
  for (std::thread& appender : appenders) appender.join();
  const double elapsed_s = SecondsSince(start);

  std::vector<double> all_us;
  for (const auto& samples : latencies_us)
    all_us.insert(all_us.end(), samples.begin(), samples.end());
  const uint64_t events = all_us.size();
  const Latency latency = Summarize(all_us);
  // The mean time of one group's RocksDB write, the WAL sync included: the rest of a commit
  // cycle is deciding the group and handing results back. Each appender waits for its own
  // event's sync before it sends the next, so no design can exceed `threads` events per write
  // time: sync_bound is that ceiling on this disk during this run.
  const HistogramSnapshot writes = store.stats().write_seconds;
  const double write_us_mean =
      writes.count == 0 ? 0 : 1e6 * writes.sum / static_cast<double>(writes.count);
  const double sync_bound =
      write_us_mean == 0 ? 0 : static_cast<double>(threads) * 1e6 / write_us_mean;
  return fmt::format(
      R"({{"case":"{}","sync":{},"threads":{},"stream_events":{},"events":{},"seconds":{:.3f},)"
      R"("events_per_second":{:.0f},"latency_us_p50":{:.0f},"latency_us_p99":{:.0f},)"
      R"("latency_us_max":{:.0f},"commits":{},"events_per_commit":{:.2f},"write_us_mean":{:.0f},)"
      R"("sync_bound_events_per_second":{:.0f}}})",
      case_name, settings.sync, threads, settings.stream_events, events, elapsed_s,
      static_cast<double>(events) / elapsed_s, latency.p50_us, latency.p99_us, latency.max_us,
      counter.commits(),
      static_cast<double>(events) / static_cast<double>(std::max<uint64_t>(counter.commits(), 1)),
      write_us_mean, sync_bound);
}

// Fills the log to `replay_events` with batch appends; returns a JSON line for the fill.
std::string FillLog(EventStore& store, const Settings& settings,
                    const std::vector<std::string>& payloads) {
  EventSource source(payloads, settings.batch_events);
  const auto start = Clock::now();
  uint64_t stream = 0;
  while (store.HeadPosition() < settings.replay_events) {
    Check(store.Append(StreamName(stream++), ExpectedVersion::NoStream(), source.Next()), "fill");
  }
  const double elapsed_s = SecondsSince(start);
  return fmt::format(
      R"({{"case":"replay_fill","sync":{},"batch_events":{},"events":{},"seconds":{:.3f},)"
      R"("events_per_second":{:.0f}}})",
      settings.sync, settings.batch_events, store.HeadPosition(), elapsed_s,
      static_cast<double>(store.HeadPosition()) / elapsed_s);
}

// replay_all and read_all_pages over one filled log. Prints the fill line too.
void RunReplay(const std::string& path, const Settings& settings,
               const std::vector<std::string>& payloads) {
  {
    auto store = OpenStore(path, settings);
    fmt::print("{}\n", FillLog(*store, settings, payloads));
    std::fflush(stdout);
  }
  // Reopen, as an auditor's replay after a restart would: RocksDB recovers its WAL into table
  // files, so the scan reads what is on disk (through the page cache), not memtables.
  const auto reopen_start = Clock::now();
  auto store = OpenStore(path, settings);
  const double reopen_s = SecondsSince(reopen_start);
  const uint64_t head = store->HeadPosition();

  // The default scan checks every record's SHA-256; a replay right after Verify may skip it.
  for (const bool verify_hashes : {true, false}) {
    uint64_t payload_bytes = 0;
    const auto start = Clock::now();
    const uint64_t scanned = Check(store->ScanAll(
                                       1, head,
                                       [&](const eventstore::RecordedEvent& event) {
                                         payload_bytes += event.payload.size();
                                         return true;
                                       },
                                       eventstore::ScanOptions{.verify_hashes = verify_hashes}),
                                   "scan");
    const double elapsed_s = SecondsSince(start);
    if (scanned != head) {
      fmt::print(stderr, "eventstore_bench: scanned {} events, the head is {}\n", scanned, head);
      std::_Exit(1);
    }
    fmt::print(R"({{"case":"{}","events":{},"seconds":{:.3f},"events_per_second":{:.0f},)"
               R"("payload_bytes":{},"reopen_seconds":{:.3f}}})"
               "\n",
               verify_hashes ? "replay_all" : "replay_all_unverified", scanned, elapsed_s,
               static_cast<double>(scanned) / elapsed_s, payload_bytes, reopen_s);
    std::fflush(stdout);
  }

  uint64_t paged = 0, pages = 0;
  const auto start = Clock::now();
  for (uint64_t from = 1; from <= head; ++pages) {
    auto page = Check(store->ReadAll(from, settings.read_page_events), "read all");
    if (page.events.empty()) break;
    paged += page.events.size();
    from = page.next_position;
  }
  const double elapsed_s = SecondsSince(start);
  fmt::print(
      R"({{"case":"read_all_pages","page_events":{},"pages":{},"events":{},"seconds":{:.3f},)"
      R"("events_per_second":{:.0f}}})"
      "\n",
      settings.read_page_events, pages, paged, elapsed_s, static_cast<double>(paged) / elapsed_s);
}

void RunCase(const std::string& name, const std::string& path, const Settings& settings,
             const std::vector<std::string>& payloads) {
  fmt::print(stderr, "eventstore_bench: {} in {}\n", name, path);
  if (name == "replay_all") {
    RunReplay(path, settings, payloads);
  } else {
    auto store = OpenStore(path, settings);
    std::string line;
    if (name == "append_batch_1000") {
      line = RunAppendBatch(*store, settings, payloads);
    } else if (name == "append_concurrent_16") {
      line = RunAppendOneByOne(name, *store, settings.concurrent_threads, settings, payloads);
    } else {
      line = RunAppendOneByOne(name, *store, 1, settings, payloads);
    }
    fmt::print("{}\n", line);
  }
  std::fflush(stdout);
}

constexpr std::string_view kUsage = R"(usage: eventstore_bench [flags]

Runs the event store's benchmark cases on fresh stores and prints one JSON object per case.

  --cases LIST          comma-separated cases, by name or letter (default a,b,c,d):
                          a append_batch_1000     b append_concurrent_16
                          c append_single         d replay_all (also prints replay_fill
                                                    and read_all_pages)
  --seconds S           duration of each append case (default 10)
  --replay-events N     events in the log that replay_all reads (default 1500000)
  --threads N           appenders in append_concurrent_16 (default 16)
  --batch-events N      events per call in append_batch_1000 and the fill (default 1000)
  --stream-events N     events per stream in the one-by-one cases (default 6)
  --payload-bytes N     payload size (default 200)
  --sync 0|1            sync the WAL before Append returns (default 1; 0 only to see its cost)
  --dir PATH            parent directory for the stores, one subdirectory per case; it must
                        not hold them already (default: a temporary directory)
  --keep                keep the stores (default: each is removed after its case)
  --help                this text
)";

// The full name of a case given by name or letter; empty for none.
std::string CaseName(std::string_view name) {
  if (name == "a" || name == "append_batch_1000") return "append_batch_1000";
  if (name == "b" || name == "append_concurrent_16") return "append_concurrent_16";
  if (name == "c" || name == "append_single") return "append_single";
  if (name == "d" || name == "replay_all") return "replay_all";
  return "";
}

Settings ParseFlags(int argc, char** argv) {
  Settings settings;
  bench::Flags flags(argc, argv, kUsage);
  flags.Parse(
      [&](std::string_view flag, const std::string& value) {
        if (flag == "--keep") {
          settings.keep = true;
        } else if (flag == "--cases") {
          settings.cases.clear();
          for (const std::string& item : bench::Flags::List(value)) {
            settings.cases.push_back(CaseName(item));
            if (settings.cases.back().empty()) flags.Fail("unknown case '" + item + "'");
          }
        } else if (flag == "--seconds") {
          settings.seconds = std::strtod(value.c_str(), nullptr);
          if (!(settings.seconds > 0)) flags.Fail("--seconds needs a positive number");
        } else if (flag == "--replay-events") {
          settings.replay_events = flags.Count(flag, value);
        } else if (flag == "--threads") {
          settings.concurrent_threads = flags.Count(flag, value);
        } else if (flag == "--batch-events") {
          settings.batch_events = flags.Count(flag, value);
        } else if (flag == "--stream-events") {
          settings.stream_events = flags.Count(flag, value);
        } else if (flag == "--payload-bytes") {
          settings.payload_bytes = flags.Count(flag, value);
        } else if (flag == "--sync") {
          settings.sync = value != "0";
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
  namespace fs = std::filesystem;
  fs::path root;
  if (settings.dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "eventstore_bench.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      fmt::print(stderr, "eventstore_bench: cannot create a temporary directory\n");
      return 1;
    }
    root = pattern;
  } else {
    root = settings.dir;
    fs::create_directories(root);
  }
  const auto payloads = MakePayloads(settings.payload_bytes);
  for (const std::string& name : settings.cases) {
    const fs::path path = root / name;
    if (fs::exists(path)) {
      fmt::print(stderr, "eventstore_bench: {} exists; a case needs a fresh store\n",
                 path.string());
      return 1;
    }
    RunCase(name, path.string(), settings, payloads);
    if (!settings.keep) fs::remove_all(path);
  }
  if (settings.dir.empty() && !settings.keep) fs::remove_all(root);
  return 0;
}

}  // namespace
}  // namespace ledger::benchmarks

int main(int argc, char** argv) { return ledger::benchmarks::Main(argc, argv); }
