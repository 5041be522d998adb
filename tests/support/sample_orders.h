// The customer, address and basket of the sample orders that tests and benchmarks place: one
// definition, so that a change to what an order needs is made once.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/commands.h"
#include "domain/events.h"

namespace ledger::testing {

// The enrollment code secret of the tests' routers (ledgerd keeps a random one per ledger).
inline constexpr std::string_view kTestCodeSecret = "test-enrollment-code-secret";

inline domain::Address SampleBillingAddress() {
  return {.first_name = "Ada",
          .last_name = "Lovelace",
          .line1 = "1 Main St",
          .line2 = "",
          .city = "London",
          .state = "",
          .postcode = "N1",
          .country = "GB"};
}

// The learner with this id: "learner<id>", "learner<id>@example.com".
inline domain::User SampleLearner(int64_t id) {
  return {.id = id,
          .username = fmt::format("learner{}", id),
          .email = fmt::format("learner{}@example.com", id)};
}

// The user of the small hand-written examples.
inline domain::User SampleUser() {
  return {.id = 7, .username = "ada", .email = "ada@example.com"};
}

inline int64_t SumOfLines(const std::vector<domain::Line>& lines) {
  int64_t total = 0;
  for (const domain::Line& line : lines) total += line.quantity * line.unit_price_minor;
  return total;
}

// A card capture by cybersource for `order_number`, with reference "tx-<order number>".
inline domain::CapturePayment SampleCapture(const std::string& order_number, int64_t amount_minor,
                                            std::string currency, int64_t captured_at_us) {
  return domain::CapturePayment{
      .order_number = order_number,
      .processor = "cybersource",
      .reference = "tx-" + order_number,
      .amount = {.minor_units = amount_minor, .currency = std::move(currency)},
      .card_type = "visa",
      .card_last_digits = "1111",
      .captured_at_us = captured_at_us};
}

// An asynchronous placement of `lines` for partner EDX, the total their sum, nothing shipped.
inline domain::PlaceOrder SamplePlaceOrder(std::string order_number,
                                           std::vector<domain::Line> lines, std::string currency,
                                           int64_t placed_at_us, domain::User user = SampleUser()) {
  const int64_t total = SumOfLines(lines);
  return domain::PlaceOrder{.order_number = std::move(order_number),
                            .partner = "EDX",
                            .basket_id = 0,
                            .user = std::move(user),
                            .lines = std::move(lines),
                            .shipping_method = "No shipping required",
                            .shipping_charge_minor = 0,
                            .billing_address = SampleBillingAddress(),
                            .total_minor = total,
                            .currency = std::move(currency),
                            .placed_at_us = placed_at_us,
                            .synchronous = false};
}

}  // namespace ledger::testing
