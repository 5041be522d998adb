// The modules that call the LMS: enrollment (Seat) and course entitlement.
#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

#include "domain/status.h"
#include "fulfillment/lms_call.h"
#include "fulfillment/modules.h"

namespace ledger::fulfillment {
namespace {

using internal::CallLms;
using internal::CheckSettings;
using internal::IsSuccess;
using internal::LmsCall;
using internal::StatusFailure;

Failure ConfigurationFailure(std::string message) {
  return Failure{.kind = domain::FailureKind::kConfiguration,
                 .message = std::move(message),
                 .retryable = false};
}

bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// A course mode's slug ("verified", "no-id-professional", ...): what the LMS takes as a mode.
bool IsModeSlug(std::string_view mode) {
  return !mode.empty() && mode.size() <= 100 && std::all_of(mode.begin(), mode.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
  });
}

// The settings, username, attribute and mode every LMS fulfillment needs; a configuration
// failure names the first one missing or unusable. Found here rather than as the partner's 400,
// which names nothing the order holds.
std::optional<Failure> CheckInputs(const LmsSettings& settings, std::string_view module,
                                   const domain::OrderCreated& order, const domain::Line& line,
                                   std::string_view attribute) {
  if (auto failure = CheckSettings(settings, module)) return failure;
  if (IsBlank(order.user.username)) {
    return ConfigurationFailure(fmt::format("order {} has no username", order.order_number));
  }
  if (IsBlank(FindAttribute(line, attribute))) {
    return ConfigurationFailure(fmt::format("line {} ({}) has no {} attribute", line.line_id,
                                            line.product_type, attribute));
  }
  if (const std::string_view mode = ModeForLine(line); !IsModeSlug(mode)) {
    return ConfigurationFailure(fmt::format(
        "line {} ({}) asks for mode \"{}\" (its {}); a mode is letters, digits, '-' "
        "and '_'",
        line.line_id, line.product_type, mode,
        FindAttribute(line, "certificate_type").empty() ? "seat_type" : "certificate_type"));
  }
  return std::nullopt;
}

RevokeOutcome Revoked(const domain::LineState& line, std::string_view module, std::string note) {
  return RevokeOutcome{.line_id = line.line.line_id,
                       .module = std::string(module),
                       .result = Revocation{.note = std::move(note)}};
}

RevokeOutcome RevokeFailed(const domain::LineState& line, std::string_view module,
                           Failure failure) {
  failure.message = SanitizeMessage(failure.message, kFailureMessageBytesMax);
  return RevokeOutcome{.line_id = line.line.line_id,
                       .module = std::string(module),
                       .result = Unexpected(std::move(failure))};
}

class EnrollmentModule final : public Module {
 public:
  EnrollmentModule(LmsSettings settings, std::shared_ptr<HttpClient> http_client)
      : settings_(std::move(settings)), http_client_(std::move(http_client)) {
    LEDGER_ASSERT(http_client_ != nullptr, "EnrollmentModule needs an HTTP client");
  }

  std::string_view name() const override { return kEnrollmentModule; }

  bool Supports(const domain::Line& line) const override {
    return domain::ClassifyProductType(line.product_type) == domain::ProductKind::kSeat;
  }

  std::vector<LineOutcome> Fulfill(const domain::OrderCreated& order,
                                   std::span<const domain::Line> lines) override {
    std::vector<LineOutcome> outcomes;
    outcomes.reserve(lines.size());
    for (const domain::Line& line : lines) outcomes.push_back(FulfillLine(order, line));
    return outcomes;
  }

  RevokeOutcome Revoke(const domain::OrderCreated& order, const domain::LineState& state) override {
    const domain::Line& line = state.line;
    if (auto failure = CheckInputs(settings_, name(), order, line, "course_key")) {
      return RevokeFailed(state, name(), std::move(*failure));
    }
    const LmsCall call = EnrollmentCall(order, line, false);
    auto response = CallLms(*http_client_, settings_, call);
    if (!response) return RevokeFailed(state, name(), std::move(response).error());
    if (IsSuccess(*response)) return Revoked(state, name(), "");
    // The learner's enrollment is in another mode now (an upgrade, a change by support): the
    // original counts this as revoked, and so do we; the note keeps the LMS's words.
    if (response->status == 400 &&
        response->body.find("Enrollment mode mismatch") != std::string::npos) {
      return Revoked(state, name(),
                     fmt::format("the LMS answered HTTP 400 ({}); counted as revoked",
                                 internal::LmsMessage(response->body)));
    }
    return RevokeFailed(state, name(), StatusFailure(call, *response));
  }

 private:
  LineOutcome FulfillLine(const domain::OrderCreated& order, const domain::Line& line) {
    if (auto failure = CheckInputs(settings_, name(), order, line, "course_key")) {
      return Failed(line, name(), std::move(*failure));
    }
    const LmsCall call = EnrollmentCall(order, line, true);
    auto response = CallLms(*http_client_, settings_, call);
    if (!response) return Failed(line, name(), std::move(response).error());
    if (!IsSuccess(*response)) return Failed(line, name(), StatusFailure(call, *response));
    return Succeeded(line, name(), Fulfillment{});
  }

  static LmsCall EnrollmentCall(const domain::OrderCreated& order, const domain::Line& line,
                                bool is_active) {
    const std::string_view course_key = FindAttribute(line, "course_key");
    const std::string_view mode = ModeForLine(line);
    boost::json::object body;
    body["user"] = order.user.username;
    body["is_active"] = is_active;
    body["mode"] = mode;
    body["course_details"] = boost::json::object{{"course_id", course_key}};
    return LmsCall{
        .method = "POST",
        .path = std::string(kEnrollmentPath),
        .body = boost::json::serialize(body),
        .idempotency_key = IdempotencyKey(order.order_number, line.line_id,
                                          is_active ? kOperationEnroll : kOperationUnenroll),
        .what =
            fmt::format("{} {} in {} (mode {}, line {})", is_active ? "enrolling" : "unenrolling",
                        order.user.username, course_key, mode, line.line_id)};
  }

