// The child process of the crash test (crash_test.cc): opens the store in a directory and appends
// batches (crash_batch.h) to it until it is killed, writing one acknowledgement line to a file
// descriptor after each append that returned success. Before its own batches it retries the
// first <retry batches> batches of round <retry round>: those already in the log must come back
// as idempotent replays at their original positions, the others (lost to a kill before their
// commit) are written now.
//
// Usage: eventstore_crash_appender <data directory> <round> <acknowledgement fd> <retry round>
//        <retry batches>
// Exits with 2 (after writing "error <message>") when the store fails; it never exits on its own
// otherwise: the parent kills it with SIGKILL.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/eventstore/crash_batch.h"

namespace ledger::eventstore::testing {
namespace {

// Writes all of `line` to `fd`; the line is shorter than PIPE_BUF, so this is one write().
bool WriteLine(int fd, std::string_view line) {
  while (true) {
    const ssize_t written = ::write(fd, line.data(), line.size());
    if (written == static_cast<ssize_t>(line.size())) return true;
    if (written < 0 && errno == EINTR) continue;
    return false;
  }
}

int Run(const std::string& path, uint64_t round, int ack_fd, uint64_t retry_round,
        uint64_t retry_batches) {
  auto opened = OpenRocksDbEventStore(path);
  if (!opened) {
    WriteLine(ack_fd, fmt::format("error open: {}\n", opened.error().ToString()));
    return 2;
  }
  EventStore& store = **opened;
  for (uint64_t batch = 0; batch < retry_batches; ++batch) {
    auto result =
        store.Append(CrashStream(batch), ExpectedVersion::Any(), CrashBatch(retry_round, batch));
    if (!result) {
      WriteLine(ack_fd, fmt::format("error retry: {}\n", result.error().ToString()));
      return 2;
    }
    if (!WriteLine(ack_fd, AckLine(retry_round, batch, *result))) return 3;
  }
  for (uint64_t batch = 0;; ++batch) {
    auto result =
        store.Append(CrashStream(batch), ExpectedVersion::Any(), CrashBatch(round, batch));
    if (!result) {
      WriteLine(ack_fd, fmt::format("error append: {}\n", result.error().ToString()));
      return 2;
    }
    if (!WriteLine(ack_fd, AckLine(round, batch, *result))) return 3;
  }
}

}  // namespace
}  // namespace ledger::eventstore::testing

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr,
                 "usage: %s <data directory> <round> <acknowledgement fd> <retry round> <retry "
                 "batches>\n",
                 argv[0]);
    return 1;
  }
  return ledger::eventstore::testing::Run(argv[1], std::strtoull(argv[2], nullptr, 10),
                                          std::atoi(argv[3]), std::strtoull(argv[4], nullptr, 10),
                                          std::strtoull(argv[5], nullptr, 10));
}
