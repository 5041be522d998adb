// Rejections: stable numbers and names, one row per rejection in order of precedence, and
// "stacking" tables that break one more rule per row, each of higher precedence than the rules
// already broken, so that each row's answer proves the precedence.
#include "domain/rejection.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <set>
#include <string>

#include "domain/limits.h"
#include "tests/domain/test_support.h"

namespace ledger::domain {
namespace {

using testing::Capture;
using testing::Failed;
using testing::Fulfilled;
using testing::History;
using testing::PlacedHistory;
using testing::StandardPlacement;

const std::string kNotUtf8 = "\xff";
const std::string kTooLong(kTextBytesMax + 1, 'x');

size_t Precedence(RejectionCode code) {
  const auto codes = AllRejectionCodes();
  return static_cast<size_t>(std::find(codes.begin(), codes.end(), code) - codes.begin());
}

TEST_CASE("rejection codes keep their numbers and names", "[rejection]") {
  // Never renumber: these pairs are part of the API.
  const std::pair<int, std::string_view> expected[] = {
      {1, "invalid_order_number"},
      {2, "missing_field"},
      {3, "invalid_text"},
      {4, "limit_exceeded"},
      {5, "invalid_time"},
      {6, "unknown_currency"},
      {7, "invalid_failure_kind"},
      {8, "capture_not_positive"},
      {9, "empty_basket"},
      {10, "duplicate_line_id"},
      {11, "non_positive_quantity"},
      {12, "negative_amount"},
      {13, "amount_overflow"},
      {14, "total_mismatch"},
      {15, "stream_mismatch"},
      {16, "capture_reference_reused"},
      {17, "duplicate_order_attempt"},
      {18, "payment_missing"},
      {19, "currency_mismatch"},
      {20, "payment_short"},
      {21, "order_not_found"},
      {22, "unknown_line"},
      {23, "line_already_complete"},
      {24, "line_revoked"},
      {25, "line_not_fulfilled"},
      {26, "nothing_to_fulfill"},
      {27, "line_not_fulfillable"},
      {28, "revocation_pending"},
  };
  REQUIRE(AllRejectionCodes().size() == std::size(expected));
  std::set<std::string_view> messages;
  for (size_t i = 0; i < std::size(expected); ++i) {
    const RejectionCode code = AllRejectionCodes()[i];
    CHECK(static_cast<int>(code) == expected[i].first);
    CHECK(RejectionName(code) == expected[i].second);
    messages.insert(RejectionMessage(code));
  }
  CHECK(messages.size() == std::size(expected));  // Every message says something different.
  CHECK(Rejection{RejectionCode::kPaymentShort, "captured 1.00 USD"}.ToString() ==
        "payment_short (20): captured payments do not cover the order total: captured 1.00 USD");
}

struct RejectionRow {
  RejectionCode expected;
  std::string_view name;
  std::function<Rejection()> run;
};

// One row per rejection, in order of precedence: each breaks that one rule.
TEST_CASE("rejection table, in order of precedence", "[rejection]") {
  const RejectionRow rows[] = {
      {RejectionCode::kInvalidOrderNumber, "order number with a space",
       [] {
         PlaceOrder place = StandardPlacement();
         place.order_number = "EDX 1";
         return History().Rejected(place);
       }},
      {RejectionCode::kMissingField, "capture without a reference",
       [] { return History().Rejected(Capture("", 100)); }},
      {RejectionCode::kInvalidText, "username not UTF-8",
       [] {
         PlaceOrder place = StandardPlacement();
         place.user.username = kNotUtf8;
         return History().Rejected(place);
       }},
      {RejectionCode::kLimitExceeded, "more lines than kLinesMax",
       [] {
         PlaceOrder place = StandardPlacement();
         place.lines.clear();
         for (size_t i = 0; i <= kLinesMax; ++i) {
           place.lines.push_back(testing::MakeLine(std::to_string(i), "Donation", 1, 0));
         }
         place.total_minor = 0;
         return History().Rejected(place);
       }},
      {RejectionCode::kInvalidTime, "capture before 1970",
       [] {
         CapturePayment capture = Capture("txn-1", 100);
         capture.captured_at_us = -1;
         return History().Rejected(capture);
       }},
      {RejectionCode::kUnknownCurrency, "capture in XYZ",
       [] { return History().Rejected(Capture("txn-1", 100, "XYZ")); }},
      {RejectionCode::kInvalidFailureKind, "failure kind 9",
       [] { return PlacedHistory().Rejected(Failed("1", static_cast<FailureKind>(9))); }},
      {RejectionCode::kCaptureNotPositive, "capture of zero",
       [] { return History().Rejected(Capture("txn-1", 0)); }},
      {RejectionCode::kEmptyBasket, "no lines",
       [] {
         PlaceOrder place = StandardPlacement();
         place.lines.clear();
         place.total_minor = 0;
         return History().Rejected(place);
       }},
      {RejectionCode::kDuplicateLineId, "two lines with id 1",
       [] {
         PlaceOrder place = StandardPlacement();
         place.lines[1].line_id = "1";
         return History::Given({Capture("txn-1", 14900)}).Rejected(place);
       }},
      {RejectionCode::kNonPositiveQuantity, "quantity 0",
       [] {
         PlaceOrder place = StandardPlacement();
         place.lines[0].quantity = 0;
         place.total_minor = 10000;
         return History::Given({Capture("txn-1", 14900)}).Rejected(place);
       }},
      {RejectionCode::kNegativeAmount, "negative unit price",
       [] {
         PlaceOrder place = StandardPlacement();
         place.lines[0].unit_price_minor = -4900;
         place.total_minor = 5100;
         return History::Given({Capture("txn-1", 14900)}).Rejected(place);
       }},
      {RejectionCode::kAmountOverflow, "quantity x unit price beyond kAmountMinorMax",
       [] {
         PlaceOrder place = StandardPlacement();
         place.lines[0].quantity = kQuantityMax;
         place.lines[0].unit_price_minor = kAmountMinorMax;
         return History().Rejected(place);
       }},
      {RejectionCode::kTotalMismatch, "total one cent short of the lines",
       [] {
         PlaceOrder place = StandardPlacement();
         place.total_minor -= 1;
         return History::Given({Capture("txn-1", 14900)}).Rejected(place);
       }},
      {RejectionCode::kStreamMismatch, "command for another order",
       [] {
         PlaceOrder place = StandardPlacement();
         place.order_number = "EDX-100010";
         return History::Given({Capture("txn-1", 14900)}).Rejected(place);
       }},
      {RejectionCode::kCaptureReferenceReused, "same reference, other amount",
       [] { return History::Given({Capture("txn-1", 14900)}).Rejected(Capture("txn-1", 1)); }},
      {RejectionCode::kDuplicateOrderAttempt, "same number, other basket",
       [] {
         PlaceOrder place = StandardPlacement();
         place.lines[0].title = "Another course";
         return PlacedHistory().Rejected(place);
       }},
      {RejectionCode::kPaymentMissing, "no capture",
       [] { return History().Rejected(StandardPlacement()); }},
      {RejectionCode::kCurrencyMismatch, "captured in EUR, ordered in USD",
       [] {
         return History::Given({Capture("txn-1", 14900, "EUR")}).Rejected(StandardPlacement());
       }},
      {RejectionCode::kPaymentShort, "captured 100.00 of 149.00",
       [] { return History::Given({Capture("txn-1", 10000)}).Rejected(StandardPlacement()); }},
      {RejectionCode::kOrderNotFound, "fulfilling a line of an order never placed",
       [] { return History().Rejected(Fulfilled("1")); }},
      {RejectionCode::kUnknownLine, "fulfilling line 9",
       [] { return PlacedHistory().Rejected(Fulfilled("9")); }},
      {RejectionCode::kLineAlreadyComplete, "failing a Complete line",
       [] {
         History history = PlacedHistory();
         REQUIRE(history.When(Fulfilled("1")).has_value());
         return history.Rejected(Failed("1", FailureKind::kServer));
       }},
      {RejectionCode::kLineRevoked, "fulfilling a Revoked line",
       [] {
         History history = PlacedHistory();
         REQUIRE(history.When(Fulfilled("1")).has_value());
         REQUIRE(history.When(testing::Revoked("1")).has_value());
         return history.Rejected(Failed("1", FailureKind::kServer));
       }},
      {RejectionCode::kLineNotFulfilled, "revoking an Open line",
       [] { return PlacedHistory().Rejected(testing::Revoked("1")); }},
      {RejectionCode::kNothingToFulfill, "retrying a Complete order",
       [] {
         History history = PlacedHistory();
         REQUIRE(history.When(Fulfilled("1")).has_value());
         REQUIRE(history.When(Fulfilled("2")).has_value());
         return history.Rejected(testing::Retry());
       }},
      {RejectionCode::kLineNotFulfillable, "retrying a Complete line by name",
       [] {
         History history = PlacedHistory();
         REQUIRE(history.When(Fulfilled("1")).has_value());
         return history.Rejected(testing::Retry({"1"}));
       }},
      {RejectionCode::kRevocationPending, "another refund while a revocation is pending",
       [] {
         History history = PlacedHistory();
         REQUIRE(history.When(Fulfilled("1")).has_value());
         REQUIRE(history.When(testing::RevocationRequest("1")).has_value());
         RequestRevocation other = testing::RevocationRequest("1");
         other.refund_reference = "refund-2";
         return history.Rejected(other);
       }},
  };
  std::set<RejectionCode> covered;
  for (size_t i = 0; i < std::size(rows); ++i) {
    const RejectionRow& row = rows[i];
    INFO(RejectionName(row.expected) << ": " << row.name);
    if (i > 0) CHECK(Precedence(rows[i - 1].expected) < Precedence(row.expected));
    const Rejection rejection = row.run();
    CHECK(RejectionName(rejection.code) == RejectionName(row.expected));
    // Every rejection but the empty basket says what exactly was wrong.
    if (row.expected != RejectionCode::kEmptyBasket) CHECK_FALSE(rejection.detail.empty());
    covered.insert(rejection.code);
  }
  CHECK(covered.size() == AllRejectionCodes().size());
}

// A stacking table: `history` and `command` accumulate the breakages of every row so far, and
// each row's rule outranks all of them.
template <typename C>
struct Stack {
  RejectionCode expected;
  std::string_view name;
  std::function<void(History&, C&)> also_break;
};

template <typename C>
void RunStack(History history, C command, const std::vector<Stack<C>>& rows) {
  // A kLimitExceeded in the first row is the state's limit, which comes after every other rule.
  auto rank = [&rows](size_t i) {
    const bool state_limit = i == 0 && rows[0].expected == RejectionCode::kLimitExceeded;
    return state_limit ? AllRejectionCodes().size() : Precedence(rows[i].expected);
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    const Stack<C>& row = rows[i];
    row.also_break(history, command);
    INFO("row " << i << ", " << RejectionName(row.expected) << ": " << row.name);
    if (i > 0) CHECK(rank(i - 1) > rank(i));
    CHECK(RejectionName(history.Rejected(command).code) == RejectionName(row.expected));
  }
}

TEST_CASE("placement precedence: each rule outranks the ones below it", "[rejection]") {
  using S = Stack<PlaceOrder>;
  RunStack<PlaceOrder>(
      History::Given({Capture("txn-1", 100)}), StandardPlacement(),
      {
          S{RejectionCode::kPaymentShort, "captured 1.00 of 149.00", [](History&, PlaceOrder&) {}},
          S{RejectionCode::kStreamMismatch, "the stream holds another order",
            [](History& h, PlaceOrder&) {
              CapturePayment capture = Capture("txn-1", 100);
              capture.order_number = "OTHER-1";
              h = History::Given({capture});
            }},
          S{RejectionCode::kTotalMismatch, "total + 1",
            [](History&, PlaceOrder& p) { p.total_minor += 1; }},
          S{RejectionCode::kAmountOverflow, "a unit price beyond kAmountMinorMax",
            [](History&, PlaceOrder& p) { p.lines[1].unit_price_minor = kAmountMinorMax + 1; }},
          S{RejectionCode::kNegativeAmount, "shipping -1",
            [](History&, PlaceOrder& p) { p.shipping_charge_minor = -1; }},
          S{RejectionCode::kNonPositiveQuantity, "quantity -1",
            [](History&, PlaceOrder& p) { p.lines[1].quantity = -1; }},
          S{RejectionCode::kDuplicateLineId, "line 2 named 1",
            [](History&, PlaceOrder& p) { p.lines[1].line_id = "1"; }},
          S{RejectionCode::kEmptyBasket, "no lines",
            [](History&, PlaceOrder& p) { p.lines.clear(); }},
          S{RejectionCode::kUnknownCurrency, "XYZ",
            [](History&, PlaceOrder& p) { p.currency = "XYZ"; }},
          S{RejectionCode::kInvalidTime, "placed before 1970",
            [](History&, PlaceOrder& p) { p.placed_at_us = -1; }},
          S{RejectionCode::kLimitExceeded, "shipping method too long",
            [](History&, PlaceOrder& p) { p.shipping_method = kTooLong; }},
          S{RejectionCode::kInvalidText, "email not UTF-8",
            [](History&, PlaceOrder& p) { p.user.email = kNotUtf8; }},
          S{RejectionCode::kMissingField, "no username",
            [](History&, PlaceOrder& p) { p.user.username.clear(); }},
          S{RejectionCode::kInvalidOrderNumber, "no number, no basket id",
            [](History&, PlaceOrder& p) { p.basket_id = 0; }},
      });
}

TEST_CASE("capture precedence: each rule outranks the ones below it", "[rejection]") {
  std::vector<Command> full;
  for (size_t i = 0; i < kCapturesMax; ++i) full.push_back(Capture("txn-" + std::to_string(i), 1));
  using S = Stack<CapturePayment>;
  RunStack<CapturePayment>(
      History::Given(full), Capture("txn-new", 100),
      {
          S{RejectionCode::kLimitExceeded, "the order holds kCapturesMax captures",
            [](History&, CapturePayment&) {}},
          S{RejectionCode::kCaptureReferenceReused, "txn-0 with another amount",
            [](History&, CapturePayment& c) { c.reference = "txn-0"; }},
          S{RejectionCode::kStreamMismatch, "another order",
            [](History&, CapturePayment& c) { c.order_number = "OTHER-1"; }},
          S{RejectionCode::kAmountOverflow, "beyond kAmountMinorMax",
            [](History&, CapturePayment& c) { c.amount.minor_units = kAmountMinorMax + 1; }},
          S{RejectionCode::kCaptureNotPositive, "negative",
            [](History&, CapturePayment& c) { c.amount.minor_units = -5; }},
          S{RejectionCode::kUnknownCurrency, "XYZ",
            [](History&, CapturePayment& c) { c.amount.currency = "XYZ"; }},
          S{RejectionCode::kInvalidTime, "beyond kTimeUsMax",
            [](History&, CapturePayment& c) { c.captured_at_us = kTimeUsMax + 1; }},
          S{RejectionCode::kLimitExceeded, "card type too long",
            [](History&, CapturePayment& c) { c.card_type = kTooLong; }},
          S{RejectionCode::kInvalidText, "last digits not UTF-8",
            [](History&, CapturePayment& c) { c.card_last_digits = kNotUtf8; }},
          S{RejectionCode::kMissingField, "no processor",
            [](History&, CapturePayment& c) { c.processor.clear(); }},
          S{RejectionCode::kInvalidOrderNumber, "empty order number",
            [](History&, CapturePayment& c) { c.order_number.clear(); }},
      });
}

TEST_CASE("line command precedence: each rule outranks the ones below it", "[rejection]") {
  History complete = PlacedHistory();
  REQUIRE(complete.When(Fulfilled("1")).has_value());
  using S = Stack<RecordFulfillmentFailed>;
  RunStack<RecordFulfillmentFailed>(
      complete, Failed("1", FailureKind::kServer),
      {
          S{RejectionCode::kLineAlreadyComplete, "line 1 is Complete",
            [](History&, RecordFulfillmentFailed&) {}},
          S{RejectionCode::kUnknownLine, "line 9",
            [](History&, RecordFulfillmentFailed& c) { c.line_id = "9"; }},
          S{RejectionCode::kOrderNotFound, "a stream with a capture only",
            [](History& h, RecordFulfillmentFailed&) {
              h = History::Given({Capture("txn-1", 14900)});
            }},
          S{RejectionCode::kStreamMismatch, "another order",
            [](History&, RecordFulfillmentFailed& c) { c.order_number = "OTHER-1"; }},
          S{RejectionCode::kInvalidFailureKind, "kind 77",
            [](History&, RecordFulfillmentFailed& c) { c.kind = static_cast<FailureKind>(77); }},
          S{RejectionCode::kInvalidTime, "negative time",
            [](History&, RecordFulfillmentFailed& c) { c.failed_at_us = -1; }},
          S{RejectionCode::kLimitExceeded, "message too long",
            [](History&, RecordFulfillmentFailed& c) { c.message = kTooLong; }},
          S{RejectionCode::kInvalidText, "module not UTF-8",
            [](History&, RecordFulfillmentFailed& c) { c.module = kNotUtf8; }},
          S{RejectionCode::kMissingField, "no line id",
            [](History&, RecordFulfillmentFailed& c) { c.line_id.clear(); }},
          S{RejectionCode::kInvalidOrderNumber, "order number with a slash",
            [](History&, RecordFulfillmentFailed& c) { c.order_number = "EDX/1"; }},
      });
}

TEST_CASE("the state's own limits: captures and attempts", "[rejection]") {
  GIVEN("a line that failed kAttemptsMax times") {
    History history = PlacedHistory();
    for (uint32_t i = 0; i < kAttemptsMax; ++i) {
      REQUIRE(history.When(Failed("1", FailureKind::kNetwork)).has_value());
    }
    THEN("a further failure exceeds the limit, but success is still recorded") {
      CHECK(history.Rejected(Failed("1", FailureKind::kNetwork)).code ==
            RejectionCode::kLimitExceeded);
      Decision decision = history.When(Fulfilled("1"));
      CHECK(testing::Only<LineFulfilled>(decision).attempt == kAttemptsMax + 1);
    }
  }
}

}  // namespace
}  // namespace ledger::domain

