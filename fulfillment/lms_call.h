// Internal to fulfillment/: one call to the LMS and how its result becomes a Failure. Shared by
// the enrollment and entitlement modules.
//
// Thread safety: pure functions over a thread-safe HttpClient.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "fulfillment/http_client.h"
#include "fulfillment/module.h"
#include "fulfillment/modules.h"

namespace ledger::fulfillment::internal {

struct LmsCall {
  std::string method{};
  std::string path{};  // Relative to lms_url, starting with '/'.
  std::string body{};  // JSON; empty for none.
  std::string idempotency_key{};
  // What the call does, for messages: "enrolling alice in course-v1:X (mode verified)".
  std::string what{};
};

// A configuration failure when the settings lack the URL or the API key; nullopt otherwise.
std::optional<Failure> CheckSettings(const LmsSettings& settings, std::string_view module);

// Sends the call. Any HTTP answer is a response; no answer is a Failure (network, timeout,
// configuration for a bad URL, server for a garbled answer).
Result<HttpResponse, Failure> CallLms(HttpClient& client, const LmsSettings& settings,
                                      const LmsCall& call);

// The failure an unwanted HTTP status means: kServer, retryable for 5xx, 408 and 429, with the
// status and the LMS's own message.
Failure StatusFailure(const LmsCall& call, const HttpResponse& response);

// The LMS's message in an answer: the JSON body's "message", "detail", "error" or
// "developer_message" field, else the body's first bytes; empty for an empty body.
std::string LmsMessage(std::string_view body);

bool IsSuccess(const HttpResponse& response);

}  // namespace ledger::fulfillment::internal
