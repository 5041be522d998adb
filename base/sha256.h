// SHA-256, incremental and one-shot. Backed by OpenSSL's libcrypto, which uses the CPU's SHA
// extensions where present (several times faster than a portable implementation of our own).
//
// Thread safety: a Sha256 object is not thread-safe; Sha256Digest() is.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace ledger {

using Hash256 = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view bytes);
  void Update(const void* data, size_t size);
  // Returns the digest and resets the object for a new message.
  Hash256 Finish();

 private:
  void* context_;  // EVP_MD_CTX*, kept out of the header.
};

Hash256 Sha256Digest(std::string_view bytes);

// HMAC-SHA-256 (RFC 2104) of `message` under `key`: a digest only the key's holders can compute.
Hash256 HmacSha256(std::string_view key, std::string_view message);

}  // namespace ledger
