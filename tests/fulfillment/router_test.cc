// The router: the first configured module that supports a line takes it; lines nobody supports
// fail with a configuration error; outcomes come back in the caller's line order.
#include <catch2/catch.hpp>

#include "fulfillment/router.h"
#include "tests/fulfillment/test_support.h"

namespace ledger::fulfillment {
namespace {

using namespace testing;

// A module that takes every line of one product type and remembers what it was given.
class RecordingModule final : public Module {
 public:
  RecordingModule(std::string name, std::string product_type)
      : name_(std::move(name)), product_type_(std::move(product_type)) {}

  std::string_view name() const override { return name_; }
  bool Supports(const domain::Line& line) const override {
    return line.product_type == product_type_;
  }
  std::vector<LineOutcome> Fulfill(const domain::OrderCreated&,
                                   std::span<const domain::Line> lines) override {
    std::vector<LineOutcome> outcomes;
    for (const domain::Line& line : lines) {
      fulfilled.push_back(line.line_id);
      outcomes.push_back(Succeeded(line, name_, Fulfillment{.external_reference = name_}));
    }
    return outcomes;
  }
  RevokeOutcome Revoke(const domain::OrderCreated&, const domain::LineState& line) override {
    revoked.push_back(line.line.line_id);
    return RevokeOutcome{.line_id = line.line.line_id, .module = name_, .result = Revocation{}};
  }

  std::vector<std::string> fulfilled{};
  std::vector<std::string> revoked{};

 private:
  std::string name_;
  std::string product_type_;
};

struct RouterFixture {
  RecordingModule* first = nullptr;
  RecordingModule* second = nullptr;
  RecordingModule* donations = nullptr;
  std::unique_ptr<Router> router;

  RouterFixture() {
    auto a = std::make_unique<RecordingModule>("first", "Seat");
    auto b = std::make_unique<RecordingModule>("second", "Seat");
    auto c = std::make_unique<RecordingModule>("donations", "Donation");
    first = a.get();
    second = b.get();
    donations = c.get();
    std::vector<std::unique_ptr<Module>> modules;
    modules.push_back(std::move(a));
    modules.push_back(std::move(b));
    modules.push_back(std::move(c));
    router = std::make_unique<Router>(std::move(modules));
  }
};

TEST_CASE("router: the first module that supports a line wins", "[router]") {
  RouterFixture f;
  const auto order = Order(
      "EDX-1", {LineOfType("1", "Seat"), LineOfType("2", "Donation"), LineOfType("3", "Seat")});
  const auto outcomes = f.router->Fulfill(order, order.lines);
  REQUIRE(outcomes.size() == 3);
  CHECK(outcomes[0].module == "first");
  CHECK(outcomes[1].module == "donations");
  CHECK(outcomes[2].module == "first");
  CHECK(f.first->fulfilled == std::vector<std::string>{"1", "3"});
  CHECK(f.second->fulfilled.empty());
  CHECK(f.router->ModuleFor(order.lines[0]) == f.first);
  CHECK(f.router->FindModule("second") == f.second);
  CHECK(f.router->FindModule("nobody") == nullptr);

  const auto assignment = f.router->Assign(order.lines);
  REQUIRE(assignment.groups.size() == 2);
  CHECK(assignment.groups[0].module == f.first);
  CHECK(assignment.groups[0].lines.size() == 2);
  CHECK(assignment.groups[1].module == f.donations);
  CHECK(assignment.unsupported.empty());
}

TEST_CASE("router: unsupported lines fail with a configuration error, in line order", "[router]") {
  RouterFixture f;
  const auto order = Order("EDX-2", {LineOfType("1", "Executive Education"),
                                     LineOfType("2", "Seat"), LineOfType("3", "Coupon")});
  const auto outcomes = f.router->Fulfill(order, order.lines);
  REQUIRE(outcomes.size() == 3);
  CHECK(outcomes[0].line_id == "1");
  CHECK(outcomes[1].line_id == "2");
  CHECK(outcomes[2].line_id == "3");
  CHECK(outcomes[1].succeeded());
  for (size_t i : {size_t{0}, size_t{2}}) {
    REQUIRE_FALSE(outcomes[i].succeeded());
    CHECK(outcomes[i].module.empty());
    CHECK(outcomes[i].result.error().kind == domain::FailureKind::kConfiguration);
    CHECK_FALSE(outcomes[i].result.error().retryable);
  }
  CHECK(outcomes[0].result.error().message ==
        "no fulfillment module supports product type \"Executive Education\"");
  CHECK(f.router->Assign(order.lines).unsupported.size() == 2);
}

TEST_CASE("router: revoke goes to the module that fulfilled the line", "[router]") {
  RouterFixture f;
  const auto order = Order("EDX-3", {LineOfType("1", "Seat")});
  REQUIRE(f.router->Revoke(order, FulfilledLine(order.lines[0], "second")).succeeded());
  CHECK(f.second->revoked == std::vector<std::string>{"1"});
  // A module no longer configured: the first that supports the line.
  REQUIRE(f.router->Revoke(order, FulfilledLine(order.lines[0], "retired")).succeeded());
  CHECK(f.first->revoked == std::vector<std::string>{"1"});
  // Nobody supports it: a configuration error, not a crash.
  const auto orphan = FulfilledLine(LineOfType("9", "Executive Education"), "retired");
  const RevokeOutcome outcome = f.router->Revoke(order, orphan);
  REQUIRE_FALSE(outcome.succeeded());
  CHECK(outcome.result.error().kind == domain::FailureKind::kConfiguration);
}

TEST_CASE("router: an empty router fails every line", "[router]") {
  Router router({});
  const auto order = Order("EDX-4", {LineOfType("1", "Seat")});
  const auto outcomes = router.Fulfill(order, order.lines);
  REQUIRE(outcomes.size() == 1);
  CHECK_FALSE(outcomes[0].succeeded());
}

}  // namespace
}  // namespace ledger::fulfillment
