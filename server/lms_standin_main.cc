// lms_standin: the LMS stand-in as a program (see server/lms_standin.h for what it serves). Its
// first line on stdout is "listening on ADDRESS:PORT", so that a script that started it with
// --port 0 can read the port it got. It serves until SIGINT or SIGTERM.
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/lms_standin.h"

namespace {

constexpr std::string_view kUsage =
    R"(usage: lms_standin [--port PORT] [--address ADDRESS] [--api-key KEY]

Serves the LMS endpoints the fulfillment modules call, in memory, until SIGINT or SIGTERM.

  --port PORT        TCP port (default 0: any free port; the first line printed names it)
  --address ADDRESS  address to listen on (default 127.0.0.1)
  --api-key KEY      the X-Edx-Api-Key callers must send (default: any non-empty key)
  --help             print this help
)";

bool ParsePort(std::string_view text, uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  ledger::server::LmsStandinOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--help") {
      fmt::print("{}", kUsage);
      return 0;
    } else if (flag == "--port" && has_value && ParsePort(argv[i + 1], options.port)) {
      ++i;
    } else if (flag == "--address" && has_value) {
      options.address = argv[++i];
    } else if (flag == "--api-key" && has_value) {
      options.api_key = argv[++i];
    } else {
      std::fprintf(stderr, "lms_standin: bad argument \"%s\"\n%s", argv[i], kUsage.data());
      return 2;
    }
  }
  // Block the stop signals before the server thread starts, so that only sigwait sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto started = ledger::server::LmsStandin::Start(options);
  if (!started) {
    std::fprintf(stderr, "lms_standin: %s\n", started.error().c_str());
    return 1;
  }
  fmt::print("listening on {}:{}\n", options.address, (*started)->port());
  std::fflush(stdout);
  int received = 0;
  sigwait(&stop_signals, &received);
  (*started)->Stop();
  return 0;
}
