#include "base/sha256.h"

#include <algorithm>

#include <openssl/evp.h>

#include "base/assert.h"

namespace ledger {

namespace {
// Fetched once: EVP_MD_fetch is costly and the algorithm object is immutable and thread-safe.
const EVP_MD* Sha256Algorithm() {
  static const EVP_MD* algorithm = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  LEDGER_ASSERT(algorithm != nullptr, "libcrypto has no SHA256");
  return algorithm;
}

EVP_MD_CTX* Context(void* context) { return static_cast<EVP_MD_CTX*>(context); }
}  // namespace

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  LEDGER_ASSERT(context_ != nullptr, "EVP_MD_CTX_new failed");
  LEDGER_ASSERT(EVP_DigestInit_ex(Context(context_), Sha256Algorithm(), nullptr) == 1,
                "EVP_DigestInit_ex failed");
}

Sha256::~Sha256() { EVP_MD_CTX_free(Context(context_)); }

void Sha256::Update(const void* data, size_t size) {
  LEDGER_ASSERT(EVP_DigestUpdate(Context(context_), data, size) == 1, "EVP_DigestUpdate failed");
}

void Sha256::Update(std::string_view bytes) { Update(bytes.data(), bytes.size()); }

Hash256 Sha256::Finish() {
  Hash256 digest{};
  unsigned int size = 0;
  LEDGER_ASSERT(EVP_DigestFinal_ex(Context(context_), digest.data(), &size) == 1 && size == 32,
                "EVP_DigestFinal_ex failed");
  LEDGER_ASSERT(EVP_DigestInit_ex(Context(context_), Sha256Algorithm(), nullptr) == 1,
                "EVP_DigestInit_ex failed");
  return digest;
}

Hash256 Sha256Digest(std::string_view bytes) {
  // One context per thread: EVP_Digest would allocate and free a context on every call, which
  // costs about as much as hashing a small record.
  thread_local Sha256 hasher;
  hasher.Update(bytes);
  return hasher.Finish();
}

Hash256 HmacSha256(std::string_view key, std::string_view message) {
  constexpr size_t kBlock = 64;
  std::array<uint8_t, kBlock> block{};
  if (key.size() > kBlock) {
    const Hash256 hashed = Sha256Digest(key);
    std::copy(hashed.begin(), hashed.end(), block.begin());
  } else {
    std::copy(key.begin(), key.end(), block.begin());
  }
  std::array<uint8_t, kBlock> inner_pad{}, outer_pad{};
  for (size_t i = 0; i < kBlock; ++i) {
    inner_pad[i] = static_cast<uint8_t>(block[i] ^ 0x36);
    outer_pad[i] = static_cast<uint8_t>(block[i] ^ 0x5c);
  }
  Sha256 hasher;
  hasher.Update(inner_pad.data(), inner_pad.size());
  hasher.Update(message);
  const Hash256 inner = hasher.Finish();
  hasher.Update(outer_pad.data(), outer_pad.size());
  hasher.Update(inner.data(), inner.size());
  return hasher.Finish();
}

}  // namespace ledger
