// LmsStandin: a small real HTTP server that plays the LMS for tests and for the run command's
// default setup. It implements the endpoints the fulfillment modules call, keeps what it created
// in memory, remembers the first successful answer to each Idempotency-Key, counts the effects it
// performs, and can be told to misbehave.
//
//   POST   /api/enrollment/v1/enrollment            {user, is_active, mode, course_details:
//                                                    {course_id}} -> 200 with the enrollment.
//                                                    is_active false on an enrollment in another
//                                                    mode -> 400 "Enrollment mode mismatch ...".
//   POST   /api/entitlements/v1/entitlements/       {user, course_uuid, mode, order_number}
//                                                    -> 201 with a new "uuid".
//   DELETE /api/entitlements/v1/entitlements/<uuid>/ -> 204; 404 for an unknown uuid.
//   Every API call needs X-Edx-Api-Key: missing -> 401, wrong -> 403.
//
// A repeated Idempotency-Key whose first request succeeded (2xx) gets that first answer again,
// and no effect is performed; failed first attempts are not remembered, so a retry performs it.
// The same key on another method or path -> 422.
//
// Control endpoints (no API key; the stand-in listens on loopback):
//   POST /control/faults   {"fail_next": N, "status": 500}: answer the next N API calls with
//                          that status (before any effect); {"drop_next": N}: close the next N
//                          API connections without answering (before any effect);
//                          {"delay_next": N, "delay_ms": 9000}: perform the next N API calls but
//                          answer only after delay_ms. Fields given replace the current ones.
//   GET  /control/stats    {"requests", "control_requests", "connections_accepted", "replays",
//                          "bad_requests", "effects_by_kind": {...}, "effects_by_key": {...},
//                          "faults": {...}}
//   GET  /control/records  {"enrollments": [...], "entitlements": [...]}
//   POST /control/reset    forgets everything: records, keys, counters, faults.
// Effect kinds: "enrollment", "unenrollment", "entitlement", "entitlement_revocation".
//
// Thread safety: all methods are safe from any thread; the server runs on a thread of its own.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace ledger::server {

struct LmsStandinOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: the system picks a free port (see LmsStandin::port()).
  // The X-Edx-Api-Key callers must send. Empty: any non-empty key is accepted.
  std::string api_key{};
};

struct LmsFaults {
  uint64_t fail_next = 0;
  int fail_status = 500;
  uint64_t drop_next = 0;
  uint64_t delay_next = 0;
  int64_t delay_ms = 0;
};

struct LmsEnrollment {
  std::string user{};
  std::string course_id{};
  std::string mode{};
  bool is_active = false;
};

struct LmsEntitlement {
  std::string uuid{};
  std::string user{};
  std::string course_uuid{};
  std::string mode{};
  std::string order_number{};
  bool revoked = false;
};

struct LmsStandinStats {
  uint64_t requests = 0;          // API requests received (whole, parsed).
  uint64_t control_requests = 0;  // /control/* requests.
  uint64_t connections_accepted = 0;
  uint64_t replays = 0;       // Answers repeated for a known Idempotency-Key.
  uint64_t bad_requests = 0;  // Requests that were not HTTP or broke a limit.
  std::map<std::string, uint64_t> effects_by_kind{};
  std::map<std::string, uint64_t> effects_by_key{};
  LmsFaults faults{};  // The faults still to come.

  uint64_t Effects(const std::string& kind) const;
  uint64_t EffectsForKey(const std::string& idempotency_key) const;
};

class LmsStandin {
 public:
  // Binds and starts serving on a thread of its own; an error text when it cannot bind.
  static Result<std::unique_ptr<LmsStandin>, std::string> Start(LmsStandinOptions options);
  // Stops serving (as Stop()).
  ~LmsStandin();
  LmsStandin(const LmsStandin&) = delete;
  LmsStandin& operator=(const LmsStandin&) = delete;

  uint16_t port() const;
  // "http://address:port".
  std::string url() const;

  // Closes the listening socket and every connection, and joins the server thread. Idempotent.
  void Stop();

  // The same as the control endpoints, for in-process callers.
  LmsStandinStats Stats() const;
  std::vector<LmsEnrollment> Enrollments() const;
  std::vector<LmsEntitlement> Entitlements() const;
  void SetFaults(const LmsFaults& faults);
  void Reset();

 private:
  class Impl;
  explicit LmsStandin(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ledger::server