  const LmsSettings settings_;
  const std::shared_ptr<HttpClient> http_client_;
};

// Entitlement uuids go into a URL path: letters, digits and dashes only.
bool IsPlainUuidText(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  for (char c : text) {
    const bool plain =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
    if (!plain) return false;
  }
  return true;
}

class CourseEntitlementModule final : public Module {
 public:
  CourseEntitlementModule(LmsSettings settings, std::shared_ptr<HttpClient> http_client)
      : settings_(std::move(settings)), http_client_(std::move(http_client)) {
    LEDGER_ASSERT(http_client_ != nullptr, "CourseEntitlementModule needs an HTTP client");
  }

  std::string_view name() const override { return kCourseEntitlementModule; }

  bool Supports(const domain::Line& line) const override {
    return domain::ClassifyProductType(line.product_type) ==
           domain::ProductKind::kCourseEntitlement;
  }

  std::vector<LineOutcome> Fulfill(const domain::OrderCreated& order,
                                   std::span<const domain::Line> lines) override {
    std::vector<LineOutcome> outcomes;
    outcomes.reserve(lines.size());
    for (const domain::Line& line : lines) outcomes.push_back(FulfillLine(order, line));
    return outcomes;
  }

  RevokeOutcome Revoke(const domain::OrderCreated& order, const domain::LineState& state) override {
    if (auto failure = CheckSettings(settings_, name())) {
      return RevokeFailed(state, name(), std::move(*failure));
    }
    const std::string& uuid = state.external_reference;
    if (!IsPlainUuidText(uuid)) {
      return RevokeFailed(
          state, name(),
          ConfigurationFailure(fmt::format("line {} has no entitlement uuid to revoke (got \"{}\")",
                                           state.line.line_id, uuid)));
    }
    const LmsCall call{
        .method = "DELETE",
        .path = fmt::format("{}{}/", kEntitlementsPath, uuid),
        .body = "",
        .idempotency_key =
            IdempotencyKey(order.order_number, state.line.line_id, kOperationRevokeEntitlement),
        .what = fmt::format("revoking entitlement {} (line {})", uuid, state.line.line_id)};
    auto response = CallLms(*http_client_, settings_, call);
    if (!response) return RevokeFailed(state, name(), std::move(response).error());
    if (IsSuccess(*response)) return Revoked(state, name(), "");
    return RevokeFailed(state, name(), StatusFailure(call, *response));
  }

 private:
  LineOutcome FulfillLine(const domain::OrderCreated& order, const domain::Line& line) {
    if (auto failure = CheckInputs(settings_, name(), order, line, "course_uuid")) {
      return Failed(line, name(), std::move(*failure));
    }
    const std::string_view course_uuid = FindAttribute(line, "course_uuid");
    const std::string_view mode = ModeForLine(line);
    boost::json::object body;
    body["user"] = order.user.username;
    body["course_uuid"] = course_uuid;
    body["mode"] = mode;
    body["order_number"] = order.order_number;
    const LmsCall call{.method = "POST",
                       .path = std::string(kEntitlementsPath),
                       .body = boost::json::serialize(body),
                       .idempotency_key = IdempotencyKey(order.order_number, line.line_id,
                                                         kOperationCreateEntitlement),
                       .what = fmt::format("creating a {} entitlement to {} for {} (line {})", mode,
                                           course_uuid, order.user.username, line.line_id)};
    auto response = CallLms(*http_client_, settings_, call);
    if (!response) return Failed(line, name(), std::move(response).error());
    if (!IsSuccess(*response)) return Failed(line, name(), StatusFailure(call, *response));
    std::string uuid = EntitlementUuid(response->body);
    if (!IsPlainUuidText(uuid)) {
      // Not retryable: a retry sends the same key and gets the same answer back.
      return Failed(line, name(),
                    Failure{.kind = domain::FailureKind::kServer,
                            .message = fmt::format("{} at the LMS: HTTP {} without an entitlement "
                                                   "uuid in the answer",
                                                   call.what, response->status),
                            .retryable = false});
    }
    return Succeeded(line, name(), Fulfillment{.external_reference = std::move(uuid), .codes = {}});
  }

  static std::string EntitlementUuid(std::string_view body) {
    boost::system::error_code error;
    const boost::json::value parsed = boost::json::parse(body, error);
    if (error || !parsed.is_object()) return "";
    const boost::json::value* uuid = parsed.get_object().if_contains("uuid");
    if (uuid == nullptr || !uuid->is_string()) return "";
    return std::string(uuid->get_string());
  }

  const LmsSettings settings_;
  const std::shared_ptr<HttpClient> http_client_;
};

}  // namespace

std::string_view ModeForLine(const domain::Line& line) {
  if (std::string_view mode = FindAttribute(line, "certificate_type"); !mode.empty()) return mode;
  if (std::string_view mode = FindAttribute(line, "seat_type"); !mode.empty()) return mode;
  return "audit";
}

std::unique_ptr<Module> MakeEnrollmentModule(LmsSettings settings,
                                             std::shared_ptr<HttpClient> http_client) {
  return std::make_unique<EnrollmentModule>(std::move(settings), std::move(http_client));
}

std::unique_ptr<Module> MakeCourseEntitlementModule(LmsSettings settings,
                                                    std::shared_ptr<HttpClient> http_client) {
  return std::make_unique<CourseEntitlementModule>(std::move(settings), std::move(http_client));
}

}  // namespace ledger::fulfillment
