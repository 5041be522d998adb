// Router: the configured modules, in order, and the rule that picks one for a line: the FIRST
// module that supports it (as the original's fulfillment API walks its module list). A line no
// module supports gets a `Fulfillment Configuration Error` outcome naming its product type.
//
// Thread safety: immutable after construction; Fulfill and Revoke may run from several threads
// at once (modules are thread-safe).
#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "fulfillment/module.h"

namespace ledger::fulfillment {

class Router {
 public:
  // Modules in configuration order; none may be null and no two may share a name.
  explicit Router(std::vector<std::unique_ptr<Module>> modules);

  // The first module that supports `line`, or nullptr.
  Module* ModuleFor(const domain::Line& line) const;
  // The module named `name`, or nullptr.
  Module* FindModule(std::string_view name) const;
  std::span<const std::unique_ptr<Module>> modules() const { return modules_; }

  // One group per module that takes at least one line, in configuration order, each with the
  // lines it takes in basket order; `unsupported` holds the lines nobody takes.
  struct Group {
    Module* module = nullptr;
    std::vector<domain::Line> lines{};
  };
  struct Assignment {
    std::vector<Group> groups{};
    std::vector<domain::Line> unsupported{};
  };
  Assignment Assign(std::span<const domain::Line> lines) const;

  // Fulfills `lines` of `order` through their modules. Exactly one outcome per line, in the
  // order of `lines`; unsupported lines fail with a configuration error, not retryable.
  std::vector<LineOutcome> Fulfill(const domain::OrderCreated& order,
                                   std::span<const domain::Line> lines) const;

  // Revokes a fulfilled line through the module that fulfilled it (`line.module`); when that
  // module is no longer configured, through the first module that supports the line; when none
  // does, a configuration error.
  RevokeOutcome Revoke(const domain::OrderCreated& order, const domain::LineState& line) const;

 private:
  std::vector<std::unique_ptr<Module>> modules_;
};

// The message of an unsupported line: "no fulfillment module supports product type X".
std::string UnsupportedProductMessage(std::string_view product_type);

}  // namespace ledger::fulfillment
