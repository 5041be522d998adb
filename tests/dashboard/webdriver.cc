#include "tests/dashboard/webdriver.h"

#include <array>

namespace ledger::test {
namespace {

namespace json = boost::json;

// The key of an element reference in WebDriver's JSON (fixed by the W3C specification).
constexpr std::string_view kElementKey = "element-6066-11e4-a52e-4f735466cecf";

}  // namespace

WebDriver::WebDriver(uint16_t port) : port_(port) {}

Reply WebDriver::Command(std::string_view method, const std::string& path, const json::value& body,
                         bool in_session, int64_t timeout_ms) {
  std::string url = "http://127.0.0.1:" + std::to_string(port_);
  if (in_session) url += "/session/" + session_;
  url += path;
  fulfillment::HttpRequest request{.method = std::string(method),
                                   .url = url,
                                   .headers = {},
                                   .body = {},
                                   .connect_timeout_ms = 5'000,
                                   .timeout_ms = timeout_ms};
  if (method != "GET" && method != "DELETE") {
    request.headers.emplace_back("Content-Type", "application/json");
    request.body = json::serialize(body);
  }
  auto response = http_.Send(request);
  if (!response) return {.ok = false, .value = nullptr, .error = response.error().message};
  boost::system::error_code ec;
  json::value answer = json::parse(response->body, ec);
  if (ec || !answer.is_object() || !answer.as_object().contains("value")) {
    return {.ok = false,
            .value = nullptr,
            .error = "HTTP " + std::to_string(response->status) + ": " + response->body};
  }
  json::value value = answer.at("value");
  if (response->status != 200) {
    std::string error = "HTTP " + std::to_string(response->status);
    if (value.is_object() && value.as_object().contains("error")) {
      error = json::value_to<std::string>(value.at("error"));
      if (const json::value* message = value.as_object().if_contains("message");
          message != nullptr && message->is_string()) {
        // The first line: chromedriver appends a long stack trace.
        const std::string text(message->as_string());
        error += ": " + text.substr(0, text.find('\n'));
      }
    }
    return {.ok = false, .value = std::move(value), .error = error};
  }
  return {.ok = true, .value = std::move(value), .error = {}};
}

Reply WebDriver::StartSession(const std::string& binary,
                              const std::vector<std::string>& arguments) {
  json::array args;
  for (const std::string& argument : arguments) args.emplace_back(argument);
  json::object chrome_options{{"binary", binary}, {"args", std::move(args)}};
  json::object always_match{{"browserName", "chrome"},
                            {"goog:chromeOptions", std::move(chrome_options)},
                            {"pageLoadStrategy", "normal"}};
  json::object body{{"capabilities", json::object{{"alwaysMatch", std::move(always_match)}}}};
  Reply reply = Command("POST", "/session", body, /*in_session=*/false, 60'000);
  if (reply.ok) {
    const json::value* id = reply.value.as_object().if_contains("sessionId");
    if (id == nullptr || !id->is_string()) {
      return {.ok = false, .value = nullptr, .error = "no sessionId in the new session"};
    }
    session_ = std::string(id->as_string());
  }
  return reply;
}

void WebDriver::EndSession() {
  if (session_.empty()) return;
  Command("DELETE", "", nullptr, /*in_session=*/true, 10'000);
  session_.clear();
}

Reply WebDriver::Navigate(const std::string& url) {
  return Command("POST", "/url", json::object{{"url", url}});
}

Reply WebDriver::Find(const std::string& css) {
  return Command("POST", "/element", json::object{{"using", "css selector"}, {"value", css}});
}

Reply WebDriver::Click(const std::string& element) {
  return Command("POST", "/element/" + element + "/click", json::object{});
}

Reply WebDriver::SendKeys(const std::string& element, const std::string& text) {
  return Command("POST", "/element/" + element + "/value", json::object{{"text", text}});
}

Reply WebDriver::Text(const std::string& element) {
  return Command("GET", "/element/" + element + "/text", nullptr);
}

Reply WebDriver::Execute(const std::string& script, json::array arguments) {
  return Command("POST", "/execute/sync",
                 json::object{{"script", script}, {"args", std::move(arguments)}});
}

Reply WebDriver::Screenshot(std::string& png) {
  Reply reply = Command("GET", "/screenshot", nullptr);
  if (!reply.ok) return reply;
  if (!reply.value.is_string()) return {.ok = false, .value = nullptr, .error = "no PNG"};
  png = DecodeBase64(reply.value.as_string());
  if (png.size() < 8 || png.substr(1, 3) != "PNG") {
    return {.ok = false, .value = nullptr, .error = "the screenshot is not a PNG"};
  }
  return reply;
}

Reply WebDriver::ClickCss(const std::string& css) {
  Reply found = Find(css);
  if (!found.ok) return found;
  return Click(ElementId(found));
}

Reply WebDriver::TextCss(const std::string& css) {
  Reply found = Find(css);
  if (!found.ok) return found;
  return Text(ElementId(found));
}

std::string ElementId(const Reply& reply) {
  if (!reply.ok || !reply.value.is_object()) return "";
  const json::value* id = reply.value.as_object().if_contains(kElementKey);
  return id != nullptr && id->is_string() ? std::string(id->as_string()) : "";
}

std::string DecodeBase64(std::string_view text) {
  std::array<int, 256> values{};
  values.fill(-1);
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    values[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int>(i);
  }
  std::string bytes;
  bytes.reserve(text.size() / 4 * 3);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    if (c == '\n' || c == '\r') continue;
    const int value = values[static_cast<unsigned char>(c)];
    if (value < 0) return "";
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return bytes;
}

}  // namespace ledger::test
