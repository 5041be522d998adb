// http_bench: the ledger over HTTP on loopback, load generator included (issue 6, "Benchmark").
//
// Starts the real ledgerd (--ledgerd, default next to this program's build) on a fresh data
// directory with its in-process LMS stand-in and development token, then drives it from one
// thread of its own with --connections keep-alive connections (asynchronous Beast client; the
// machine's other core is ledgerd's):
//
//   healthz        --requests GET /healthz: the HTTP stack alone, the reference for the writes.
//   payments       --orders POST /v1/payments (one synced append each).
//   orders         --orders POST /v1/orders for the orders just paid, one Seat line each,
//                  fulfilled asynchronously by the process manager meanwhile. Target: >= 10,000
//                  orders/s; p50/p99 latency.
//   events_pages   GET /v1/events?from=P&limit=1000 over the whole log, one page after the other:
//                  the reference for the subscriber.
//   sse_catch_up   one GET /v1/subscribe?from=1 read until it reaches the head it had at the
//                  start. Target: >= 200,000 events/s.
// The two readers run --read-runs times each, alternately, and report their medians with every
// run's figure: a catch-up of 40k-80k events lasts a fraction of a second, which a busy machine
// disturbs easily.
//
// Output: one JSON object per case per line on stdout, with the reference's figure and the
// ratio; notes on stderr.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/bench_support.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kUsage = R"(usage: http_bench [--orders N] [--requests N]
                  [--connections N] [--read-runs N] [--ledgerd PATH] [--dir DIR]

  --orders N        orders to pay and place (default 20000)
  --requests N      GET /healthz requests of the reference (default: --orders)
  --connections N   keep-alive connections of the load generator (default 64)
  --read-runs N     runs of each reader, events_pages and sse_catch_up (default 3)
  --ledgerd PATH    the ledgerd to start (default: ../server/ledgerd from this program)
  --dir DIR         where the data directory goes (default $TMPDIR or /tmp)
  --product TYPE    the product of each order's one line: Seat (default; the process manager
                    enrolls over HTTP on the LMS stand-in) or Donation (fulfilled without I/O)
)";

struct Settings {
  uint64_t orders = 20'000;
  uint64_t requests = 0;
  uint64_t connections = 64;
  uint64_t read_runs = 3;
  std::string ledgerd;
  std::string dir;
  std::string product = "Seat";
};

struct Ledgerd {
  pid_t pid = -1;
  uint16_t port = 0;
  std::string token;
};

Ledgerd StartLedgerd(const Settings& settings, const std::string& data_dir) {
  int out[2];
  if (::pipe(out) != 0) std::exit(1);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    ::execl(settings.ledgerd.c_str(), settings.ledgerd.c_str(), "--data-dir", data_dir.c_str(),
            "--listen", "127.0.0.1:0", "--lms-standin", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  FILE* output = ::fdopen(out[0], "r");
  Ledgerd child{.pid = pid, .port = 0, .token = {}};
  char line[512];
  const std::string marker = "listening on http://127.0.0.1:";
  while (std::fgets(line, sizeof(line), output) != nullptr) {
    const std::string text = line;
    if (text.rfind(marker, 0) == 0) {
      child.port = static_cast<uint16_t>(std::stoi(text.substr(marker.size())));
      break;
    }
  }
  std::thread([output] {
    char rest[512];
    while (std::fgets(rest, sizeof(rest), output) != nullptr) {
    }
    std::fclose(output);
  }).detach();
  if (child.port == 0) {
    std::fprintf(stderr, "http_bench: %s did not start\n", settings.ledgerd.c_str());
    std::exit(1);
  }
  std::ifstream token_file(std::filesystem::path(data_dir) / "dev-token");
  std::getline(token_file, child.token);
  return child;
}

struct Result {
  uint64_t ok = 0;
  uint64_t failed = 0;
  double seconds = 0;
  std::vector<int64_t> latencies_us;
  std::string first_failure;
};

// Sends `count` requests made by `make(i)` over `connections` keep-alive connections from one
// thread; a request counts as ok when its status is `expected`.
Result Drive(uint16_t port, uint64_t count, uint64_t connections,
             const std::function<http::request<http::string_body>(uint64_t)>& make,
             unsigned expected) {
  asio::io_context ioc;
  Result result;
  result.latencies_us.reserve(count);
  std::atomic<uint64_t> next{0};
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  auto worker = [&]() -> asio::awaitable<void> {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    co_await stream.async_connect(endpoint, asio::use_awaitable);
    beast::flat_buffer buffer;
    while (true) {
      const uint64_t i = next.fetch_add(1);
      if (i >= count) break;
      http::request<http::string_body> request = make(i);
      request.keep_alive(true);
      request.prepare_payload();
      const auto sent = Clock::now();
      co_await http::async_write(stream, request, asio::use_awaitable);
      http::response<http::string_body> response;
      co_await http::async_read(stream, buffer, response, asio::use_awaitable);
      result.latencies_us.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent).count());
      if (response.result_int() == expected) {
        ++result.ok;
      } else {
        if (result.failed++ == 0) {
          result.first_failure = fmt::format("{} {}", response.result_int(), response.body());
        }
      }
    }
  };
  const auto started = Clock::now();
  for (uint64_t c = 0; c < connections; ++c) {
    asio::co_spawn(ioc, worker(), [](std::exception_ptr error) {
      if (error) std::rethrow_exception(error);
    });
  }
  ioc.run();
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return result;
}

