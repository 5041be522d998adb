#include "fulfillment/module.h"

#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/event_id.h"

namespace ledger::fulfillment {
namespace {

// The byte length of the UTF-8 sequence starting at `text[i]`, or 0 when it is not a valid one.
size_t Utf8SequenceSize(std::string_view text, size_t i) {
  const auto lead = static_cast<uint8_t>(text[i]);
  size_t size = 0;
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) size = 2;
  if (lead >= 0xe0 && lead <= 0xef) size = 3;
  if (lead >= 0xf0 && lead <= 0xf4) size = 4;
  if (size == 0 || i + size > text.size()) return 0;
  // Let the one validator we trust judge overlong forms, surrogates and the upper bound.
  return IsValidUtf8(text.substr(i, size)) ? size : 0;
}

}  // namespace

void AppendKeyField(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

std::string IdempotencyKey(std::string_view order_number, std::string_view line_id,
                           std::string_view operation) {
  std::string name;
  AppendKeyField(name, order_number);
  AppendKeyField(name, line_id);
  AppendKeyField(name, operation);
  return EventId::FromName("fulfillment-idempotency-key", name).ToString();
}

std::string_view FindAttribute(const domain::Line& line, std::string_view name) {
  for (const domain::Attribute& attribute : line.attributes) {
    if (attribute.name == name) return attribute.value;
  }
  return {};
}

std::string SanitizeMessage(std::string_view text, size_t bytes_max) {
  std::string out;
  out.reserve(std::min(text.size(), bytes_max));
  size_t i = 0;
  while (i < text.size()) {
    const size_t size = Utf8SequenceSize(text, i);
    const size_t emitted = size == 0 ? 1 : size;
    if (out.size() + emitted > bytes_max) break;
    if (size == 0) {
      out += '?';
    } else if (size == 1 && (static_cast<uint8_t>(text[i]) < 0x20 || text[i] == 0x7f)) {
      out += ' ';
    } else {
      out.append(text.substr(i, size));
    }
    i += emitted;
  }
  return out;
}

LineOutcome Succeeded(const domain::Line& line, std::string_view module, Fulfillment fulfillment) {
  return LineOutcome{
      .line_id = line.line_id, .module = std::string(module), .result = std::move(fulfillment)};
}

LineOutcome Failed(const domain::Line& line, std::string_view module, Failure failure) {
  failure.message = SanitizeMessage(failure.message, kFailureMessageBytesMax);
  return LineOutcome{.line_id = line.line_id,
                     .module = std::string(module),
                     .result = Unexpected(std::move(failure))};
}

}  // namespace ledger::fulfillment
