// The LMS modules (enrollment, course entitlement) against the real LMS stand-in, for every
// outcome: success, each failure kind, and retries that must not perform an effect twice.
#include <catch2/catch.hpp>
#include <chrono>

#include "fulfillment/modules.h"
#include "tests/fulfillment/test_support.h"

namespace ledger::fulfillment {
namespace {

using domain::FailureKind;
using namespace testing;

struct Fixture {
  std::unique_ptr<server::LmsStandin> standin = StartStandin();
  std::shared_ptr<HttpClient> client = std::make_shared<HttpClient>();

  std::unique_ptr<Module> Enrollment(int64_t timeout_ms = 2'000) {
    return MakeEnrollmentModule(SettingsFor(*standin, timeout_ms), client);
  }
  std::unique_ptr<Module> Entitlement() {
    return MakeCourseEntitlementModule(SettingsFor(*standin), client);
  }
};

LineOutcome FulfillOne(Module& module, const domain::OrderCreated& order) {
  std::vector<LineOutcome> outcomes = module.Fulfill(order, order.lines);
  REQUIRE(outcomes.size() == 1);
  return std::move(outcomes[0]);
}

const Failure& FailureOf(const LineOutcome& outcome) {
  REQUIRE_FALSE(outcome.succeeded());
  return outcome.result.error();
}

const std::string kCourse = "course-v1:edX+DemoX+Demo_Course";

TEST_CASE("enrollment: HTTP 200 completes the line and enrolls in the line's mode", "[lms]") {
  Fixture f;
  auto module = f.Enrollment();
  const auto order = Order("EDX-100001", {SeatLine("1", kCourse, "verified")});
  const LineOutcome outcome = FulfillOne(*module, order);
  REQUIRE(outcome.succeeded());
  CHECK(outcome.module == "enrollment");
  CHECK(outcome.line_id == "1");
  const auto enrollments = f.standin->Enrollments();
  REQUIRE(enrollments.size() == 1);
  CHECK(enrollments[0].user == "alice");
  CHECK(enrollments[0].course_id == kCourse);
  CHECK(enrollments[0].mode == "verified");
  CHECK(enrollments[0].is_active);
  // The call carried the key derived from (order, line, "enroll").
  CHECK(f.standin->Stats().EffectsForKey(IdempotencyKey("EDX-100001", "1", "enroll")) == 1);
}

TEST_CASE("enrollment: mode is certificate_type, else seat_type, else audit", "[lms]") {
  domain::Line line = LineOfType("1", "Seat");
  CHECK(ModeForLine(line) == "audit");
  line.attributes.push_back({"seat_type", "professional"});
  CHECK(ModeForLine(line) == "professional");
  line.attributes.push_back({"certificate_type", "verified"});
  CHECK(ModeForLine(line) == "verified");

  Fixture f;
  auto module = f.Enrollment();
  REQUIRE(FulfillOne(*module, Order("EDX-100002", {SeatLine("1", kCourse, "")})).succeeded());
  CHECK(f.standin->Enrollments().at(0).mode == "audit");
}

TEST_CASE("enrollment: a blank course key or a mode that is no slug is a configuration error",
          "[lms]") {
  Fixture f;
  auto module = f.Enrollment();
  domain::Line blank_mode = LineOfType("1", "Seat");
  blank_mode.attributes.push_back({"course_key", kCourse});
  blank_mode.attributes.push_back({"certificate_type", "  "});
  const LineOutcome outcome = FulfillOne(*module, Order("EDX-100003", {blank_mode}));
  const Failure& blank = FailureOf(outcome);
  CHECK(blank.kind == domain::FailureKind::kConfiguration);
  CHECK_FALSE(blank.retryable);
  CHECK(blank.message ==
        "line 1 (Seat) asks for mode \"  \" (its certificate_type); a mode is letters, digits, "
        "'-' and '_'");
  domain::Line blank_course = LineOfType("1", "Seat");
  blank_course.attributes.push_back({"course_key", " \t"});
  const LineOutcome no_course = FulfillOne(*module, Order("EDX-100004", {blank_course}));
  CHECK(FailureOf(no_course).message == "line 1 (Seat) has no course_key attribute");
  CHECK(f.standin->Stats().requests == 0);  // Nothing reached the LMS.
}

TEST_CASE("enrollment: several lines, one outcome each, in order", "[lms]") {
  Fixture f;
  auto module = f.Enrollment();
  const auto order = Order("EDX-100003", {SeatLine("a", "course-v1:A+1+1", "verified"),
                                          SeatLine("b", "course-v1:B+1+1", "audit"),
                                          SeatLine("c", "course-v1:C+1+1", "verified")});
  const auto outcomes = module->Fulfill(order, order.lines);
  REQUIRE(outcomes.size() == 3);
  CHECK(outcomes[0].line_id == "a");
  CHECK(outcomes[1].line_id == "b");
  CHECK(outcomes[2].line_id == "c");
  for (const auto& outcome : outcomes) CHECK(outcome.succeeded());
  CHECK(f.standin->Stats().Effects("enrollment") == 3);
}

TEST_CASE("enrollment: HTTP 500 is a retryable server error with the LMS's message", "[lms]") {
  Fixture f;
  auto module = f.Enrollment();
  f.standin->SetFaults({.fail_next = 1, .fail_status = 500});
  const auto order = Order("EDX-100004", {SeatLine("1", kCourse, "verified")});
  const LineOutcome outcome = FulfillOne(*module, order);
  const Failure& failure = FailureOf(outcome);
  CHECK(failure.kind == FailureKind::kServer);
  CHECK(failure.retryable);
  CHECK_THAT(failure.message, Catch::Contains("HTTP 500"));
  CHECK_THAT(failure.message, Catch::Contains("injected fault"));
  CHECK_THAT(failure.message, Catch::Contains(kCourse));
  CHECK(f.standin->Stats().Effects("enrollment") == 0);

  // The retry (same key: failed first attempts are not remembered) performs the enrollment once.
  REQUIRE(FulfillOne(*module, order).succeeded());
  CHECK(f.standin->Stats().Effects("enrollment") == 1);
}

TEST_CASE("enrollment: a 4xx answer is a server error a retry will not fix", "[lms]") {
  Fixture f;
  SECTION("400 from the LMS") {
    auto module = f.Enrollment();
    f.standin->SetFaults({.fail_next = 1, .fail_status = 400});
    const Failure failure =
        FailureOf(FulfillOne(*module, Order("EDX-100005", {SeatLine("1", kCourse, "")})));
    CHECK(failure.kind == FailureKind::kServer);
    CHECK_FALSE(failure.retryable);
    CHECK_THAT(failure.message, Catch::Contains("HTTP 400"));
  }
  SECTION("a wrong API key: 403") {
    LmsSettings settings = SettingsFor(*f.standin);
    settings.api_key = "wrong";
    auto module = MakeEnrollmentModule(settings, f.client);
    const Failure failure =
        FailureOf(FulfillOne(*module, Order("EDX-100005", {SeatLine("1", kCourse, "")})));
    CHECK(failure.kind == FailureKind::kServer);
    CHECK_FALSE(failure.retryable);
    CHECK_THAT(failure.message, Catch::Contains("HTTP 403"));
    CHECK_THAT(failure.message, Catch::Contains("Invalid API key"));
  }
  SECTION("429 and 503 are retryable") {
    auto module = f.Enrollment();
    f.standin->SetFaults({.fail_next = 1, .fail_status = 429});
    CHECK(FailureOf(FulfillOne(*module, Order("EDX-100005", {SeatLine("1", kCourse, "")})))
              .retryable);
    f.standin->SetFaults({.fail_next = 1, .fail_status = 503});
    CHECK(FailureOf(FulfillOne(*module, Order("EDX-100005", {SeatLine("1", kCourse, "")})))
              .retryable);
  }
}

TEST_CASE("enrollment: a refused connection is a retryable network error", "[lms]") {
  auto client = std::make_shared<HttpClient>();
  auto module = MakeEnrollmentModule(
      LmsSettings{.lms_url = "http://127.0.0.1:" + std::to_string(RefusingPort()),
                  .api_key = std::string(kApiKey)},
      client);
  const Failure failure =
      FailureOf(FulfillOne(*module, Order("EDX-100006", {SeatLine("1", kCourse, "")})));
  CHECK(failure.kind == FailureKind::kNetwork);
  CHECK(failure.retryable);
  CHECK_THAT(failure.message, Catch::Contains("refused"));
}

TEST_CASE("enrollment: a dropped connection is a network error, and no enrollment", "[lms]") {
  Fixture f;
  auto module = f.Enrollment();
  f.standin->SetFaults({.drop_next = 1});
  const auto order = Order("EDX-100007", {SeatLine("1", kCourse, "verified")});
  const Failure failure = FailureOf(FulfillOne(*module, order));
  CHECK(failure.kind == FailureKind::kNetwork);
  CHECK(failure.retryable);
  CHECK(f.standin->Stats().Effects("enrollment") == 0);
  REQUIRE(FulfillOne(*module, order).succeeded());
  CHECK(f.standin->Stats().Effects("enrollment") == 1);
}

TEST_CASE("enrollment: a slow LMS is a timeout; the retry performs no second enrollment", "[lms]") {
  Fixture f;
  auto module = f.Enrollment(200);
  // The stand-in enrolls at once and answers after 1.5 s: the answer is lost, the effect is not.
  f.standin->SetFaults({.delay_next = 1, .delay_ms = 1'500});
  const auto order = Order("EDX-100008", {SeatLine("1", kCourse, "verified")});
  const auto started = std::chrono::steady_clock::now();
  const Failure failure = FailureOf(FulfillOne(*module, order));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  CHECK(failure.kind == FailureKind::kTimeout);
  CHECK(failure.retryable);
  CHECK_THAT(failure.message, Catch::Contains("200 ms"));
  CHECK(elapsed < std::chrono::milliseconds(Sanitized() ? 1'400 : 1'000));

  REQUIRE(FulfillOne(*module, order).succeeded());
  const auto stats = f.standin->Stats();
  CHECK(stats.Effects("enrollment") == 1);
  CHECK(stats.replays == 1);
  CHECK(stats.EffectsForKey(IdempotencyKey("EDX-100008", "1", "enroll")) == 1);
}

TEST_CASE("enrollment: a repeated successful call performs one enrollment", "[lms][idempotency]") {
  Fixture f;
  auto module = f.Enrollment();
  const auto order = Order("EDX-100009", {SeatLine("1", kCourse, "verified")});
  for (int i = 0; i < 3; ++i) REQUIRE(FulfillOne(*module, order).succeeded());
  const auto stats = f.standin->Stats();
  CHECK(stats.Effects("enrollment") == 1);
  CHECK(stats.replays == 2);
  // Another line of the same order is another key: its own enrollment.
  const auto other = Order("EDX-100009", {SeatLine("2", kCourse, "verified")});
  REQUIRE(FulfillOne(*module, other).succeeded());
  CHECK(f.standin->Stats().Effects("enrollment") == 2);
}

TEST_CASE("enrollment: missing settings or attributes are configuration errors, no call made",
          "[lms]") {
  Fixture f;
  const auto seat = SeatLine("1", kCourse, "verified");
  auto expect_configuration = [&](Module& module, const domain::OrderCreated& order,
                                  std::string_view words) {
    const Failure failure = FailureOf(FulfillOne(module, order));
    CHECK(failure.kind == FailureKind::kConfiguration);
    CHECK_FALSE(failure.retryable);
    CHECK_THAT(failure.message, Catch::Contains(std::string(words)));
  };
  SECTION("no API key") {
    LmsSettings settings = SettingsFor(*f.standin);
    settings.api_key.clear();
    expect_configuration(*MakeEnrollmentModule(settings, f.client), Order("EDX-1", {seat}),
                         "api_key");
  }
  SECTION("no LMS URL") {
    LmsSettings settings = SettingsFor(*f.standin);
    settings.lms_url.clear();
    expect_configuration(*MakeEnrollmentModule(settings, f.client), Order("EDX-1", {seat}),
                         "lms_url");
  }
  SECTION("no course_key attribute") {
    expect_configuration(*f.Enrollment(), Order("EDX-1", {LineOfType("1", "Seat")}), "course_key");
  }
  SECTION("no username") {
    expect_configuration(*f.Enrollment(), Order("EDX-1", {seat}, ""), "username");
  }
  SECTION("an LMS URL that is not http") {
    LmsSettings settings = SettingsFor(*f.standin);
    settings.lms_url = "https://lms.example.com";
    expect_configuration(*MakeEnrollmentModule(settings, f.client), Order("EDX-1", {seat}), "http");
  }
  CHECK(f.standin->Stats().requests == 0);
}

TEST_CASE("enrollment: revoke deactivates; a mode mismatch counts as revoked", "[lms][revoke]") {
  Fixture f;
  auto module = f.Enrollment();
  const auto line = SeatLine("1", kCourse, "verified");
  const auto order = Order("EDX-100010", {line});
  REQUIRE(FulfillOne(*module, order).succeeded());

  SECTION("same mode: deactivated") {
    const RevokeOutcome outcome = module->Revoke(order, FulfilledLine(line, "enrollment"));
    REQUIRE(outcome.succeeded());
    CHECK(outcome.line_id == "1");
    CHECK_FALSE(f.standin->Enrollments().at(0).is_active);
    CHECK(f.standin->Stats().EffectsForKey(IdempotencyKey("EDX-100010", "1", "unenroll")) == 1);
  }
  SECTION("the learner moved to another mode: 400 mode mismatch, counted as revoked") {
    // Another order enrolls the same learner in the same course as "professional".
    const auto other = Order("EDX-100011", {SeatLine("9", kCourse, "professional")});
    REQUIRE(FulfillOne(*module, other).succeeded());
    const RevokeOutcome outcome = module->Revoke(order, FulfilledLine(line, "enrollment"));
    REQUIRE(outcome.succeeded());
    CHECK_THAT(outcome.result->note, Catch::Contains("Enrollment mode mismatch"));
    CHECK(f.standin->Enrollments().at(0).is_active);
  }
  SECTION("a 500 on revoke is a revocation failure") {
    f.standin->SetFaults({.fail_next = 1, .fail_status = 500});
    const RevokeOutcome outcome = module->Revoke(order, FulfilledLine(line, "enrollment"));
    REQUIRE_FALSE(outcome.succeeded());
    CHECK(outcome.result.error().kind == FailureKind::kServer);
    CHECK(outcome.result.error().retryable);
  }
}

TEST_CASE("entitlement: created once, its uuid recorded; revoke deletes it", "[lms]") {
  Fixture f;
  auto module = f.Entitlement();
  const auto line = EntitlementLine("1", "c0ffee00-0000-4000-8000-000000000001", "verified");
  const auto order = Order("EDX-100020", {line});
  const LineOutcome first = FulfillOne(*module, order);
  REQUIRE(first.succeeded());
  CHECK(first.module == "course_entitlement");
  const auto entitlements = f.standin->Entitlements();
  REQUIRE(entitlements.size() == 1);
  CHECK(first.result->external_reference == entitlements[0].uuid);
  CHECK(entitlements[0].order_number == "EDX-100020");
  CHECK(entitlements[0].mode == "verified");
  CHECK(entitlements[0].user == "alice");

  // A retry after a lost answer gets the same uuid and creates nothing.
  const LineOutcome again = FulfillOne(*module, order);
  REQUIRE(again.succeeded());
  CHECK(again.result->external_reference == first.result->external_reference);
  CHECK(f.standin->Stats().Effects("entitlement") == 1);

  const RevokeOutcome revoked = module->Revoke(
      order, FulfilledLine(line, "course_entitlement", first.result->external_reference));
  REQUIRE(revoked.succeeded());
  CHECK(f.standin->Entitlements().at(0).revoked);
  CHECK(f.standin->Stats().Effects("entitlement_revocation") == 1);
}

TEST_CASE("entitlement: failures by kind", "[lms]") {
  Fixture f;
  auto module = f.Entitlement();
  const auto line = EntitlementLine("1", "c0ffee00-0000-4000-8000-000000000002", "verified");
  const auto order = Order("EDX-100021", {line});
  SECTION("500") {
    f.standin->SetFaults({.fail_next = 1, .fail_status = 502});
    const Failure failure = FailureOf(FulfillOne(*module, order));
    CHECK(failure.kind == FailureKind::kServer);
    CHECK_THAT(failure.message, Catch::Contains("HTTP 502"));
  }
  SECTION("dropped") {
    f.standin->SetFaults({.drop_next = 1});
    CHECK(FailureOf(FulfillOne(*module, order)).kind == FailureKind::kNetwork);
  }
  SECTION("no course_uuid") {
    const Failure failure =
        FailureOf(FulfillOne(*module, Order("EDX-1", {LineOfType("1", "Course Entitlement")})));
    CHECK(failure.kind == FailureKind::kConfiguration);
    CHECK_THAT(failure.message, Catch::Contains("course_uuid"));
  }
  SECTION("revoke of an unknown uuid: 404, not retryable") {
    const RevokeOutcome outcome = module->Revoke(
        order, FulfilledLine(line, "course_entitlement", "00000000-0000-4000-8000-00000000dead"));
    REQUIRE_FALSE(outcome.succeeded());
    CHECK(outcome.result.error().kind == FailureKind::kServer);
    CHECK_FALSE(outcome.result.error().retryable);
    CHECK_THAT(outcome.result.error().message, Catch::Contains("HTTP 404"));
  }
  SECTION("revoke without a recorded uuid: configuration error") {
    const RevokeOutcome outcome = module->Revoke(order, FulfilledLine(line, "course_entitlement"));
    REQUIRE_FALSE(outcome.succeeded());
    CHECK(outcome.result.error().kind == FailureKind::kConfiguration);
  }
  SECTION("timeout") {
    auto slow = MakeCourseEntitlementModule(SettingsFor(*f.standin, 200), f.client);
    f.standin->SetFaults({.delay_next = 1, .delay_ms = 1'500});
    CHECK(FailureOf(FulfillOne(*slow, order)).kind == FailureKind::kTimeout);
    // The retry gets the first answer: one entitlement.
    REQUIRE(FulfillOne(*slow, order).succeeded());
    CHECK(f.standin->Stats().Effects("entitlement") == 1);
  }
}

TEST_CASE("idempotency keys depend on order, line and operation only", "[idempotency]") {
  CHECK(IdempotencyKey("EDX-1", "1", "enroll") == IdempotencyKey("EDX-1", "1", "enroll"));
  CHECK(IdempotencyKey("EDX-1", "1", "enroll") != IdempotencyKey("EDX-1", "1", "unenroll"));
  CHECK(IdempotencyKey("EDX-1", "1", "enroll") != IdempotencyKey("EDX-1", "2", "enroll"));
  CHECK(IdempotencyKey("EDX-1", "12", "enroll") != IdempotencyKey("EDX-11", "2", "enroll"));
  CHECK(IdempotencyKey("EDX-1", "1", "enroll").size() == 36);
}

}  // namespace
}  // namespace ledger::fulfillment
