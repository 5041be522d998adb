// The dashboard in a real browser: Debian's headless Chromium, driven through chromedriver
// (tests/dashboard/webdriver.h), against the ledgerd program with an LMS stand-in that fails the
// first enrollment of an order. A reader's token sees the order in Fulfillment Error with Retry
// disabled; an ops token finds it through the status filter, presses Retry and sees it become
// Complete, revokes a line of another order, then visits payments, revenue, projections (with a
// rebuild) and the live tail, also as it falls back to polling when GET /v1/subscribe is refused.
// Screenshots of each page go to $LEDGER_TEST_TMP/dashboard-browser-<pid>/ and their paths are
// printed.
//
// Every wait polls until a deadline; chromedriver (with its browser), ledgerd and the stand-in
// are stopped by destructors, also when a check fails. Registered in the Release pass only (see
// tests/dashboard/CMakeLists.txt).
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fulfillment/http_client.h"
#include "server/lms_standin.h"
#include "tests/dashboard/webdriver.h"

namespace ledger::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A program run for the test in a process group of its own (so that a browser chromedriver
// started goes with it), its output (stdout and stderr) collected by a reader thread.
class ChildProcess {
 public:
  ChildProcess(std::string name, const std::vector<std::string>& argv) : name_(std::move(name)) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(out[1], STDERR_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      ::execv(args[0], args.data());
      std::fprintf(stderr, "cannot run %s\n", args[0]);
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);  // Also here: whichever runs first, the group exists before a kill.
    ::close(out[1]);
    fd_ = out[0];
    reader_ = std::thread([this] { Read(); });
  }

  ~ChildProcess() {
    Stop(5s);
    stop_reading_.store(true);
    reader_.join();
    ::close(fd_);
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The rest of the first output line that contains `marker`, after it; nullopt when none came
  // within `timeout` or the program exited.
  std::optional<std::string> WaitForLine(const std::string& marker,
                                         std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mutex_);
        const size_t at = output_.find(marker);
        if (at != std::string::npos) {
          const size_t end = output_.find('\n', at);
          if (end != std::string::npos) {
            return output_.substr(at + marker.size(), end - at - marker.size());
          }
        }
      }
      if (exited_) return std::nullopt;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(20ms);
    }
    return std::nullopt;
  }

  // SIGTERM to the group, SIGKILL after `grace`; then SIGKILL to what is left of the group.
  // The program's exit status (128 + signal when killed). Idempotent.
  int Stop(std::chrono::milliseconds grace) {
    if (!exited_) {
      ::kill(-pid_, SIGTERM);
      const auto deadline = Clock::now() + grace;
      int status = 0;
      pid_t waited = 0;
      while ((waited = ::waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
      }
      if (waited == 0) {
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      }
      exited_ = true;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    // Children that outlived the leader (a browser's helpers) are still in its group.
    ::kill(-pid_, SIGKILL);
    return exit_status_;
  }

  // The last `bytes` of the output, for failure messages.
  std::string Tail(size_t bytes = 3000) const {
    std::lock_guard lock(mutex_);
    const std::string text =
        output_.size() > bytes ? output_.substr(output_.size() - bytes) : output_;
    return "---- " + name_ + " ----\n" + text;
  }

 private:
  void Read() {
    char buffer[4096];
    while (!stop_reading_.load()) {
      pollfd descriptor{.fd = fd_, .events = POLLIN, .revents = 0};
      if (::poll(&descriptor, 1, 100) <= 0) continue;
      const ssize_t got = ::read(fd_, buffer, sizeof(buffer));
      if (got <= 0) return;
      std::lock_guard lock(mutex_);
      if (output_.size() < (8u << 20)) output_.append(buffer, static_cast<size_t>(got));
    }
  }

  std::string name_;
  pid_t pid_ = -1;
  int fd_ = -1;
  bool exited_ = false;
  int exit_status_ = -1;
  std::atomic<bool> stop_reading_{false};
  mutable std::mutex mutex_;
  std::string output_;
  std::thread reader_;
};

std::string FromEnvironment(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// Fails with what to install when a program the test needs is missing.
void RequireProgram(const std::string& path, const std::string& package) {
  if (::access(path.c_str(), X_OK) != 0) {
    FAIL(path << " is missing: the browser test needs Debian's " << package
              << " (apt-get install chromium chromium-driver; ./dev test installs them)");
  }
}

struct ApiAnswer {
  int status = 0;
  json::value body;
};

ApiAnswer CallApi(uint16_t port, const std::string& token, const std::string& method,
                  const std::string& path, const std::string& body = "") {
  fulfillment::HttpClient client;
  auto response = client.Send(
      {.method = method,
       .url = "http://127.0.0.1:" + std::to_string(port) + path,
       .headers = {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}},
       .body = body,
       .connect_timeout_ms = 2'000,
       .timeout_ms = 15'000});
  REQUIRE(response);
  boost::system::error_code ec;
  json::value parsed = json::parse(response->body, ec);
  return {.status = response->status, .body = ec ? json::value(nullptr) : parsed};
}

std::string PaymentBody(const std::string& number, const std::string& amount,
                        const std::string& reference) {
  return json::serialize(json::object{{"order_number", number},
                                      {"processor", "cybersource"},
                                      {"reference", reference},
                                      {"amount", amount},
                                      {"currency", "USD"},
                                      {"card_type", "visa"},
                                      {"card_last_digits", "4242"}});
}

std::string OrderBody(const std::string& number, int64_t user_id, const std::string& username,
                      const std::string& amount, const std::string& course) {
  json::object line{{"line_id", "1"},
                    {"product_type", "Seat"},
                    {"sku", "SEAT-" + course},
                    {"title", "Verified seat in " + course},
                    {"quantity", 1},
                    {"unit_price", amount},
                    {"attributes", json::object{{"course_key", "course-v1:edX+" + course + "+2026"},
                                                {"certificate_type", "verified"}}}};
  return json::serialize(json::object{
      {"order_number", number},
      {"user",
       json::object{{"id", user_id}, {"username", username}, {"email", username + "@example.com"}}},
      {"lines", json::array{line}},
      {"shipping_method", "No shipping required"},
      {"shipping_charge", "0.00"},
      {"billing_address", json::object{{"first_name", username},
                                       {"last_name", "Tester"},
                                       {"line1", "1 Main St"},
                                       {"city", "Cambridge"},
                                       {"postcode", "02139"},
                                       {"country", "US"}}},
      {"order_total", amount},
      {"currency", "USD"},
      {"partner", "EDX"}});
}

// Pays for and places an order, synchronously fulfilled.
void PlaceOrder(uint16_t port, const std::string& token, const std::string& number, int64_t user_id,
                const std::string& username, const std::string& amount, const std::string& course) {
  const ApiAnswer paid =
      CallApi(port, token, "POST", "/v1/payments", PaymentBody(number, amount, "tx-" + number));
  REQUIRE(paid.status == 201);
  const ApiAnswer placed = CallApi(port, token, "POST", "/v1/orders?fulfillment=sync",
                                   OrderBody(number, user_id, username, amount, course));
  INFO(json::serialize(placed.body));
  REQUIRE(placed.status == 201);
}

std::string OrderStatus(uint16_t port, const std::string& token, const std::string& number) {
  const ApiAnswer order = CallApi(port, token, "GET", "/v1/orders/" + number);
  if (order.status != 200 || !order.body.is_object()) return "";
  return json::value_to<std::string>(order.body.at("status"));
}

// Polls `condition` every 100 ms until it holds or `timeout` passed; then fails with `what`, the
// condition's last word and the programs' output.
void WaitFor(const std::string& what, std::chrono::milliseconds timeout,
             const std::function<bool(std::string& last)>& condition,
             const std::function<std::string()>& diagnostics) {
  const auto deadline = Clock::now() + timeout;
  std::string last;
  while (true) {
    if (condition(last)) return;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(100ms);
  }
  FAIL("timed out after " << timeout.count() << " ms waiting for " << what << "\nlast: " << last
                          << "\n"
                          << diagnostics());
}

TEST_CASE("in Chromium, the dashboard retries an order in Fulfillment Error until Complete",
          "[browser]") {
  const std::string chromium = FromEnvironment("LEDGER_CHROMIUM", LEDGER_CHROMIUM);
  const std::string chromedriver = FromEnvironment("LEDGER_CHROMEDRIVER", LEDGER_CHROMEDRIVER);
  RequireProgram(chromium, "chromium");
  RequireProgram(chromedriver, "chromium-driver");

  const fs::path root = fs::path(FromEnvironment("LEDGER_TEST_TMP", "/tmp")) /
                        ("dashboard-browser-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);

  // The LMS: a stand-in whose faults the test sets directly.
  auto lms = server::LmsStandin::Start(
      {.address = "127.0.0.1", .port = 0, .api_key = "dashboard-test-key"});
  REQUIRE(lms);

  // Two tokens: one with every role the dashboard uses, one that may only read. Automatic
  // retries wait an hour, so the failed order stays failed until the dashboard's Retry.
  const std::string ops_token = "ops-token-0123456789abcdef0123456789abcdef";
  const std::string reader_token = "reader-token-0123456789abcdef0123456789abcdef";
  const fs::path config = root / "ledgerd.toml";
  {
    std::ofstream file(config);
    file << "[fulfillment]\nmodules = [\"enrollment\"]\n"
         << "[fulfillment.lms]\nlms_url = \"" << (*lms)->url() << "\"\n"
         << "api_key = \"dashboard-test-key\"\ntimeout_ms = 5000\nconnect_timeout_ms = 2000\n"
         << "[fulfillment.retry]\nfirst_delay_ms = 3600000\nretries_max = 3\n"
         << "delay_ms_max = 3600000\n"
         << "[[auth.tokens]]\nname = \"ops\"\ntoken = \"" << ops_token << "\"\n"
         << "roles = [\"writer\", \"reader\", \"ops\"]\n"
         << "[[auth.tokens]]\nname = \"viewer\"\ntoken = \"" << reader_token << "\"\n"
         << "roles = [\"reader\"]\n";
  }
  ChildProcess ledgerd("ledgerd", {LEDGER_LEDGERD, "--data-dir", (root / "data").string(),
                                   "--listen", "127.0.0.1:0", "--config", config.string()});
  const auto listening = ledgerd.WaitForLine("listening on http://127.0.0.1:", 20s);
  INFO(ledgerd.Tail());
  REQUIRE(listening);
  const auto port = static_cast<uint16_t>(std::stoi(*listening));
  const std::string base = "http://127.0.0.1:" + std::to_string(port);

  // A Complete order, an order whose enrollment the LMS refuses once (503), and a payment whose
  // order never came.
  PlaceOrder(port, ops_token, "EDX-300001", 7, "ada", "49.00", "DemoX");
  (*lms)->SetFaults({.fail_next = 1, .fail_status = 503});
  PlaceOrder(port, ops_token, "EDX-300002", 8, "grace", "149.00", "CS50");
  (*lms)->SetFaults({});
  REQUIRE(CallApi(port, ops_token, "POST", "/v1/payments",
                  PaymentBody("EDX-300003", "25.00", "tx-orphan"))
              .status == 201);
  auto diagnostics = [&] { return ledgerd.Tail(); };
  WaitFor(
      "EDX-300002 in Fulfillment Error (API)", 10s,
      [&](std::string& last) {
        last = OrderStatus(port, ops_token, "EDX-300002");
        return last == "Fulfillment Error";
      },
      diagnostics);

  ChildProcess driver_process("chromedriver", {chromedriver, "--port=0"});
  const auto driver_port =
      driver_process.WaitForLine("ChromeDriver was started successfully on port ", 15s);
  INFO(driver_process.Tail());
  REQUIRE(driver_port);
  const fs::path profile = root / "chromium-profile";
  WebDriver browser(static_cast<uint16_t>(std::stoi(*driver_port)));
  // Declared after the processes: destroyed first, so the browser closes before they stop.
  struct EndSession {
    WebDriver& browser;
    ~EndSession() { browser.EndSession(); }
  } end_session{browser};
  const Reply session = browser.StartSession(
      chromium,
      {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
       "--user-data-dir=" + profile.string(), "--window-size=1440,1300", "--no-first-run",
       "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
       "--disable-sync", "--disable-component-update", "--hide-scrollbars"});
  INFO(session.error);
  REQUIRE(session.ok);
  auto all_diagnostics = [&] { return ledgerd.Tail() + "\n" + driver_process.Tail(); };
  auto save_screenshot = [&](const std::string& name) {
    std::string png;
    const Reply shot = browser.Screenshot(png);
    INFO(shot.error);
    REQUIRE(shot.ok);
    const fs::path path = root / ("dashboard-" + name + ".png");
    std::ofstream(path, std::ios::binary) << png;
    std::cout << "dashboard screenshot (" << name << "): " << path.string() << std::endl;
  };

  auto text_is = [&](const std::string& css, const std::string& want) {
    return [&browser, css, want](std::string& last) {
      const Reply text = browser.TextCss(css);
      last = text.ok ? json::value_to<std::string>(text.value) : text.error;
      return text.ok && last == want;
    };
  };
  auto text_contains = [&](const std::string& css, const std::string& want) {
    return [&browser, css, want](std::string& last) {
      const Reply text = browser.TextCss(css);
      last = text.ok ? json::value_to<std::string>(text.value) : text.error;
      return text.ok && last.find(want) != std::string::npos;
    };
  };
  auto click = [&](const std::string& css) {
    return [&browser, css](std::string& last) {
      const Reply clicked = browser.ClickCss(css);
      last = clicked.error;
      return clicked.ok;
    };
  };
  auto sign_in = [&](const std::string& token) {
    WaitFor(
        "the sign-in form", 15s,
        [&](std::string& last) {
          const Reply input = browser.Find("#token-input");
          const Reply shown =
              input.ok
                  ? browser.Command("GET", "/element/" + ElementId(input) + "/displayed", nullptr)
                  : input;
          last = shown.error;
          return shown.ok && shown.value == json::value(true) &&
                 browser.SendKeys(ElementId(input), token).ok;
        },
        all_diagnostics);
    WaitFor("the sign-in button", 5s, click("#signin-button"), all_diagnostics);
  };
  auto rows_of_orders_table = [&]() {
    const Reply rows = browser.Execute(
        "return [...document.querySelectorAll('#orders-table tbody tr[data-order]')]"
        ".map((row) => row.dataset.order);");
    return rows.ok ? json::serialize(rows.value) : rows.error;
  };

  // A reader sees the failed order and why, but Retry is disabled and says why.
  REQUIRE(browser.Navigate(base + "/#/orders/EDX-300002").ok);
  sign_in(reader_token);
  WaitFor("the reader's role badge", 10s, text_contains("#role-badge", "no ops role"),
          all_diagnostics);
  WaitFor("EDX-300002 in Fulfillment Error (reader)", 10s,
          text_is("#order-status", "Fulfillment Error"), all_diagnostics);
  WaitFor("the failure reason in the lines", 5s, text_contains("#lines-table", "server"),
          all_diagnostics);
  {
    const Reply retry = browser.Find("#retry-button");
    REQUIRE(retry.ok);
    const Reply enabled =
        browser.Command("GET", "/element/" + ElementId(retry) + "/enabled", nullptr);
    REQUIRE(enabled.ok);
    CHECK(enabled.value == json::value(false));
  }
  save_screenshot("reader");
  WaitFor("sign out", 5s, click("#signout-button"), all_diagnostics);

  // Ops: find the order through the status filter, retry it, watch it become Complete.
  sign_in(ops_token);
  WaitFor("the ops role badge", 10s, text_is("#role-badge", "ops"), all_diagnostics);
  WaitFor("the Orders tab", 5s, click("#nav a[data-view='orders']"), all_diagnostics);
  WaitFor(
      "every order in the list", 10s,
      [&](std::string& last) {
        last = rows_of_orders_table();
        return last == R"(["EDX-300002","EDX-300001"])";
      },
      all_diagnostics);
  WaitFor("the Fulfillment Error filter", 5s,
          click("#filter-status option[value='Fulfillment Error']"), all_diagnostics);
  WaitFor("Apply", 5s, click("#filter-apply"), all_diagnostics);
  WaitFor(
      "only EDX-300002 in the filtered list", 10s,
      [&](std::string& last) {
        last = rows_of_orders_table();
        return last == R"(["EDX-300002"])";
      },
      all_diagnostics);
  WaitFor("the order's link", 5s, click("tr[data-order='EDX-300002'] a.order-link"),
          all_diagnostics);
  WaitFor("EDX-300002 in Fulfillment Error (ops)", 10s,
          text_is("#order-status", "Fulfillment Error"), all_diagnostics);
  WaitFor("the Retry fulfillment button", 5s, click("#retry-button"), all_diagnostics);
  WaitFor("EDX-300002 Complete in the page", 20s, text_is("#order-status", "Complete"),
          all_diagnostics);
  WaitFor(
      "the retry and the fulfillment in the history", 10s,
      [&](std::string& last) {
        const Reply text = browser.TextCss("#history-table");
        last = text.ok ? json::value_to<std::string>(text.value) : text.error;
        return last.find("FulfillmentRetryRequested") != std::string::npos &&
               last.find("LineFulfilled") != std::string::npos;
      },
      all_diagnostics);

  // The ledger agrees; the LMS enrolled once for each order.
  CHECK(OrderStatus(port, ops_token, "EDX-300002") == "Complete");
  CHECK((*lms)->Stats().Effects("enrollment") == 2);
  // No script error or CSP violation, and the token in no URL but the live tail's.
  const Reply errors = browser.Execute("return window.dashboardErrors;");
  REQUIRE(errors.ok);
  CHECK(json::serialize(errors.value) == "[]");
  const Reply urls =
      browser.Execute("return performance.getEntriesByType('resource').map((e) => e.name);");
  REQUIRE(urls.ok);
  for (const json::value& url : urls.value.as_array()) {
    const std::string text(url.as_string());
    INFO(text);
    if (text.find(ops_token) != std::string::npos || text.find(reader_token) != std::string::npos) {
      CHECK(text.find("/v1/subscribe?") != std::string::npos);
    }
  }

  save_screenshot("order");

  // The list after the retry.
  WaitFor("the Orders tab", 5s, click("#nav a[data-view='orders']"), all_diagnostics);
  WaitFor(
      "both orders Complete in the list", 10s,
      [&](std::string& last) {
        const Reply text = browser.TextCss("#orders-table");
        last = text.ok ? json::value_to<std::string>(text.value) : text.error;
        return text.ok && last.find("Fulfillment Error") == std::string::npos &&
               last.find("EDX-300002") != std::string::npos;
      },
      all_diagnostics);
  save_screenshot("orders");

  // Ops revoke a line of the other order, with a refund reference. The LMS refuses the first
  // unenrollment (403, not retried by itself): the line is in Revocation Error while the order
  // still reads Complete, and the list's Revocation Error filter finds it; the second succeeds.
  (*lms)->SetFaults({.fail_next = 1, .fail_status = 403});
  WaitFor("EDX-300001's link", 5s, click("tr[data-order='EDX-300001'] a.order-link"),
          all_diagnostics);
  WaitFor("EDX-300001 Complete", 10s, text_is("#order-status", "Complete"), all_diagnostics);
  auto revoke_line = [&] {
    WaitFor("Revoke", 5s, click("tr[data-line='1'] .revoke-button"), all_diagnostics);
    WaitFor(
        "the refund reference", 5s,
        [&](std::string& last) {
          const Reply input = browser.Find("tr[data-line='1'] .refund-input");
          last = input.error;
          return input.ok && browser.SendKeys(ElementId(input), "rf-42").ok;
        },
        all_diagnostics);
    WaitFor("Confirm revoke", 5s, click("tr[data-line='1'] .inline-form button[type='submit']"),
            all_diagnostics);
  };
  revoke_line();
  WaitFor("the line in Revocation Error", 10s,
          text_contains("tr[data-line='1']", "Revocation Error"), all_diagnostics);
  WaitFor("the Orders tab", 5s, click("#nav a[data-view='orders']"), all_diagnostics);
  WaitFor("the Revocation Error filter", 5s,
          click("#filter-status option[value='Revocation Error']"), all_diagnostics);
  WaitFor("Apply", 5s, click("#filter-apply"), all_diagnostics);
  WaitFor(
      "only EDX-300001 in the revocation error queue", 10s,
      [&](std::string& last) {
        last = rows_of_orders_table();
        return last == R"(["EDX-300001"])";
      },
      all_diagnostics);
  WaitFor("EDX-300001's link", 5s, click("tr[data-order='EDX-300001'] a.order-link"),
          all_diagnostics);
  WaitFor("EDX-300001 still Complete", 10s, text_is("#order-status", "Complete"), all_diagnostics);
  revoke_line();
  WaitFor("the line Revoked", 10s, text_contains("tr[data-line='1']", "Revoked"), all_diagnostics);
  WaitFor("the refund reference in the line", 5s, text_contains("tr[data-line='1']", "rf-42"),
          all_diagnostics);
  CHECK(OrderStatus(port, ops_token, "EDX-300001") == "Refunded");
  WaitFor("EDX-300001 Refunded", 10s, text_is("#order-status", "Refunded"), all_diagnostics);

  // The other panels draw what the ledger holds.
  WaitFor("the Payments tab", 5s, click("#nav a[data-view='payments']"), all_diagnostics);
  WaitFor("the orphan payment", 10s, text_contains("#orphans-table", "EDX-300003"),
          all_diagnostics);
  WaitFor("the excess payments", 5s, text_contains("#excess-table", "Nothing here."),
          all_diagnostics);
  save_screenshot("payments");
  WaitFor("the Revenue tab", 5s, click("#nav a[data-view='revenue']"), all_diagnostics);
  // 49.00 + 149.00 + 25.00 captured today (the orphan's capture counts: money came in), and
  // the revoked line's 49.00 refunded.
  WaitFor("today's revenue", 10s, text_contains("#revenue-table", "223.00"), all_diagnostics);
  WaitFor("today's refund", 10s, text_contains("#revenue-table", "net 174.00"), all_diagnostics);
  save_screenshot("revenue");
  WaitFor("the Projections tab", 5s, click("#nav a[data-view='projections']"), all_diagnostics);
  WaitFor("the projections", 10s, text_contains("#projections-table", "order_status"),
          all_diagnostics);
  WaitFor("Rebuild of revenue", 5s, click("tr[data-projection='revenue'] .rebuild-button"),
          all_diagnostics);
  WaitFor("the rebuild's start", 10s, text_contains("#flash", "Rebuild of revenue started"),
          all_diagnostics);
  WaitFor("the rebuilt revenue projection", 15s,
          text_contains("tr[data-projection='revenue']", "last: generation"), all_diagnostics);
  save_screenshot("projections");
  WaitFor("the Live tail tab", 5s, click("#nav a[data-view='tail']"), all_diagnostics);
  WaitFor("the tail", 10s, text_contains("#tail-table", "LineFulfilled"), all_diagnostics);
  save_screenshot("tail");
  const Reply late_errors = browser.Execute("return window.dashboardErrors;");
  REQUIRE(late_errors.ok);
  CHECK(json::serialize(late_errors.value) == "[]");

  // Without GET /v1/subscribe (a ledgerd before it, or a proxy that refuses it), the tail falls
  // back to polling GET /v1/events. Every page from here on gets an EventSource whose URL leads
  // nowhere (404), through Chromium's DevTools protocol.
  const Reply injected = browser.Command(
      "POST", "/goog/cdp/execute",
      json::object{
          {"cmd", "Page.addScriptToEvaluateOnNewDocument"},
          {"params", json::object{{"source",
                                   "window.EventSource = class extends window.EventSource {"
                                   "  constructor(url, options) {"
                                   "    super(url.replace('/v1/subscribe', '/v1/no-subscribe'),"
                                   "          options);"
                                   "  }"
                                   "};"}}}});
  INFO(injected.error);
  REQUIRE(injected.ok);
  REQUIRE(browser.Navigate(base + "/?reloaded#/tail").ok);  // Another URL: a new document.
  WaitFor("the tail polling", 10s, text_contains("#live-text", "live (polling)"), all_diagnostics);
  // The backlog is drawn on a page opened straight at the tail, before any new event.
  WaitFor("the backlog in the reloaded tail", 10s, text_contains("#tail-table", "LineFulfilled"),
          all_diagnostics);
  REQUIRE(CallApi(port, ops_token, "POST", "/v1/payments",
                  PaymentBody("EDX-300004", "5.00", "tx-polled"))
              .status == 201);
  WaitFor("a new event in the polled tail", 10s, text_contains("#tail-table", "tx-polled"),
          all_diagnostics);

  browser.EndSession();
  driver_process.Stop(5s);        // chromedriver does not handle SIGTERM: its status says nothing.
  CHECK(ledgerd.Stop(10s) == 0);  // SIGTERM: a graceful exit.
  (*lms)->Stop();
  fs::remove_all(profile);
  fs::remove_all(root / "data");
}

}  // namespace
}  // namespace ledger::test