http::request<http::string_body> Request(http::verb verb, std::string target,
                                         const std::string& token, std::string body = {}) {
  http::request<http::string_body> request(verb, target, 11);
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) request.set(http::field::content_type, "application/json");
  request.body() = std::move(body);
  return request;
}

std::string OrderNumber(uint64_t i) { return fmt::format("HB-{}", i); }

std::string OrderBody(uint64_t i, const std::string& product) {
  return fmt::format(
      R"({{"order_number":"{}","user":{{"id":{},"username":"u{}","email":"u{}@example.com"}},)"
      R"("lines":[{{"line_id":"1","product_type":"{}","sku":"S1","title":"Seat","quantity":1,)"
      R"("unit_price":"49.00","attributes":{{"course_key":"course-v1:edX+DemoX+Demo",)"
      R"("certificate_type":"verified"}}}}],"shipping_method":"No shipping required",)"
      R"("shipping_charge":"0.00","billing_address":{{"first_name":"Ada","last_name":"Lovelace",)"
      R"("line1":"1 Main","city":"Cambridge","postcode":"02139","country":"US"}},)"
      R"("order_total":"49.00","currency":"USD","partner":"EDX"}})",
      OrderNumber(i), i + 1, i, i, product);
}

void Print(std::string_view name, const Result& result, std::string_view unit,
           std::string_view reference, double reference_rate, double target) {
  const double rate = static_cast<double>(result.ok) / result.seconds;
  std::string line =
      fmt::format(R"({{"case":"{}","{}_per_second":{:.0f},"ok":{},"failed":{},"seconds":{:.3f},)"
                  R"("latency_us_p50":{},"latency_us_p99":{},"latency_us_max":{})",
                  name, unit, rate, result.ok, result.failed, result.seconds,
                  ledger::bench::Percentile(result.latencies_us, 0.5),
                  ledger::bench::Percentile(result.latencies_us, 0.99),
                  ledger::bench::Percentile(result.latencies_us, 1.0));
  if (!reference.empty()) {
    line += fmt::format(R"(,"reference":"{}","reference_per_second":{:.0f},"ratio":{:.3f})",
                        reference, reference_rate, rate / reference_rate);
  }
  if (target > 0) line += fmt::format(R"(,"target_per_second":{:.0f})", target);
  fmt::print("{}}}\n", line);
  std::fflush(stdout);
  if (result.failed > 0) {
    std::fprintf(stderr, "http_bench: %s: %llu failed, first: %s\n", std::string(name).c_str(),
                 static_cast<unsigned long long>(result.failed), result.first_failure.c_str());
  }
}

// GET /v1/events pages, one after the other, up to `head`: events/s.
double PageThroughLog(uint16_t port, const std::string& token, uint64_t head) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  beast::flat_buffer buffer;
  uint64_t from = 1, events = 0;
  const auto started = Clock::now();
  while (from <= head) {
    auto request =
        Request(http::verb::get, fmt::format("/v1/events?from={}&limit=1000", from), token);
    request.prepare_payload();
    http::write(stream, request);
    http::response_parser<http::string_body> parser;
    parser.body_limit(256ull << 20);
    http::read(stream, buffer, parser);
    const boost::json::value page = boost::json::parse(parser.get().body());
    events += page.at("events").as_array().size();
    from = page.at("next_position").to_number<uint64_t>();
  }
  return static_cast<double>(events) /
         std::chrono::duration<double>(Clock::now() - started).count();
}

