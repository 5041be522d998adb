#include "base/sha256.h"

#include <catch2/catch.hpp>

#include "base/bytes.h"

namespace ledger {
namespace {

std::string Hex(const Hash256& digest) { return ToHex(std::span<const uint8_t>(digest)); }

TEST_CASE("SHA-256 matches the FIPS 180-2 test vectors", "[sha256]") {
  CHECK(Hex(Sha256Digest("")) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Hex(Sha256Digest("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Hex(Sha256Digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("incremental SHA-256 equals one-shot and resets after Finish", "[sha256]") {
  Sha256 hasher;
  hasher.Update("ab");
  hasher.Update("c");
  CHECK(hasher.Finish() == Sha256Digest("abc"));
  hasher.Update("abc");
  CHECK(hasher.Finish() == Sha256Digest("abc"));
}

}  // namespace
}  // namespace ledger
