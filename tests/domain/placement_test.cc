// Payment capture and order placement, as Given / When / Then.
#include <catch2/catch.hpp>

#include "domain/decide.h"
#include "tests/domain/test_support.h"

namespace ledger::domain {
namespace {

using testing::Capture;
using testing::History;
using testing::kOrderNumber;
using testing::Only;
using testing::PlacedHistory;
using testing::StandardPlacement;

SCENARIO("a capture before the order exists is a state, not an error", "[capture]") {
  GIVEN("an empty stream") {
    History history;
    WHEN("the processor reports a capture") {
      Decision decision = history.When(Capture("txn-1", 14900));
      THEN("it is recorded, not flagged, and the order is captured but not placed") {
        const auto& captured = Only<PaymentCaptured>(decision);
        CHECK(captured.order_number == kOrderNumber);
        CHECK(captured.processor == "cybersource");
        CHECK(captured.reference == "txn-1");
        CHECK(captured.amount == Money{14900, "USD"});
        CHECK(captured.card_type == "visa");
        CHECK(captured.card_last_digits == "1111");
        CHECK(captured.captured_at_us == testing::kT0Us);
        CHECK_FALSE(captured.excess);
        CHECK(history.state().order_number == kOrderNumber);
        CHECK(history.state().captures.size() == 1);
        CHECK_FALSE(history.state().placed());
        CHECK(CapturedMinor(history.state(), "USD") == 14900);
        CHECK(FulfillableLines(history.state()).empty());
      }
    }
  }
}

SCENARIO("the same capture reported twice is recorded once", "[capture]") {
  GIVEN("a recorded capture") {
    History history = History::Given({Capture("txn-1", 14900)});
    WHEN("the processor reports it again, later") {
      CapturePayment again = Capture("txn-1", 14900);
      again.captured_at_us += 60'000'000;
      Decision decision = history.When(again);
      THEN("it is accepted with no new event") {
        REQUIRE(decision.has_value());
        CHECK(decision->empty());
        CHECK(history.state().captures.size() == 1);
      }
    }
    WHEN("the same reference arrives from another processor") {
      CapturePayment other = Capture("txn-1", 14900);
      other.processor = "paypal";
      Decision decision = history.When(other);
      THEN("it is a different capture") {
        REQUIRE(decision.has_value());
        CHECK(decision->size() == 1);
        CHECK(history.state().captures.size() == 2);
      }
    }
    WHEN("the same (processor, reference) arrives with another amount") {
      Rejection rejection = history.Rejected(Capture("txn-1", 100));
      THEN("it is rejected: a reference names one capture") {
        CHECK(rejection.code == RejectionCode::kCaptureReferenceReused);
      }
    }
  }
}

SCENARIO("a capture for an order that exists is recorded as excess", "[capture]") {
  GIVEN("a paid, placed order") {
    History history = PlacedHistory();
    WHEN("another capture with a new reference arrives") {
      Decision decision = history.When(Capture("txn-2", 14900));
      THEN("it is recorded, flagged excess, and shows as money to hand back") {
        CHECK(Only<PaymentCaptured>(decision).excess);
        CHECK(history.state().amounts.captured_minor == 29800);
        CHECK(history.state().amounts.overpaid_minor == 14900);
        CHECK(history.state().amounts.due_minor == 0);
      }
    }
    WHEN("the original capture is reported again") {
      Decision decision = history.When(Capture("txn-1", 14900));
      THEN("nothing is recorded") {
        REQUIRE(decision.has_value());
        CHECK(decision->empty());
      }
    }
  }
}

SCENARIO("a paid order is placed: OrderCreated then PostCheckout", "[placement]") {
  GIVEN("a capture covering the total") {
    History history = History::Given({Capture("txn-1", 14900)});
    WHEN("the order is placed without an order number") {
      PlaceOrder place = StandardPlacement();
      place.synchronous = true;
      Decision decision = history.When(place);
      THEN("the number is generated the original way and two events follow the capture") {
        REQUIRE(decision.has_value());
        REQUIRE(decision->size() == 2);
        const auto& created = std::get<OrderCreated>(decision->at(0));
        CHECK(created.order_number == "EDX-100009");
        CHECK(created.partner == "edx");
        CHECK(created.basket_id == 9);
        CHECK(created.lines == place.lines);
        CHECK(created.user == place.user);
        CHECK(created.total_minor == 14900);
        CHECK(created.currency == "USD");
        CHECK(created.placed_at_us == place.placed_at_us);
        const auto& post_checkout = std::get<PostCheckout>(decision->at(1));
        CHECK(post_checkout.order_number == "EDX-100009");
        CHECK(post_checkout.synchronous);
        CHECK(EventTypeName(history.events().front()) == "PaymentCaptured");
      }
      AND_THEN("the order is Open with every line Open and fulfillable") {
        const OrderState& state = history.state();
        CHECK(state.placed());
        CHECK(state.post_checkout_requested);
        CHECK(state.status == OrderStatus::kOpen);
        CHECK(state.lines.size() == 2);
        CHECK(FulfillableLines(state) == std::vector<std::string>{"1", "2"});
        CHECK(state.amounts.total_minor == 14900);
        CHECK(state.amounts.captured_minor == 14900);
        CHECK(state.amounts.due_minor == 0);
        CHECK(state.amounts.overpaid_minor == 0);
        CHECK(PlacedOrder(state)->lines == place.lines);
      }
    }
  }
}

SCENARIO("the caller may give the order number", "[placement]") {
  GIVEN("a capture for order CUSTOM-1") {
    CapturePayment capture = Capture("txn-1", 14900);
    capture.order_number = "CUSTOM-1";
    History history = History::Given({capture});
    WHEN("the order is placed with that number") {
      PlaceOrder place = StandardPlacement();
      place.order_number = "CUSTOM-1";
      Decision decision = history.When(place);
      THEN("it is used as given") {
        REQUIRE(decision.has_value());
        CHECK(std::get<OrderCreated>(decision->at(0)).order_number == "CUSTOM-1");
        CHECK(ResolveOrderNumber(Command(place)).value() == "CUSTOM-1");
      }
    }
  }
}

SCENARIO("names that a URL path would not keep are refused", "[placement]") {
  // Clients and proxies remove "." and ".." segments from paths: /v1/orders/./events would
  // reach another order's history.
  THEN("'.' and '..' number no new order, though dots inside one are fine") {
    for (const char* number : {".", ".."}) {
      CapturePayment capture = Capture("txn-1", 14900);
      capture.order_number = number;
      const Rejection rejection = History().Rejected(capture);
      CHECK(rejection.code == RejectionCode::kInvalidOrderNumber);
      CHECK(rejection.detail ==
            "'" + std::string(number) + "' cannot number an order: URLs drop such a path segment");
      PlaceOrder place = StandardPlacement();
      place.order_number = number;
      CHECK(History().Rejected(place).code == RejectionCode::kInvalidOrderNumber);
    }
    CapturePayment dotted = Capture("txn-1", 14900);
    dotted.order_number = "...";
    CHECK(History().When(dotted).has_value());
    // An order numbered so before the rule keeps its other commands (and reads).
    CHECK(IsValidOrderNumber("."));
  }
  THEN("'.' and '..' are no line ids") {
    for (const char* line_id : {".", ".."}) {
      PlaceOrder place = StandardPlacement();
      place.lines[1].line_id = line_id;
      const Rejection rejection = History::Given({Capture("txn-1", 14900)}).Rejected(place);
      CHECK(rejection.code == RejectionCode::kInvalidText);
      CHECK(rejection.detail ==
            "line_id '" + std::string(line_id) + "' cannot name a line in a URL path");
    }
  }
  THEN("a partner code longer than kPartnerBytesMax is refused with an order number too") {
    PlaceOrder place = StandardPlacement();
    place.order_number = "EDX-100009";
    place.partner = std::string(kPartnerBytesMax + 1, 'p');
    const Rejection rejection = History::Given({Capture("txn-1", 14900)}).Rejected(place);
    CHECK(rejection.code == RejectionCode::kLimitExceeded);
    CHECK(rejection.detail == "partner is 33 bytes, at most 32");
  }
}

SCENARIO("several captures together cover the total", "[placement]") {
  GIVEN("two partial captures in the order's currency and one in another") {
    History history = History::Given(
        {Capture("txn-1", 10000), Capture("txn-2", 4900), Capture("txn-3", 99999, "EUR")});
    WHEN("the order is placed") {
      Decision decision = history.When(StandardPlacement());
      THEN("it is accepted; only the order's currency counts as captured") {
        REQUIRE(decision.has_value());
        CHECK(history.state().amounts.captured_minor == 14900);
        CHECK(CapturedMinor(history.state(), "EUR") == 99999);
      }
    }
  }
}

SCENARIO("captures in a currency the order does not use are money to hand back",
         "[placement][capture]") {
  GIVEN("captures in the order's currency, in EUR twice and in GBP") {
    History history = History::Given({Capture("txn-1", 14900), Capture("txn-2", 500, "EUR"),
                                      Capture("txn-3", 300, "GBP"), Capture("txn-4", 700, "EUR")});
    THEN("before placement no currency is the order's, so none is other") {
      CHECK(CapturedInOtherCurrencies(history.state()).empty());
    }
    WHEN("the order is placed in USD and another EUR capture arrives after") {
      REQUIRE(history.When(StandardPlacement()).has_value());
      REQUIRE(history.When(Capture("txn-5", 1000, "EUR")).has_value());
      THEN("each other currency is summed, in the order first captured, none counted in USD") {
        CHECK(CapturedInOtherCurrencies(history.state()) ==
              std::vector<Money>{{2200, "EUR"}, {300, "GBP"}});
        CHECK(history.state().amounts.captured_minor == 14900);
        CHECK(history.state().amounts.overpaid_minor == 0);
      }
    }
  }
  GIVEN("a damaged state whose EUR captures overflow int64 (TryEvolve never returns one)") {
    OrderState state = PlacedHistory().state();
    state.captures.push_back(
        CaptureRecord{.reference = "a", .amount = {INT64_MAX, "EUR"}, .captured_at_us = 1});
    state.captures.push_back(
        CaptureRecord{.reference = "b", .amount = {INT64_MAX, "EUR"}, .captured_at_us = 1});
    THEN("each sum stays in int64: no crash, and nothing is dropped") {
      CHECK(CapturedInOtherCurrencies(state) ==
            std::vector<Money>{{INT64_MAX, "EUR"}, {INT64_MAX, "EUR"}});
    }
  }
}

SCENARIO("payment must cover the total in the order's currency", "[placement]") {
  WHEN("no payment was captured") {
    History history;
    THEN("payment_missing") {
      CHECK(history.Rejected(StandardPlacement()).code == RejectionCode::kPaymentMissing);
    }
  }
  WHEN("payments were captured in another currency only") {
    History history = History::Given({Capture("txn-1", 14900, "EUR")});
    THEN("currency_mismatch") {
      CHECK(history.Rejected(StandardPlacement()).code == RejectionCode::kCurrencyMismatch);
    }
  }
  WHEN("payments in the currency fall one cent short") {
    History history = History::Given({Capture("txn-1", 14899)});
    THEN("payment_short, saying by how much") {
      Rejection rejection = history.Rejected(StandardPlacement());
      CHECK(rejection.code == RejectionCode::kPaymentShort);
      CHECK(rejection.detail == "captured 148.99 USD, total 149.00 USD");
    }
  }
  WHEN("payments exceed the total") {
    History history = History::Given({Capture("txn-1", 20000)});
    THEN("the order is placed and the overpayment shows") {
      REQUIRE(history.When(StandardPlacement()).has_value());
      CHECK(history.state().amounts.overpaid_minor == 5100);
    }
  }
}

SCENARIO("a free order needs no payment", "[placement]") {
  GIVEN("an empty stream and a basket of a free coupon") {
    History history;
    PlaceOrder place = StandardPlacement();
    place.lines = {testing::MakeLine("1", "Coupon", 1, 0)};
    place.total_minor = 0;
    WHEN("it is placed") {
      Decision decision = history.When(place);
      THEN("it is accepted without any capture") {
        REQUIRE(decision.has_value());
        CHECK(decision->size() == 2);
        CHECK(history.state().captures.empty());
        CHECK(history.state().amounts.due_minor == 0);
      }
    }
  }
}

SCENARIO("the total is the sum of quantity x unit price plus shipping", "[placement]") {
  GIVEN("a basket with quantities and shipping") {
    PlaceOrder place = StandardPlacement();
    place.lines = {testing::MakeLine("1", "Enrollment Code", 3, 4900),
                   testing::MakeLine("2", "Donation", 2, 1050)};
    place.shipping_charge_minor = 500;
    place.total_minor = 3 * 4900 + 2 * 1050 + 500;
    History history = History::Given({Capture("txn-1", place.total_minor)});
    WHEN("the total matches") {
      THEN("it is accepted") { CHECK(history.When(place).has_value()); }
    }
    WHEN("the total is off by one minor unit") {
      place.total_minor += 1;
      THEN("total_mismatch") {
        Rejection rejection = history.Rejected(place);
        CHECK(rejection.code == RejectionCode::kTotalMismatch);
        CHECK(rejection.detail == "total 173.01 USD, lines plus shipping 173.00 USD");
      }
    }
  }
}

SCENARIO("placing an existing order number", "[placement]") {
  GIVEN("a placed order") {
    History history = PlacedHistory();
    const size_t events_before = history.events().size();
    WHEN("the same placement is sent again, later and asking to wait") {
      PlaceOrder again = StandardPlacement();
      again.placed_at_us += 5'000'000;
      again.synchronous = true;
      Decision decision = history.When(again);
      THEN("it is accepted with no new event: the same answer") {
        REQUIRE(decision.has_value());
        CHECK(decision->empty());
        CHECK(history.events().size() == events_before);
      }
    }
    WHEN("a placement with other content uses the number") {
      PlaceOrder other = StandardPlacement();
      other.user.email = "someone.else@example.com";
      Rejection rejection = history.Rejected(other);
      THEN("duplicate_order_attempt, worded as the original did") {
        CHECK(rejection.code == RejectionCode::kDuplicateOrderAttempt);
        CHECK(rejection.detail == "there is already an order with number EDX-100009");
      }
    }
  }
}

SCENARIO("order numbers are generated the original way", "[placement]") {
  CHECK(GenerateOrderNumber("edx", 9).value() == "EDX-100009");
  CHECK(GenerateOrderNumber("MITx", 123456).value() == "MITX-223456");
  CHECK(GenerateOrderNumber("", 9).error().code == RejectionCode::kInvalidOrderNumber);
  CHECK(GenerateOrderNumber("e dx", 9).error().code == RejectionCode::kInvalidOrderNumber);
  CHECK(GenerateOrderNumber("edx", 0).error().code == RejectionCode::kInvalidOrderNumber);
  CHECK(GenerateOrderNumber("edx", -1).error().code == RejectionCode::kInvalidOrderNumber);
  CHECK(GenerateOrderNumber("edx", INT64_MAX).error().code == RejectionCode::kInvalidOrderNumber);
  CHECK(IsValidOrderNumber("EDX-100009"));
  CHECK(IsValidOrderNumber("a.b_c-1"));
  CHECK_FALSE(IsValidOrderNumber(""));
  CHECK_FALSE(IsValidOrderNumber("EDX 1"));
  CHECK_FALSE(IsValidOrderNumber("EDX/1"));
  CHECK_FALSE(IsValidOrderNumber(std::string(65, 'A')));
  CHECK(IsValidOrderNumber(std::string(64, 'A')));
}

SCENARIO("an order's enrollment codes are capped at placement", "[placement]") {
  // A line's codes are one LineFulfilled event and the order's are in its status row: the cap
  // keeps both far inside what the log stores per event.
  GIVEN("an empty stream") {
    History history;
    WHEN("Enrollment Code lines ask for kCodesPerOrderMax codes together") {
      PlaceOrder place = testing::StandardPlacement();
      place.lines = {testing::MakeLine("1", "Enrollment Code", kCodesPerOrderMax / 2, 0),
                     testing::MakeLine("2", "Enrollment Code", kCodesPerOrderMax / 2, 0),
                     testing::MakeLine("3", "Seat", kQuantityMax, 0)};
      place.total_minor = 0;
      THEN("the order is placed (other products' quantities do not count)") {
        REQUIRE(history.When(place).has_value());
      }
    }
    WHEN("they ask for one code more") {
      PlaceOrder place = testing::StandardPlacement();
      place.lines = {testing::MakeLine("1", "Enrollment Code", kCodesPerOrderMax / 2, 0),
                     testing::MakeLine("2", "Enrollment Code", kCodesPerOrderMax / 2 + 1, 0)};
      place.total_minor = 0;
      THEN("limit_exceeded, naming the count") {
        const Rejection rejection = history.Rejected(place);
        CHECK(rejection.code == RejectionCode::kLimitExceeded);
        CHECK(rejection.detail ==
              "the order's Enrollment Code lines ask for 10001 codes, at most "
              "10000");
      }
    }
  }
}

SCENARIO("a command for another order than the stream holds is refused", "[placement]") {
  GIVEN("the stream of EDX-100009") {
    History history = History::Given({Capture("txn-1", 14900)});
    WHEN("a capture for another order is decided against it") {
      CapturePayment other = Capture("txn-9", 100);
      other.order_number = "EDX-100010";
      THEN("stream_mismatch") {
        CHECK(history.Rejected(other).code == RejectionCode::kStreamMismatch);
      }
    }
  }
}

}  // namespace
}  // namespace ledger::domain
