#include "fulfillment/lms_call.h"

#include <fmt/format.h>

#include <boost/json.hpp>

namespace ledger::fulfillment::internal {
namespace {

constexpr size_t kLmsMessageBytesMax = 400;

domain::FailureKind KindFor(HttpError::Kind kind) {
  switch (kind) {
    case HttpError::Kind::kInvalidRequest:
      return domain::FailureKind::kConfiguration;
    case HttpError::Kind::kConnect:
    case HttpError::Kind::kClosed:
    // Only while the ledger stops, and the process manager does not record failures then.
    case HttpError::Kind::kCancelled:
      return domain::FailureKind::kNetwork;
    case HttpError::Kind::kTimeout:
      return domain::FailureKind::kTimeout;
    case HttpError::Kind::kProtocol:
      return domain::FailureKind::kServer;
  }
  return domain::FailureKind::kUnknown;
}

std::string JoinUrl(std::string_view base, std::string_view path) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  return std::string(base) + std::string(path);
}

}  // namespace

std::optional<Failure> CheckSettings(const LmsSettings& settings, std::string_view module) {
  if (settings.lms_url.empty()) {
    return Failure{.kind = domain::FailureKind::kConfiguration,
                   .message = fmt::format("module {} has no LMS URL configured (lms_url)", module),
                   .retryable = false};
  }
  if (settings.api_key.empty()) {
    return Failure{
        .kind = domain::FailureKind::kConfiguration,
        .message = fmt::format("module {} has no LMS API key configured (api_key)", module),
        .retryable = false};
  }
  return std::nullopt;
}

Result<HttpResponse, Failure> CallLms(HttpClient& client, const LmsSettings& settings,
                                      const LmsCall& call) {
  HttpRequest request;
  request.method = call.method;
  request.url = JoinUrl(settings.lms_url, call.path);
  request.headers = {{"X-Edx-Api-Key", settings.api_key},
                     {"Idempotency-Key", call.idempotency_key},
                     {"Accept", "application/json"}};
  if (!call.body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  request.body = call.body;
  request.timeout_ms = settings.timeout_ms;
  request.connect_timeout_ms = settings.connect_timeout_ms;
  auto response = client.Send(request);
  if (response) return std::move(*response);
  const HttpError& error = response.error();
  const domain::FailureKind kind = KindFor(error.kind);
  return Unexpected(Failure{.kind = kind,
                            .message = fmt::format("{} at the LMS failed ({}): {}", call.what,
                                                   HttpErrorKindName(error.kind), error.message),
                            .retryable = kind != domain::FailureKind::kConfiguration});
}

Failure StatusFailure(const LmsCall& call, const HttpResponse& response) {
  const std::string lms_message = LmsMessage(response.body);
  const bool retryable = response.status >= 500 || response.status == 408 || response.status == 429;
  return Failure{.kind = domain::FailureKind::kServer,
                 .message = fmt::format("{} at the LMS failed: HTTP {} from {} {}{}{}", call.what,
                                        response.status, call.method, call.path,
                                        lms_message.empty() ? "" : ": ", lms_message),
                 .retryable = retryable};
}

std::string LmsMessage(std::string_view body) {
  boost::system::error_code error;
  const boost::json::value parsed = boost::json::parse(body, error);
  if (!error && parsed.is_object()) {
    const boost::json::object& object = parsed.get_object();
    for (std::string_view field : {"message", "detail", "error", "developer_message"}) {
      const boost::json::value* value = object.if_contains(field);
      if (value != nullptr && value->is_string()) {
        return SanitizeMessage(value->get_string(), kLmsMessageBytesMax);
      }
    }
  }
  return SanitizeMessage(body, kLmsMessageBytesMax);
}

bool IsSuccess(const HttpResponse& response) {
  return response.status >= 200 && response.status < 300;
}

}  // namespace ledger::fulfillment::internal
