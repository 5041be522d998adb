// Revocation of fulfilled lines after a refund, as Given / When / Then.
#include <catch2/catch.hpp>

#include "domain/decide.h"
#include "tests/domain/test_support.h"

namespace ledger::domain {
namespace {

using testing::Failed;
using testing::Fulfilled;
using testing::History;
using testing::Only;
using testing::RevocationFailedCommand;
using testing::Revoked;

constexpr int64_t kSecondUs = 1'000'000;

History CompleteHistory() {
  return History::Given({testing::Capture("txn-1", 14900), testing::StandardPlacement(),
                         Fulfilled("1"), Fulfilled("2")});
}

SCENARIO("revoking every line refunds the order", "[revocation]") {
  GIVEN("a Complete order") {
    History history = CompleteHistory();
    WHEN("line 1 is revoked") {
      Decision decision = history.When(Revoked("1"));
      THEN("the line is Revoked, its price refunded, the order still Complete") {
        const auto& revoked = Only<LineRevoked>(decision);
        CHECK(revoked.refund_reference == "refund-1");
        CHECK(revoked.revoked_at_us == testing::kT0Us + 4'000'000);
        CHECK(history.line("1").status == LineStatus::kRevoked);
        CHECK(history.line("1").refund_reference == "refund-1");
        CHECK(history.state().amounts.refunded_minor == 4900);
        CHECK(history.state().status == OrderStatus::kComplete);
      }
      AND_WHEN("line 2 is revoked too") {
        REQUIRE(history.When(Revoked("2")).has_value());
        THEN("the order is Refunded, all of it") {
          CHECK(history.state().status == OrderStatus::kRefunded);
          CHECK(history.state().amounts.refunded_minor == 14900);
          CHECK(FulfillableLines(history.state()).empty());
        }
      }
    }
  }
}

SCENARIO("a revoked line is never revoked twice", "[revocation]") {
  GIVEN("a Revoked line") {
    History history = CompleteHistory();
    REQUIRE(history.When(Revoked("1")).has_value());
    WHEN("it is revoked again (a re-approved refund)") {
      Decision decision = history.When(Revoked("1"));
      THEN("no-op: no event, nothing refunded twice") {
        REQUIRE(decision.has_value());
        CHECK(decision->empty());
        CHECK(history.state().amounts.refunded_minor == 4900);
      }
    }
    WHEN("a revocation failure is reported for it") {
      THEN("line_revoked") {
        CHECK(history.Rejected(RevocationFailedCommand("1")).code == RejectionCode::kLineRevoked);
      }
    }
    WHEN("it is fulfilled or fails fulfillment") {
      THEN("line_revoked") {
        CHECK(history.Rejected(Fulfilled("1")).code == RejectionCode::kLineRevoked);
        CHECK(history.Rejected(Failed("1", FailureKind::kServer)).code ==
              RejectionCode::kLineRevoked);
      }
    }
    WHEN("a retry names it") {
      THEN("line_not_fulfillable") {
        CHECK(history.Rejected(testing::Retry({"1"})).code == RejectionCode::kLineNotFulfillable);
      }
    }
  }
}

SCENARIO("a failed revocation can be revoked later", "[revocation]") {
  GIVEN("a Complete order") {
    History history = CompleteHistory();
    WHEN("revoking line 1 fails") {
      Decision decision = history.When(RevocationFailedCommand("1"));
      THEN("the line is in Revocation Error with why; the order is not fulfillable again") {
        CHECK(Only<RevocationFailed>(decision).kind == FailureKind::kNetwork);
        CHECK(history.line("1").status == LineStatus::kRevocationError);
        CHECK(history.line("1").last_error_message == "LMS unreachable");
        CHECK(history.state().status == OrderStatus::kComplete);
        CHECK(FulfillableLines(history.state()).empty());
        CHECK(history.state().amounts.refunded_minor == 0);
      }
      AND_WHEN("it fails again") {
        REQUIRE(history.When(RevocationFailedCommand("1")).has_value());
        THEN("the status stays Revocation Error") {
          CHECK(history.line("1").status == LineStatus::kRevocationError);
        }
      }
      AND_WHEN("the next revocation succeeds") {
        REQUIRE(history.When(Revoked("1")).has_value());
        THEN("Revocation Error -> Revoked") {
          CHECK(history.line("1").status == LineStatus::kRevoked);
          CHECK(history.state().amounts.refunded_minor == 4900);
        }
      }
      AND_WHEN("it is fulfilled again") {
        THEN("line_revoked: a line being refunded is not fulfilled") {
          CHECK(history.Rejected(Fulfilled("1")).code == RejectionCode::kLineRevoked);
        }
      }
      AND_WHEN("ops ask again without a refund reference") {
        RequestRevocation again = testing::RevocationRequest("1");
        again.refund_reference = "";
        Decision asked = history.When(again);
        THEN("the request keeps the reference it failed with, and so does the line") {
          CHECK(Only<RevocationRequested>(asked).refund_reference == "refund-1");
          CHECK(history.line("1").refund_reference == "refund-1");
          CHECK(history.line("1").revocation_requested);
        }
        AND_WHEN("they ask once more, again without one, while it is pending") {
          THEN("a repeat: nothing new, not revocation_pending") {
            Decision repeat = history.When(again);
            REQUIRE(repeat.has_value());
            CHECK(repeat->empty());
          }
        }
      }
      AND_WHEN("ops ask again with another refund reference") {
        RequestRevocation again = testing::RevocationRequest("1");
        again.refund_reference = "refund-2";
        REQUIRE(history.When(again).has_value());
        THEN("theirs replaces it") { CHECK(history.line("1").refund_reference == "refund-2"); }
      }
    }
  }
}

SCENARIO("a revocation that may succeed later is retried automatically, with backoff",
         "[revocation][retry]") {
  GIVEN("a Complete order whose line 1 is being revoked") {
    History history = CompleteHistory();
    REQUIRE(history.When(testing::RevocationRequest("1")).has_value());
    RecordRevocationFailed failure = RevocationFailedCommand("1");
    failure.retryable = true;
    WHEN("the revocation fails with a retryable failure") {
      Decision decision = history.When(failure);
      THEN("attempt 1, and the retry is due after the schedule's first delay") {
        const auto& failed = Only<RevocationFailed>(decision);
        CHECK(failed.attempt == 1);
        CHECK(failed.retryable);
        CHECK(failed.next_retry_at_us == failure.failed_at_us + kFirstRetryDelayUs);
        CHECK(history.line("1").revocation_failures == 1);
        CHECK(history.line("1").next_retry_at_us == failed.next_retry_at_us);
        CHECK_FALSE(history.line("1").revocation_requested);
      }
      AND_WHEN("the retry is asked for, and fails again") {
        REQUIRE(history.When(testing::AutomaticRevocationRequest("1")).has_value());
        CHECK(history.line("1").next_retry_at_us == 0);  // The scheduled retry is this one.
        failure.failed_at_us += 5'000'000;
        Decision again = history.When(failure);
        THEN("attempt 2, and the wait doubles") {
          CHECK(Only<RevocationFailed>(again).attempt == 2);
          CHECK(Only<RevocationFailed>(again).next_retry_at_us ==
                failure.failed_at_us + 2 * kFirstRetryDelayUs);
          CHECK(history.line("1").revocation_failures == 2);
        }
        AND_WHEN("the next one succeeds") {
          REQUIRE(history.When(testing::AutomaticRevocationRequest("1")).has_value());
          REQUIRE(history.When(Revoked("1")).has_value());
          THEN("nothing is scheduled any more") {
            CHECK(history.line("1").status == LineStatus::kRevoked);
            CHECK(history.line("1").next_retry_at_us == 0);
          }
        }
      }
    }
    WHEN("the failure is not retryable (the partner refused the request)") {
      Decision decision = history.When(RevocationFailedCommand("1"));
      THEN("the attempt counts, and no retry is scheduled: ops decide") {
        CHECK(Only<RevocationFailed>(decision).attempt == 1);
        CHECK(Only<RevocationFailed>(decision).next_retry_at_us == 0);
        CHECK(history.line("1").next_retry_at_us == 0);
      }
    }
    WHEN("the schedule's retries are used up") {
      failure.retry.retries_max = 1;
      REQUIRE(history.When(failure).has_value());
      REQUIRE(history.When(testing::AutomaticRevocationRequest("1")).has_value());
      Decision last = history.When(failure);
      THEN("the failure stays until ops ask again") {
        CHECK(Only<RevocationFailed>(last).attempt == 2);
        CHECK(Only<RevocationFailed>(last).next_retry_at_us == 0);
        CHECK(history.line("1").status == LineStatus::kRevocationError);
      }
    }
  }
}

SCENARIO(
    "ops asking again for a failed revocation neither use up nor advance its automatic retries",
    "[revocation][retry]") {
  GIVEN("a line whose revocation failed once, with a budget of two automatic retries") {
    History history = CompleteHistory();
    REQUIRE(history.When(testing::RevocationRequest("1")).has_value());
    RecordRevocationFailed failure = RevocationFailedCommand("1");
    failure.retryable = true;
    failure.retry = RetrySchedule{.first_delay_us = kSecondUs,
                                  .multiplier = 2,
                                  .retries_max = 2,
                                  .delay_max_us = 60 * kSecondUs};
    // Each call fails a minute after the one before.
    auto fail = [&history, &failure] {
      failure.failed_at_us += 60 * kSecondUs;
      return history.When(failure);
    };
    REQUIRE(fail().has_value());
    REQUIRE(history.line("1").next_retry_at_us == failure.failed_at_us + kSecondUs);
    WHEN("ops ask again three times and each call fails") {
      for (int i = 0; i < 3; ++i) {
        REQUIRE(history.When(testing::RevocationRequest("1")).has_value());
        REQUIRE(fail().has_value());
      }
      THEN("the first automatic retry is still scheduled, after the first delay") {
        CHECK(history.line("1").revocation_failures == 4);
        CHECK(history.line("1").automatic_revocation_retries == 0);
        CHECK(history.line("1").next_retry_at_us == failure.failed_at_us + kSecondUs);
      }
      AND_WHEN("the automatic retries run and fail") {
        REQUIRE(history.When(testing::AutomaticRevocationRequest("1")).has_value());
        REQUIRE(fail().has_value());
        THEN("the second waits twice as long") {
          CHECK(history.line("1").automatic_revocation_retries == 1);
          CHECK(history.line("1").next_retry_at_us == failure.failed_at_us + 2 * kSecondUs);
        }
        REQUIRE(history.When(testing::AutomaticRevocationRequest("1")).has_value());
        Decision last = fail();
        THEN("after the second, the line waits for ops, and their request does not renew it") {
          CHECK(Only<RevocationFailed>(last).attempt == 6);
          CHECK(history.line("1").next_retry_at_us == 0);
          CHECK(history.line("1").status == LineStatus::kRevocationError);
          REQUIRE(history.When(testing::RevocationRequest("1")).has_value());
          CHECK(Only<RevocationFailed>(fail()).next_retry_at_us == 0);
        }
      }
    }
  }
}

TEST_CASE("a state from a snapshot that did not count revocation failures folds what follows",
          "[revocation]") {
  // Order-status rows written before snapshot field 13 decode with revocation_failures 0,
  // while the command service numbers the next failure from the whole log.
  History history = CompleteHistory();
  REQUIRE(history.When(testing::RevocationRequest("1")).has_value());
  REQUIRE(history.When(RevocationFailedCommand("1")).has_value());
  REQUIRE(history.When(testing::RevocationRequest("1")).has_value());
  REQUIRE(history.When(RevocationFailedCommand("1")).has_value());
  REQUIRE(history.When(testing::RevocationRequest("1")).has_value());
  OrderState from_old_row = history.state();
  REQUIRE(from_old_row.lines.at(0).revocation_failures == 2);
  from_old_row.lines.at(0).revocation_failures = 0;  // As the old row decodes.

  RecordRevocationFailed third = RevocationFailedCommand("1");
  Decision decided = history.When(third);  // Decided from the whole log: attempt 3.
  REQUIRE(decided.has_value());
  const auto& failed = Only<RevocationFailed>(decided);
  REQUIRE(failed.attempt == 3);
  auto folded = TryEvolve(from_old_row, failed);
  REQUIRE(folded.has_value());
  CHECK(folded->lines.at(0).revocation_failures == 3);
  CHECK(folded->lines.at(0) == history.line("1"));
}

SCENARIO("a line that was never fulfilled cannot be revoked", "[revocation]") {
  GIVEN("an Open line and a failed line") {
    History history =
        History::Given({testing::Capture("txn-1", 14900), testing::StandardPlacement(),
                        Failed("2", FailureKind::kServer)});
    THEN("line_not_fulfilled for revocation and revocation failure alike") {
      CHECK(history.Rejected(Revoked("1")).code == RejectionCode::kLineNotFulfilled);
      CHECK(history.Rejected(Revoked("2")).code == RejectionCode::kLineNotFulfilled);
      CHECK(history.Rejected(RevocationFailedCommand("1")).code ==
            RejectionCode::kLineNotFulfilled);
      CHECK(history.Rejected(RevocationFailedCommand("2")).code ==
            RejectionCode::kLineNotFulfilled);
    }
    THEN("a refund's refusal says whether the line may still be fulfilled, and when") {
      CHECK_THAT(history.Rejected(testing::RevocationRequest("1")).detail,
                 Catch::Contains("an attempt is on its way") &&
                     Catch::Contains("revoke it once it is Complete"));
      CHECK_THAT(history.Rejected(testing::RevocationRequest("2")).detail,
                 Catch::Contains("its automatic retry at 2023-11-14T22:13:23"));
    }
    AND_WHEN("line 2 fails for good") {
      REQUIRE(history.When(Failed("2", FailureKind::kConfiguration, false)).has_value());
      THEN("its refusal says no retry is scheduled") {
        CHECK_THAT(history.Rejected(testing::RevocationRequest("2")).detail,
                   Catch::Contains("no retry is scheduled"));
      }
    }
  }
}

SCENARIO("a revocation is requested before its call, and its outcome ends the request",
         "[revocation]") {
  GIVEN("a Complete order") {
    History history = CompleteHistory();
    WHEN("ops ask to revoke line 1") {
      Decision decision = history.When(testing::RevocationRequest("1"));
      THEN("the request is recorded; the line stays Complete with the revocation pending") {
        const auto& requested = Only<RevocationRequested>(decision);
        CHECK(requested.refund_reference == "refund-1");
        CHECK(requested.requested_by == "ops:grace");
        CHECK(history.line("1").status == LineStatus::kComplete);
        CHECK(history.line("1").revocation_requested);
        CHECK(history.state().amounts.refunded_minor == 0);
      }
      AND_WHEN("they ask again while it is pending") {
        Decision again = history.When(testing::RevocationRequest("1"));
        THEN("no-op: one request") {
          REQUIRE(again.has_value());
          CHECK(again->empty());
        }
      }
      AND_WHEN("the line is revoked") {
        REQUIRE(history.When(Revoked("1")).has_value());
        THEN("the request is over, and asking again is a repeat") {
          CHECK_FALSE(history.line("1").revocation_requested);
          CHECK(history.line("1").status == LineStatus::kRevoked);
          Decision again = history.When(testing::RevocationRequest("1"));
          REQUIRE(again.has_value());
          CHECK(again->empty());
        }
      }
      AND_WHEN("the revocation fails") {
        REQUIRE(history.When(RevocationFailedCommand("1")).has_value());
        THEN("the request is over, and ops may ask again") {
          CHECK_FALSE(history.line("1").revocation_requested);
          CHECK(history.line("1").status == LineStatus::kRevocationError);
          Decision again = history.When(testing::RevocationRequest("1"));
          REQUIRE(again.has_value());
          CHECK(Only<RevocationRequested>(again).line_id == "1");
          CHECK(history.line("1").revocation_requested);
        }
      }
    }
  }
  GIVEN("a line never fulfilled") {
    History history =
        History::Given({testing::Capture("txn-1", 14900), testing::StandardPlacement()});
    WHEN("ops ask to revoke it") {
      Decision decision = history.When(testing::RevocationRequest("1"));
      THEN("refused before anything is recorded") {
        REQUIRE_FALSE(decision.has_value());
        CHECK(decision.error().code == RejectionCode::kLineNotFulfilled);
      }
    }
  }
}

}  // namespace
}  // namespace ledger::domain
