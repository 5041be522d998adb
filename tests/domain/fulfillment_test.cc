// Line fulfillment, failures, automatic retry schedule and manual retries, as Given / When /
// Then.
#include <catch2/catch.hpp>

#include "domain/decide.h"
#include "domain/limits.h"
#include "tests/domain/test_support.h"

namespace ledger::domain {
namespace {

using testing::Failed;
using testing::Fulfilled;
using testing::History;
using testing::Only;
using testing::PlacedHistory;
using testing::Retry;

constexpr int64_t kSecondUs = 1'000'000;

SCENARIO("fulfilling every line completes the order", "[fulfillment]") {
  GIVEN("a placed order of two lines") {
    History history = PlacedHistory();
    WHEN("the first line is fulfilled") {
      RecordLineFulfilled command = Fulfilled("2");
      command.external_reference = "entitlement-uuid-1";
      Decision decision = history.When(command);
      THEN("the line is Complete after its first attempt and the order is still Open") {
        const auto& fulfilled = Only<LineFulfilled>(decision);
        CHECK(fulfilled.attempt == 1);
        CHECK(fulfilled.module == "EnrollmentFulfillmentModule");
        CHECK(fulfilled.fulfilled_at_us == command.fulfilled_at_us);
        CHECK(history.line("2").status == LineStatus::kComplete);
        CHECK(history.line("2").attempts == 1);
        CHECK(history.line("2").external_reference == "entitlement-uuid-1");
        CHECK(history.state().status == OrderStatus::kOpen);
        CHECK(FulfillableLines(history.state()) == std::vector<std::string>{"1"});
      }
      AND_WHEN("the second line is fulfilled") {
        REQUIRE(history.When(Fulfilled("1")).has_value());
        THEN("the order is Complete and nothing is fulfillable") {
          CHECK(history.state().status == OrderStatus::kComplete);
          CHECK(FulfillableLines(history.state()).empty());
        }
      }
    }
  }
}

SCENARIO("a completed line is never fulfilled again", "[fulfillment]") {
  GIVEN("a Complete line with its entitlement") {
    RecordLineFulfilled first = Fulfilled("2");
    first.external_reference = "entitlement-uuid-1";
    History history =
        History::Given({testing::Capture("txn-1", 14900), testing::StandardPlacement(), first});
    WHEN("it is reported fulfilled again, with another entitlement") {
      RecordLineFulfilled second = Fulfilled("2");
      second.external_reference = "entitlement-uuid-2";
      Decision decision = history.When(second);
      THEN("it is a no-op: no event, the first entitlement stays") {
        REQUIRE(decision.has_value());
        CHECK(decision->empty());
        CHECK(history.line("2").external_reference == "entitlement-uuid-1");
        CHECK(history.line("2").attempts == 1);
      }
    }
    WHEN("a failure is reported for it") {
      Rejection rejection = history.Rejected(Failed("2", FailureKind::kServer));
      THEN("line_already_complete: the original raised an invalid transition here") {
        CHECK(rejection.code == RejectionCode::kLineAlreadyComplete);
        CHECK(rejection.detail == "line 2 is Complete");
      }
    }
    WHEN("a retry names it") {
      THEN("line_not_fulfillable") {
        CHECK(history.Rejected(Retry({"2"})).code == RejectionCode::kLineNotFulfillable);
      }
    }
  }
}

SCENARIO("each failure kind leaves the line in the original's error status", "[fulfillment]") {
  struct Case {
    FailureKind kind;
    LineStatus status;
    std::string_view name;
  };
  const Case cases[] = {
      {FailureKind::kConfiguration, LineStatus::kFulfillmentConfigurationError,
       "Fulfillment Configuration Error"},
      {FailureKind::kNetwork, LineStatus::kFulfillmentNetworkError, "Fulfillment Network Error"},
      {FailureKind::kTimeout, LineStatus::kFulfillmentTimeoutError, "Fulfillment Timeout Error"},
      {FailureKind::kServer, LineStatus::kFulfillmentServerError, "Fulfillment Server Error"},
      {FailureKind::kUnknown, LineStatus::kFulfillmentServerError, "Fulfillment Server Error"},
  };
  for (const Case& c : cases) {
    GIVEN("a placed order, failing with " << FailureKindName(c.kind)) {
      History history = PlacedHistory();
      RecordFulfillmentFailed command = Failed("1", c.kind);
      command.message = "HTTP 500 from the LMS";
      Decision decision = history.When(command);
      THEN("the line carries the error, its kind and message; the order is in error") {
        const auto& failed = Only<FulfillmentFailed>(decision);
        CHECK(failed.attempt == 1);
        CHECK(failed.kind == c.kind);
        CHECK(failed.failed_at_us == command.failed_at_us);
        const LineState& line = history.line("1");
        CHECK(line.status == c.status);
        CHECK(LineStatusName(line.status) == c.name);
        CHECK(line.last_error_kind == c.kind);
        CHECK(line.last_error_message == "HTTP 500 from the LMS");
        CHECK(line.attempts == 1);
        CHECK(history.state().status == OrderStatus::kFulfillmentError);
      }
    }
  }
}

SCENARIO("retryable failures schedule automatic retries with the original's backoff",
         "[fulfillment]") {
  GIVEN("a placed order") {
    History history = PlacedHistory();
    WHEN("a line fails retryably, again and again") {
      THEN("retry n waits 2^(n-1) seconds, 11 times, then a human must retry") {
        for (uint32_t attempt = 1; attempt <= kAutomaticRetriesMax + 2; ++attempt) {
          if (attempt > 1) REQUIRE(history.When(testing::AutomaticRetry({"1"})).has_value());
          RecordFulfillmentFailed command = Failed("1", FailureKind::kTimeout);
          command.failed_at_us = testing::kT0Us + attempt * 10'000 * kSecondUs;
          Decision decision = history.When(command);
          const auto& failed = Only<FulfillmentFailed>(decision);
          INFO("attempt " << attempt);
          CHECK(failed.attempt == attempt);
          const int64_t expected_next_us =
              attempt <= kAutomaticRetriesMax
                  ? command.failed_at_us + (int64_t{1} << (attempt - 1)) * kSecondUs
                  : 0;
          CHECK(failed.next_retry_at_us == expected_next_us);
          CHECK(history.line("1").next_retry_at_us == expected_next_us);
          CHECK(history.line("1").attempts == attempt);
        }
        CHECK(history.line("1").status == LineStatus::kFulfillmentTimeoutError);
      }
    }
    WHEN("a line fails without being retryable") {
      Decision decision = history.When(Failed("1", FailureKind::kConfiguration, false));
      THEN("no automatic retry is scheduled") {
        CHECK(Only<FulfillmentFailed>(decision).next_retry_at_us == 0);
        CHECK(LinesDueForRetry(history.state(), INT64_MAX).empty());
      }
    }
  }
  CHECK(NextRetryAtUs(1, true, 0) == kSecondUs);
  CHECK(NextRetryAtUs(11, true, 0) == 1024 * kSecondUs);
  CHECK(NextRetryAtUs(12, true, 0) == 0);
  CHECK(NextRetryAtUs(1, false, 0) == 0);
}

TEST_CASE("a configured retry schedule sets the retry times, capped and never overflowing",
          "[fulfillment]") {
  const RetrySchedule fast{
      .first_delay_us = 100'000, .multiplier = 3, .retries_max = 4, .delay_max_us = 1'000'000};
  CHECK(NextRetryAtUs(1, true, 5, fast) == 5 + 100'000);
  CHECK(NextRetryAtUs(2, true, 5, fast) == 5 + 300'000);
  CHECK(NextRetryAtUs(3, true, 5, fast) == 5 + 900'000);
  CHECK(NextRetryAtUs(4, true, 5, fast) == 5 + 1'000'000);  // Capped.
  CHECK(NextRetryAtUs(5, true, 5, fast) == 0);              // No fifth retry.
  const RetrySchedule huge{.first_delay_us = INT64_MAX,
                           .multiplier = INT64_MAX,
                           .retries_max = 1000,
                           .delay_max_us = INT64_MAX};
  CHECK(NextRetryAtUs(999, true, kTimeUsMax - 1, huge) == kTimeUsMax);
  const RetrySchedule nonsense{
      .first_delay_us = -7, .multiplier = -2, .retries_max = 3, .delay_max_us = -1};
  CHECK(NextRetryAtUs(2, true, 10, nonsense) == 10);
}

SCENARIO("manual retries neither use up nor advance the automatic retry budget", "[fulfillment]") {
  GIVEN("a line that failed once, with a budget of two automatic retries") {
    const RetrySchedule budget{.first_delay_us = kSecondUs,
                               .multiplier = 2,
                               .retries_max = 2,
                               .delay_max_us = 60 * kSecondUs};
    auto fail = [&budget] {
      RecordFulfillmentFailed command = Failed("1", FailureKind::kServer);
      command.retry = budget;
      return command;
    };
    History history = PlacedHistory();
    REQUIRE(history.When(fail()).has_value());
    REQUIRE(history.line("1").next_retry_at_us == kT0Us + 3 * kSecondUs);
    WHEN("ops retry it by hand three times and each attempt fails") {
      for (int i = 0; i < 3; ++i) {
        REQUIRE(history.When(Retry({"1"})).has_value());
        REQUIRE(history.When(fail()).has_value());
      }
      THEN("the first automatic retry is still scheduled, after the first delay") {
        CHECK(history.line("1").attempts == 4);
        CHECK(history.line("1").automatic_retries == 0);
        CHECK(history.line("1").next_retry_at_us == kT0Us + 3 * kSecondUs);
      }
      AND_WHEN("the automatic retries run and fail") {
        REQUIRE(history.When(testing::AutomaticRetry({"1"})).has_value());
        REQUIRE(history.When(fail()).has_value());
        THEN("the second waits twice as long") {
          CHECK(history.line("1").automatic_retries == 1);
          CHECK(history.line("1").next_retry_at_us == kT0Us + 4 * kSecondUs);
        }
        REQUIRE(history.When(testing::AutomaticRetry({"1"})).has_value());
        Decision last = history.When(fail());
        THEN("after the second, the line waits for a human, and a manual retry does not renew it") {
          CHECK(Only<FulfillmentFailed>(last).attempt == 6);
          CHECK(history.line("1").next_retry_at_us == 0);
          REQUIRE(history.When(Retry({"1"})).has_value());
          CHECK(Only<FulfillmentFailed>(history.When(fail())).next_retry_at_us == 0);
        }
      }
    }
  }
}

SCENARIO("lines due for retry are the failed ones whose time has come", "[fulfillment]") {
  GIVEN("line 1 failed retryably at T, line 2 Complete") {
    History history =
        History::Given({testing::Capture("txn-1", 14900), testing::StandardPlacement(),
                        Failed("1", FailureKind::kNetwork), Fulfilled("2")});
    const int64_t due_at_us = history.line("1").next_retry_at_us;
    REQUIRE(due_at_us == testing::kT0Us + 3 * kSecondUs);
    THEN("nothing is due before the retry time; line 1 is due from then") {
      CHECK(LinesDueForRetry(history.state(), due_at_us - 1).empty());
      CHECK(LinesDueForRetry(history.state(), due_at_us) == std::vector<std::string>{"1"});
    }
    WHEN("the automatic retry is requested") {
      RequestFulfillmentRetry retry = Retry({"1"});
      retry.automatic = true;
      retry.requested_by = "process-manager";
      Decision decision = history.When(retry);
      THEN("the line is marked for retry and no longer due") {
        CHECK(Only<FulfillmentRetryRequested>(decision).automatic);
        CHECK(history.line("1").retry_requested);
        CHECK(history.line("1").next_retry_at_us == 0);
        CHECK(LinesDueForRetry(history.state(), INT64_MAX).empty());
        CHECK(history.state().retry_requests == 1);
      }
    }
  }
}

SCENARIO("an error line may fail differently, then complete", "[fulfillment]") {
  GIVEN("a line in Fulfillment Network Error") {
    History history =
        History::Given({testing::Capture("txn-1", 14900), testing::StandardPlacement(),
                        Failed("1", FailureKind::kNetwork)});
    WHEN("the next attempt times out") {
      REQUIRE(history.When(Failed("1", FailureKind::kTimeout)).has_value());
      THEN("the line moves to the other error, attempt 2") {
        CHECK(history.line("1").status == LineStatus::kFulfillmentTimeoutError);
        CHECK(history.line("1").attempts == 2);
      }
    }
    WHEN("the next attempt fails the same way") {
      Decision decision = history.When(Failed("1", FailureKind::kNetwork));
      THEN("it is not an error: the attempt is recorded, the status stays") {
        CHECK(Only<FulfillmentFailed>(decision).attempt == 2);
        CHECK(history.line("1").status == LineStatus::kFulfillmentNetworkError);
      }
    }
    WHEN("the next attempt succeeds") {
      Decision decision = history.When(Fulfilled("1"));
      THEN("the line is Complete at attempt 2, the error kept for support, the retry cleared") {
        CHECK(Only<LineFulfilled>(decision).attempt == 2);
        CHECK(history.line("1").status == LineStatus::kComplete);
        CHECK(history.line("1").last_error_kind == FailureKind::kNetwork);
        CHECK(history.line("1").next_retry_at_us == 0);
        // No line in error, line 2 never attempted: Fulfillment Error -> Open.
        CHECK(history.state().status == OrderStatus::kOpen);
      }
      AND_WHEN("line 2 is fulfilled too") {
        REQUIRE(history.When(Fulfilled("2")).has_value());
        THEN("the order, Open again since line 1 recovered, is Complete") {
          CHECK(history.state().status == OrderStatus::kComplete);
        }
      }
    }
  }
}

SCENARIO("a retry of a partly fulfilled order touches only failed lines", "[fulfillment]") {
  GIVEN("line 1 failed and line 2 Complete (the original could not retry this at all)") {
    History history =
        History::Given({testing::Capture("txn-1", 14900), testing::StandardPlacement(),
                        Failed("1", FailureKind::kServer), Fulfilled("2")});
    WHEN("staff retries without naming lines") {
      Decision decision = history.When(Retry());
      THEN("only the failed line is retried") {
        const auto& retry = Only<FulfillmentRetryRequested>(decision);
        CHECK(retry.line_ids == std::vector<std::string>{"1"});
        CHECK(retry.requested_by == "staff");
        CHECK(retry.reason == "LMS is back");
        CHECK_FALSE(retry.automatic);
        CHECK(history.line("1").retry_requested);
        CHECK_FALSE(history.line("2").retry_requested);
      }
    }
    WHEN("the failed line is fulfilled") {
      REQUIRE(history.When(Fulfilled("1")).has_value());
      THEN("Fulfillment Error -> Complete") {
        CHECK(history.state().status == OrderStatus::kComplete);
      }
    }
    WHEN("staff names the failed line twice") {
      Decision decision = history.When(Retry({"1", "1"}));
      THEN("it is retried once") {
        CHECK(Only<FulfillmentRetryRequested>(decision).line_ids == std::vector<std::string>{"1"});
      }
    }
    WHEN("staff names a line the order does not have") {
      THEN("unknown_line") {
        CHECK(history.Rejected(Retry({"9"})).code == RejectionCode::kUnknownLine);
      }
    }
  }
  GIVEN("a Complete order") {
    History history =
        History::Given({testing::Capture("txn-1", 14900), testing::StandardPlacement(),
                        Fulfilled("1"), Fulfilled("2")});
    WHEN("a retry of all lines is requested") {
      Rejection rejection = history.Rejected(Retry());
      THEN("nothing_to_fulfill (the original's 406)") {
        CHECK(rejection.code == RejectionCode::kNothingToFulfill);
        CHECK(rejection.detail == "order EDX-100009 is Complete");
      }
    }
  }
}

SCENARIO("fulfillment commands need a placed order and a known line", "[fulfillment]") {
  GIVEN("a capture but no order") {
    History history = History::Given({testing::Capture("txn-1", 14900)});
    THEN("order_not_found for every line command") {
      CHECK(history.Rejected(Fulfilled("1")).code == RejectionCode::kOrderNotFound);
      CHECK(history.Rejected(Failed("1", FailureKind::kServer)).code ==
            RejectionCode::kOrderNotFound);
      CHECK(history.Rejected(Retry()).code == RejectionCode::kOrderNotFound);
      CHECK(history.Rejected(testing::Revoked("1")).code == RejectionCode::kOrderNotFound);
    }
  }
  GIVEN("a placed order") {
    History history = PlacedHistory();
    THEN("unknown_line for a line it does not have") {
      CHECK(history.Rejected(Fulfilled("9")).code == RejectionCode::kUnknownLine);
      CHECK(history.Rejected(Failed("9", FailureKind::kServer)).code ==
            RejectionCode::kUnknownLine);
    }
  }
}

}  // namespace
}  // namespace ledger::domain
