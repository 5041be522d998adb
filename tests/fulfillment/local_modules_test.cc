// The modules without I/O: enrollment codes (deterministic, so a retry never mints a second
// batch), coupons and donations.
#include <catch2/catch.hpp>
#include <set>

#include "fulfillment/modules.h"
#include "tests/fulfillment/test_support.h"

namespace ledger::fulfillment {
namespace {

using namespace testing;

constexpr std::string_view kSecret = "test-enrollment-code-secret";

TEST_CASE("enrollment codes: quantity codes of 16 Crockford base32 characters", "[codes]") {
  const auto codes = MintEnrollmentCodes(kSecret, "EDX-100001", "1", 500);
  REQUIRE(codes.size() == 500);
  std::set<std::string> distinct(codes.begin(), codes.end());
  CHECK(distinct.size() == 500);
  for (const std::string& code : codes) {
    REQUIRE(code.size() == kEnrollmentCodeLength);
    CHECK(code.find_first_not_of("0123456789ABCDEFGHJKMNPQRSTVWXYZ") == std::string::npos);
  }
}

TEST_CASE("enrollment codes: the same order and line always give the same codes", "[codes]") {
  CHECK(MintEnrollmentCodes(kSecret, "EDX-100001", "1", 20) ==
        MintEnrollmentCodes(kSecret, "EDX-100001", "1", 20));
  // A larger quantity extends the batch: its first codes are the smaller batch's.
  const auto more = MintEnrollmentCodes(kSecret, "EDX-100001", "1", 30);
  const auto fewer = MintEnrollmentCodes(kSecret, "EDX-100001", "1", 20);
  CHECK(std::equal(fewer.begin(), fewer.end(), more.begin()));
  // Another line, another order: other codes.
  CHECK(MintEnrollmentCodes(kSecret, "EDX-100001", "2", 20) != fewer);
  CHECK(MintEnrollmentCodes(kSecret, "EDX-100002", "1", 20) != fewer);
  CHECK(MintEnrollmentCodes(kSecret, "EDX-10000", "11", 20) != fewer);
  CHECK(MintEnrollmentCodes(kSecret, "EDX-1", "1", 0).empty());
  // Pinned: a line's codes must not change between its attempts. (An independent computation:
  // HMAC-SHA-256 under the secret of "orderledger-enrollment-code\n10:EDX-1000011:10", first 80
  // bits in Crockford base32; Python's hmac module.)
  CHECK(MintEnrollmentCodes(kSecret, "EDX-100001", "1", 1) ==
        std::vector<std::string>{"TYZ2XF319DS6V97S"});
  // Without the secret, nobody computes them: another secret, other codes.
  CHECK(MintEnrollmentCodes("another-ledger", "EDX-100001", "1", 20) != fewer);
}

TEST_CASE("enrollment code module: a retry yields the same batch; bad quantity is config",
          "[codes]") {
  auto module = MakeEnrollmentCodeModule(std::string(kSecret));
  const auto order = Order("EDX-100030", {LineOfType("1", "Enrollment Code", 5)});
  CHECK(module->name() == "enrollment_code");
  REQUIRE(module->Supports(order.lines[0]));
  const auto first = module->Fulfill(order, order.lines);
  const auto second = module->Fulfill(order, order.lines);
  REQUIRE(first.size() == 1);
  REQUIRE(first[0].succeeded());
  CHECK(first[0].result->codes.size() == 5);
  CHECK(first[0].result->codes == second[0].result->codes);
  CHECK(first[0].result->codes == MintEnrollmentCodes(kSecret, "EDX-100030", "1", 5));

  const auto none = Order("EDX-100031", {LineOfType("1", "Enrollment Code", 0)});
  const auto outcomes = module->Fulfill(none, none.lines);
  REQUIRE_FALSE(outcomes[0].succeeded());
  CHECK(outcomes[0].result.error().kind == domain::FailureKind::kConfiguration);
  CHECK_THAT(outcomes[0].result.error().message, Catch::Contains("0 enrollment codes"));

  const RevokeOutcome revoked = module->Revoke(order, FulfilledLine(order.lines[0], "x"));
  REQUIRE(revoked.succeeded());
  CHECK_THAT(revoked.result->note, Catch::Contains("void"));

  // Without a secret the module mints nothing: such codes would follow from the order number.
  const auto unkeyed = MakeEnrollmentCodeModule("")->Fulfill(order, order.lines);
  REQUIRE_FALSE(unkeyed[0].succeeded());
  CHECK(unkeyed[0].result.error().kind == domain::FailureKind::kConfiguration);
  CHECK_THAT(unkeyed[0].result.error().message, Catch::Contains("no secret"));
}

TEST_CASE("coupon and donation complete at once and revoke trivially", "[local]") {
  using Factory = std::unique_ptr<Module> (*)();
  for (auto [factory, type] : {std::pair<Factory, std::string>{&MakeCouponModule, "Coupon"},
                               std::pair<Factory, std::string>{&MakeDonationModule, "Donation"}}) {
    const std::unique_ptr<Module> module = factory();
    const auto order = Order("EDX-100040", {LineOfType("1", type), LineOfType("2", type)});
    REQUIRE(module->Supports(order.lines[0]));
    CHECK_FALSE(module->Supports(LineOfType("3", "Seat")));
    const auto outcomes = module->Fulfill(order, order.lines);
    REQUIRE(outcomes.size() == 2);
    CHECK(outcomes[0].succeeded());
    CHECK(outcomes[1].succeeded());
    CHECK(outcomes[1].line_id == "2");
    const RevokeOutcome revoked =
        module->Revoke(order, FulfilledLine(order.lines[0], std::string(module->name())));
    REQUIRE(revoked.succeeded());
    CHECK(revoked.module == module->name());
  }
}

TEST_CASE("failure messages are cut on a character boundary and cleaned", "[local]") {
  CHECK(SanitizeMessage("plain", 100) == "plain");
  CHECK(SanitizeMessage("line\nbreak\x01", 100) == "line break ");
  CHECK(SanitizeMessage("caf\xc3\xa9", 4) == "caf");  // Never half of "é".
  CHECK(SanitizeMessage("caf\xc3\xa9", 5) == "caf\xc3\xa9");
  CHECK(SanitizeMessage("bad \xff\xfe bytes", 100) == "bad ?? bytes");
  CHECK(SanitizeMessage(std::string(5'000, 'x'), 1'024).size() == 1'024);
}

}  // namespace
}  // namespace ledger::fulfillment
