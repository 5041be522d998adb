// The fulfillment modules, one per product type the ledger knows (domain/status.h), and the
// settings of those that call the LMS.
//
//   "enrollment"          Seat: POST /api/enrollment/v1/enrollment on the LMS. Revoke posts
//                         is_active false; a 400 saying "Enrollment mode mismatch" counts as
//                         revoked (the learner moved to another mode), as in the original.
//   "course_entitlement"  Course Entitlement: POST /api/entitlements/v1/entitlements/; the uuid
//                         the LMS returns is the line's external reference. Revoke deletes it.
//   "enrollment_code"     Enrollment Code: mints `quantity` codes derived from (order number,
//                         line id), no I/O: a retry mints the same codes, never a second batch.
//   "coupon", "donation"  Complete at once, no I/O.
//
// Revoking an enrollment code, coupon or donation line succeeds at once with a note: nothing
// outside the ledger was created, so nothing outside it is undone. The codes and the coupon stop
// being valid because the ledger records the line as Revoked: whatever redeems them must ask the
// ledger (the original raised instead, and a refund of such a line could never complete).
//
// Line attributes the LMS modules read:
//   course_key        Seat: the course run id, e.g. "course-v1:edX+DemoX+Demo_Course".
//   course_uuid       Course Entitlement: the course's uuid.
//   certificate_type  the mode ("verified", "professional", ...); else
//   seat_type         the mode; else "audit".
//
// Failure mapping of the LMS modules: a 2xx answer -> success; any other status ->
// kServer (retryable for 5xx, 408, 429); connection refused, reset or closed before an answer
// -> kNetwork; no answer within timeout_ms -> kTimeout; missing URL, API key, username or
// attribute -> kConfiguration (not retryable).
//
// Thread safety: every module is safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fulfillment/http_client.h"
#include "fulfillment/module.h"

namespace ledger::fulfillment {

inline constexpr std::string_view kEnrollmentModule = "enrollment";
inline constexpr std::string_view kCourseEntitlementModule = "course_entitlement";
inline constexpr std::string_view kEnrollmentCodeModule = "enrollment_code";
inline constexpr std::string_view kCouponModule = "coupon";
inline constexpr std::string_view kDonationModule = "donation";

// How to reach the LMS.
struct LmsSettings {
  // "http://host:port", no path. Empty: every line fails with a configuration error.
  std::string lms_url{};
  // Sent as X-Edx-Api-Key. Empty: every line fails with a configuration error.
  std::string api_key{};
  // Bound on the LMS's answer once connected (the original's 7 s).
  int64_t timeout_ms = 7'000;
  // Bound on setting up the connection.
  int64_t connect_timeout_ms = 7'000;

  friend bool operator==(const LmsSettings&, const LmsSettings&) = default;
};

// The LMS endpoints, relative to lms_url.
inline constexpr std::string_view kEnrollmentPath = "/api/enrollment/v1/enrollment";
inline constexpr std::string_view kEntitlementsPath = "/api/entitlements/v1/entitlements/";

// `http_client` is shared by the LMS modules and must not be null.
std::unique_ptr<Module> MakeEnrollmentModule(LmsSettings settings,
                                             std::shared_ptr<HttpClient> http_client);
std::unique_ptr<Module> MakeCourseEntitlementModule(LmsSettings settings,
                                                    std::shared_ptr<HttpClient> http_client);
// `secret` keys the codes (see MintEnrollmentCodes); with none, each line fails as a
// configuration error.
std::unique_ptr<Module> MakeEnrollmentCodeModule(std::string secret);
std::unique_ptr<Module> MakeCouponModule();
std::unique_ptr<Module> MakeDonationModule();

// The mode a line asks for: certificate_type, else seat_type, else "audit".
std::string_view ModeForLine(const domain::Line& line);

// The enrollment codes of a line: `quantity` codes of kEnrollmentCodeLength characters of
// Crockford's base32 alphabet (0-9, A-Z without I, L, O, U), code i taken from
// HMAC-SHA-256(secret; order number, line id, i). The same arguments always give the same codes
// (a retry never mints a second batch), and without the ledger's secret nobody can compute them
// from an order number.
inline constexpr size_t kEnrollmentCodeLength = 16;
std::vector<std::string> MintEnrollmentCodes(std::string_view secret, std::string_view order_number,
                                             std::string_view line_id, int64_t quantity);

}  // namespace ledger::fulfillment
