// Starting the real ledgerd program from tests: on a free port, with its development token.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "fulfillment/http_client.h"

namespace ledger::testing {

struct Child {
  pid_t pid = -1;
  uint16_t port = 0;
  std::string standin_url;  // The in-process LMS stand-in's base URL.
};

// Starts ledgerd (LEDGER_LEDGERD) on a free loopback port with --lms-standin, and a --config
// file when one is given; returns once it prints where it listens.
Child StartLedgerd(const std::string& data_dir, const std::string& config_path = "");
// SIGTERM, then its exit code (128 + signal when killed); fails the test after 10 s.
int StopAndWait(const Child& child);
void KillAndWait(const Child& child);

// One request to the child, with the bearer token when not empty.
Result<fulfillment::HttpResponse, fulfillment::HttpError> Send(uint16_t port,
                                                               const std::string& token,
                                                               const std::string& method,
                                                               const std::string& path,
                                                               const std::string& body = "");

// The body of an order of one Seat line (49.00 USD) for user 7, as POST /v1/orders takes it.
std::string OrderBody(const std::string& number);
// The body of its payment, as POST /v1/payments takes it.
std::string PaymentFor(const std::string& number);

// An empty directory under $LEDGER_TEST_TMP named after `name` and this process.
std::filesystem::path FreshDataDir(const std::string& name);
// The development token ledgerd keeps in the data directory.
std::string ReadDevToken(const std::filesystem::path& data_dir);

}  // namespace ledger::testing
