// Reading and writing single Cap'n Proto messages held in std::string. Internal to eventstore/
// (only .cc files include it), so Cap'n Proto stays out of the public headers.
//
// Thread safety: free functions, safe from any thread.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ledger::eventstore::internal {

// Stored bytes are untrusted: no message of ours comes near these limits.
inline constexpr uint64_t kTraversalWordsMax = (8ull << 20) / sizeof(capnp::word);
inline constexpr int kNestingMax = 16;

// How many words reading a message of `message_words` may traverse. Our readers visit each
// object of a message once, so a well-formed message traverses at most its own size (plus the
// root); four times that leaves room. Without this bound a damaged pointer could make a
// 500-byte message a list of a million empty elements (Cap'n Proto charges each one word
// against the limit, not against the message's size): seconds of decoding and hundreds of MB
// of empty structs where an error belongs.
inline uint64_t TraversalWordsFor(uint64_t message_words) {
  return std::min(kTraversalWordsMax, message_words * 4 + 64);
}

inline std::string MessageBytes(capnp::MessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// Opens `bytes` as a message and calls `read(reader)`. Returns a description of what is wrong
// when the bytes are not a well-formed message or reading them fails; nullopt on success.
template <typename Read>
std::optional<std::string> ReadMessage(std::string_view bytes, Read&& read) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return std::to_string(bytes.size()) + " bytes is not a whole number of 8-byte words";
  }
  // Cap'n Proto reads words in place and RocksDB's buffers promise no alignment, so copy into
  // a word-aligned buffer kept per thread (messages are small).
  thread_local std::vector<capnp::word> aligned;
  aligned.resize(bytes.size() / sizeof(capnp::word));
  std::memcpy(aligned.data(), bytes.data(), bytes.size());
  try {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = TraversalWordsFor(aligned.size());
    options.nestingLimit = kNestingMax;
    capnp::FlatArrayMessageReader message(kj::arrayPtr(aligned.data(), aligned.size()), options);
    return read(message);
  } catch (const kj::Exception& exception) {
    return std::string(exception.getDescription().cStr());
  }
}

}  // namespace ledger::eventstore::internal