namespace ledger::domain {
namespace {

// Identifiers (the required texts: ids, types, names, references) hold no control character;
// free text (a title, a message) may.
TEST_CASE("an identifier with a control character is invalid text; free text may hold one",
          "[rejection]") {
  using testing::History;
  using testing::StandardPlacement;
  const std::string nul(
      "L\0"
      "1",
      3);
  // C0, DEL, then C1 (NEL), the line separator, a right-to-left override and a first-strong
  // isolate: each prints otherwise than it reads.
  for (const std::string& bad :
       {nul, std::string("ada\n"), std::string("a\tb"), std::string("x\x1b[31m"),
        std::string("del\x7f"), std::string("nel\xc2\x85"), std::string("ls\xe2\x80\xa8"),
        std::string("admin\xe2\x80\xae"), std::string("\xe2\x81\xa8x")}) {
    INFO(bad);
    PlaceOrder username = StandardPlacement();
    username.user.username = bad;
    const Rejection rejected = History().Rejected(username);
    CHECK(rejected.code == RejectionCode::kInvalidText);
    CHECK(rejected.detail == "user.username holds a control character");

    PlaceOrder line_id = StandardPlacement();
    line_id.lines.at(0).line_id = bad;
    CHECK(History().Rejected(line_id).code == RejectionCode::kInvalidText);

    PlaceOrder attribute = StandardPlacement();
    attribute.lines.at(0).attributes.push_back({.name = bad, .value = "v"});
    CHECK(History().Rejected(attribute).code == RejectionCode::kInvalidText);

    CHECK(History().Rejected(testing::Capture(bad, 100)).code == RejectionCode::kInvalidText);

    // A refund reference is optional but an identifier all the same.
    History complete = History::Given(
        {testing::Capture("txn-1", 14900), StandardPlacement(), testing::Fulfilled("1")});
    RequestRevocation revocation = testing::RevocationRequest("1");
    revocation.refund_reference = bad;
    const Rejection reference = complete.Rejected(revocation);
    CHECK(reference.code == RejectionCode::kInvalidText);
    CHECK(reference.detail == "refund_reference holds a control character");
  }
  PlaceOrder free_text = StandardPlacement();
  free_text.lines.at(0).title = "Seat\nsecond line\tand a tab";
  free_text.billing_address.line2 = "Flat 2\n";
  // Other characters beyond ASCII are names like any other (é, a non-breaking space, U+2027).
  free_text.user.username = "jos\xc3\xa9\xc2\xa0\xe2\x80\xa7";
  History::Given({testing::Capture("txn-1", 14900), free_text});
}

}  // namespace
}  // namespace ledger::domain
