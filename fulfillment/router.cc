#include "fulfillment/router.h"

#include <fmt/format.h>

#include <utility>

#include "base/assert.h"

namespace ledger::fulfillment {

Router::Router(std::vector<std::unique_ptr<Module>> modules) : modules_(std::move(modules)) {
  for (size_t i = 0; i < modules_.size(); ++i) {
    LEDGER_ASSERT(modules_[i] != nullptr, "Router: a null module");
    for (size_t j = 0; j < i; ++j) {
      LEDGER_ASSERT(modules_[j]->name() != modules_[i]->name(), "Router: two modules, one name");
    }
  }
}

Module* Router::ModuleFor(const domain::Line& line) const {
  for (const auto& module : modules_) {
    if (module->Supports(line)) return module.get();
  }
  return nullptr;
}

Module* Router::FindModule(std::string_view name) const {
  for (const auto& module : modules_) {
    if (module->name() == name) return module.get();
  }
  return nullptr;
}

Router::Assignment Router::Assign(std::span<const domain::Line> lines) const {
  Assignment assignment;
  std::vector<std::vector<domain::Line>> taken(modules_.size());
  for (const domain::Line& line : lines) {
    bool supported = false;
    for (size_t i = 0; i < modules_.size() && !supported; ++i) {
      if (modules_[i]->Supports(line)) {
        taken[i].push_back(line);
        supported = true;
      }
    }
    if (!supported) assignment.unsupported.push_back(line);
  }
  for (size_t i = 0; i < modules_.size(); ++i) {
    if (!taken[i].empty()) {
      assignment.groups.push_back(Group{.module = modules_[i].get(), .lines = std::move(taken[i])});
    }
  }
  return assignment;
}

std::vector<LineOutcome> Router::Fulfill(const domain::OrderCreated& order,
                                         std::span<const domain::Line> lines) const {
  Assignment assignment = Assign(lines);
  std::vector<LineOutcome> unordered;
  unordered.reserve(lines.size());
  for (Group& group : assignment.groups) {
    std::vector<LineOutcome> outcomes = group.module->Fulfill(order, group.lines);
    LEDGER_ASSERT(outcomes.size() == group.lines.size(), "a module broke one outcome per line");
    for (size_t i = 0; i < outcomes.size(); ++i) {
      LEDGER_ASSERT(outcomes[i].line_id == group.lines[i].line_id,
                    "a module returned outcomes out of order");
      unordered.push_back(std::move(outcomes[i]));
    }
  }
  for (const domain::Line& line : assignment.unsupported) {
    unordered.push_back(Failed(line, "",
                               Failure{.kind = domain::FailureKind::kConfiguration,
                                       .message = UnsupportedProductMessage(line.product_type),
                                       .retryable = false}));
  }
  // Back into the caller's order. Lines are at most domain::kLinesMax: quadratic is fine.
  std::vector<LineOutcome> outcomes;
  outcomes.reserve(lines.size());
  std::vector<bool> used(unordered.size(), false);
  for (const domain::Line& line : lines) {
    for (size_t i = 0; i < unordered.size(); ++i) {
      if (!used[i] && unordered[i].line_id == line.line_id) {
        used[i] = true;
        outcomes.push_back(std::move(unordered[i]));
        break;
      }
    }
  }
  LEDGER_ASSERT(outcomes.size() == lines.size(), "Router: an outcome went missing");
  return outcomes;
}

RevokeOutcome Router::Revoke(const domain::OrderCreated& order,
                             const domain::LineState& line) const {
  Module* module = line.module.empty() ? nullptr : FindModule(line.module);
  if (module == nullptr) module = ModuleFor(line.line);
  if (module == nullptr) {
    return RevokeOutcome{
        .line_id = line.line.line_id,
        .module = "",
        .result = Unexpected(Failure{.kind = domain::FailureKind::kConfiguration,
                                     .message = UnsupportedProductMessage(line.line.product_type),
                                     .retryable = false})};
  }
  RevokeOutcome outcome = module->Revoke(order, line);
  LEDGER_ASSERT(outcome.line_id == line.line.line_id, "a module revoked another line");
  return outcome;
}

std::string UnsupportedProductMessage(std::string_view product_type) {
  return fmt::format("no fulfillment module supports product type \"{}\"", product_type);
}

}  // namespace ledger::fulfillment