// One subscriber from position 1 until it has read `head` events: events/s.
double CatchUp(uint16_t port, const std::string& token, uint64_t head) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  auto request = Request(http::verb::get, "/v1/subscribe?from=1", token);
  request.prepare_payload();
  const auto started = Clock::now();
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.body_limit(boost::none);
  http::read_header(stream, buffer, parser);
  uint64_t events = 0;
  bool done = false;
  // Counts lines that start with "id: " (every message's first line follows a newline: the
  // stream opens with "retry: ...\n\n"). `matched` is how much of "\nid: " the data seen so far
  // ends with, since a message may be split across reads; the data itself is not copied.
  constexpr std::string_view kStart = "\nid: ";
  size_t matched = 0;
  auto count = [&](std::string_view data) {
    size_t at = 0;
    for (; matched > 0 && at < data.size(); ++at) {
      if (data[at] == kStart[matched]) {
        if (++matched == kStart.size()) {
          ++events;
          matched = 0;
        }
      } else {
        matched = data[at] == '\n' ? 1 : 0;
      }
    }
    while ((at = data.find(kStart, at)) != std::string_view::npos) {
      ++events;
      at += kStart.size();
    }
    for (size_t n = std::min(kStart.size() - 1, data.size()); n > 0; --n) {
      if (data.ends_with(kStart.substr(0, n))) {
        matched = n;
        break;
      }
    }
  };
  // Setting end_of_chunk makes http::read return after each chunk, so that `done` is seen.
  auto on_chunk = [&](uint64_t remain, std::string_view data, beast::error_code& ec) -> size_t {
    if (remain == data.size()) ec = http::error::end_of_chunk;
    count(data);
    if (events >= head) done = true;
    return data.size();
  };
  parser.on_chunk_body(on_chunk);
  beast::error_code ec;
  while (!done && !parser.is_done()) {
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::end_of_chunk) {
      ec = {};
      continue;
    }
    if (ec) break;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (events < head) {
    std::fprintf(stderr, "http_bench: the subscriber got %llu of %llu events (%s)\n",
                 static_cast<unsigned long long>(events), static_cast<unsigned long long>(head),
                 ec.message().c_str());
  }
  return static_cast<double>(events) / seconds;
}

