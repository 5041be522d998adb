// A workload of realistic orders for tests and tools: each order is captured, placed with one to
// three lines of several product types, and then its lines are fulfilled, fail (every kind),
// are retried, revoked, or fail to revoke, at random but reproducibly from a seed.
//
// Thread safety: an OrderWorkload is used by one thread.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "eventstore/order_command_service.h"

namespace ledger::testing {

class OrderWorkload {
 public:
  OrderWorkload(eventstore::OrderCommandService& service, uint64_t seed,
                std::string order_prefix = "EDX");

  // Places one new order through its whole life; returns its order number.
  std::string AddOrder();
  // One more random step for an order already placed (a fulfillment outcome, a retry, a
  // revocation), or none when nothing applies; rejections are expected and ignored.
  void Step(const std::string& order_number);
  // Captures a payment for an order that is never placed (an orphan payment).
  std::string AddOrphanPayment();

  const std::vector<std::string>& orders() const { return orders_; }

 private:
  void Handle(const domain::Command& command, bool must_succeed);

  eventstore::OrderCommandService& service_;
  std::mt19937_64 random_;
  std::string prefix_;
  int64_t now_us_ = 1'790'000'000'000'000;
  uint64_t next_number_ = 100001;
  std::vector<std::string> orders_;
};

}  // namespace ledger::testing
