// A small client of the W3C WebDriver protocol (JSON over HTTP), enough to drive Debian's headless
// Chromium through chromedriver from a test: a session, navigation, elements found by CSS
// selector, clicks, keys, text, scripts and screenshots. Built on the fulfillment HttpClient and
// Boost.JSON; nothing else.
//
// Calls return a Reply instead of throwing: a test polls (the page redraws, an element goes stale,
// an answer is late), so a failed call is an ordinary value to try again with.
//
// Thread safety: one WebDriver per thread.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fulfillment/http_client.h"

namespace ledger::test {

struct Reply {
  bool ok = false;
  boost::json::value value;  // The answer's "value".
  std::string error;         // "no such element: ...", or the transport's failure.
};

class WebDriver {
 public:
  explicit WebDriver(uint16_t port);

  // Starts a browser: `binary` with `arguments`. The session's id is kept for the other calls.
  Reply StartSession(const std::string& binary, const std::vector<std::string>& arguments);
  // Closes the browser (best effort; chromedriver's process is the caller's to stop).
  void EndSession();
  bool has_session() const { return !session_.empty(); }

  Reply Navigate(const std::string& url);
  // The element's reference, or an error ("no such element").
  Reply Find(const std::string& css);
  Reply Click(const std::string& element);
  Reply SendKeys(const std::string& element, const std::string& text);
  Reply Text(const std::string& element);
  // Runs `script` (a function body; `arguments` are its arguments) and answers what it returns.
  Reply Execute(const std::string& script, boost::json::array arguments = {});
  // The viewport as PNG bytes (in `error` when it failed).
  Reply Screenshot(std::string& png);

  // Convenience over Find: the first element matching `css`, then Click / Text on it.
  Reply ClickCss(const std::string& css);
  // The element's text; empty with ok false when there is no such element.
  Reply TextCss(const std::string& css);

  // Any command: `path` below /session/<id> when `in_session`.
  Reply Command(std::string_view method, const std::string& path, const boost::json::value& body,
                bool in_session = true, int64_t timeout_ms = 30'000);

 private:
  uint16_t port_;
  std::string session_;
  fulfillment::HttpClient http_;
};

// The element reference in a Find reply ("" when none).
std::string ElementId(const Reply& reply);

// Standard base64 to bytes; empty when `text` is not base64.
std::string DecodeBase64(std::string_view text);

}  // namespace ledger::test