uint64_t HeadPosition(uint16_t port, const std::string& token) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  auto request = Request(http::verb::get, "/v1/events?from=1&limit=1", token);
  request.prepare_payload();
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  return boost::json::parse(response.body()).at("head_position").to_number<uint64_t>();
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  ledger::bench::Flags flags(argc, argv, kUsage);
  flags.Parse([&](std::string_view name, const std::string& value) {
    if (name == "--orders") {
      settings.orders = flags.Count(name, value);
    } else if (name == "--requests") {
      settings.requests = flags.Count(name, value);
    } else if (name == "--connections") {
      settings.connections = flags.Count(name, value);
    } else if (name == "--read-runs") {
      settings.read_runs = std::max<uint64_t>(1, flags.Count(name, value));
    } else if (name == "--ledgerd") {
      settings.ledgerd = value;
    } else if (name == "--dir") {
      settings.dir = value;
    } else if (name == "--product") {
      if (value != "Seat" && value != "Donation") flags.Fail("--product is Seat or Donation");
      settings.product = value;
    } else {
      return false;
    }
    return true;
  });
  if (settings.requests == 0) settings.requests = settings.orders;
  if (settings.ledgerd.empty()) {
    settings.ledgerd =
        (std::filesystem::absolute(argv[0]).parent_path().parent_path() / "server" / "ledgerd")
            .string();
  }
  if (settings.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    settings.dir = tmp != nullptr ? tmp : "/tmp";
  }
  const std::string data_dir =
      (std::filesystem::path(settings.dir) / fmt::format("http-bench-{}", ::getpid())).string();
  std::filesystem::remove_all(data_dir);
  ::signal(SIGPIPE, SIG_IGN);

  const Ledgerd ledgerd = StartLedgerd(settings, data_dir);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::fprintf(stderr, "http_bench: ledgerd on port %u, %llu connections\n", ledgerd.port,
               static_cast<unsigned long long>(settings.connections));
  const std::string& token = ledgerd.token;

  const Result healthz = Drive(
      ledgerd.port, settings.requests, settings.connections,
      [&](uint64_t) { return Request(http::verb::get, "/healthz", token); }, 200);
  const double healthz_rate = static_cast<double>(healthz.ok) / healthz.seconds;
  Print("healthz", healthz, "requests", "", 0, 0);

  const Result payments = Drive(
      ledgerd.port, settings.orders, settings.connections,
      [&](uint64_t i) {
        return Request(http::verb::post, "/v1/payments", token,
                       fmt::format(R"({{"order_number":"{}","processor":"paypal",)"
                                   R"("reference":"r-{}","amount":"49.00","currency":"USD"}})",
                                   OrderNumber(i), i));
      },
      201);
  Print("payments", payments, "requests", "healthz", healthz_rate, 0);

  const Result orders = Drive(
      ledgerd.port, settings.orders, settings.connections,
      [&](uint64_t i) {
        return Request(http::verb::post, "/v1/orders", token, OrderBody(i, settings.product));
      },
      201);
  Print("orders", orders, "orders", "healthz", healthz_rate, 10'000);

  // Let the process manager finish, so that the log is complete and quiet for the readers.
  uint64_t head = 0;
  for (int i = 0; i < 600; ++i) {
    const uint64_t now = HeadPosition(ledgerd.port, token);
    if (now == head && now >= 4 * settings.orders) break;
    if (i % 10 == 9) {
      std::fprintf(stderr, "http_bench: waiting for fulfillment: head %llu of %llu\n",
                   static_cast<unsigned long long>(now),
                   static_cast<unsigned long long>(4 * settings.orders));
    }
    head = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  head = HeadPosition(ledgerd.port, token);
  std::vector<double> pages_rates, sse_rates;
  for (uint64_t run = 0; run < settings.read_runs; ++run) {
    pages_rates.push_back(PageThroughLog(ledgerd.port, token, head));
    sse_rates.push_back(CatchUp(ledgerd.port, token, head));
  }
  auto runs = [](const std::vector<double>& rates) {
    std::vector<int64_t> rounded;
    for (const double rate : rates) rounded.push_back(std::llround(rate));
    return fmt::format("[{}]", fmt::join(rounded, ","));
  };
  const double pages_rate = ledger::bench::Percentile(pages_rates, 0.5);
  const double sse_rate = ledger::bench::Percentile(sse_rates, 0.5);
  fmt::print(R"({{"case":"events_pages","events_per_second":{:.0f},"events":{},"runs":{}}})"
             "\n",
             pages_rate, head, runs(pages_rates));
  fmt::print(R"({{"case":"sse_catch_up","events_per_second":{:.0f},"events":{},"runs":{},)"
             R"("reference":"events_pages","reference_per_second":{:.0f},"ratio":{:.3f},)"
             R"("target_per_second":200000}})"
             "\n",
             sse_rate, head, runs(sse_rates), pages_rate, sse_rate / pages_rate);

  // What ledgerd saw: group commits and their write time, from GET /metrics (stderr).
  {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), ledgerd.port));
    auto request = Request(http::verb::get, "/metrics", token);
    request.prepare_payload();
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    const std::string& text = response.body();
    for (std::string_view name :
         {"ledger_store_group_commits_total ", "ledger_store_events_appended_total ",
          "ledger_store_write_seconds_sum ", "ledger_store_write_seconds_count "}) {
      const size_t at = text.find(std::string("\n") + std::string(name));
      if (at == std::string::npos) continue;
      const size_t end = text.find('\n', at + 1);
      std::fprintf(stderr, "http_bench: ledgerd %s\n", text.substr(at + 1, end - at - 1).c_str());
    }
  }
  ::kill(ledgerd.pid, SIGTERM);
  int status = 0;
  ::waitpid(ledgerd.pid, &status, 0);
  std::filesystem::remove_all(data_dir);
  return 0;
}
