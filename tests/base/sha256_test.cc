#include "base/sha256.h"

#include <catch2/catch.hpp>
#include <string>

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

TEST_CASE("HMAC-SHA-256 matches the RFC 4231 test vectors", "[sha256]") {
  CHECK(Hex(HmacSha256(std::string(20, '\x0b'), "Hi There")) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(Hex(HmacSha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // A key longer than the block is hashed first.
  CHECK(Hex(HmacSha256(std::string(131, '\xaa'),
                       "Test Using Larger Than Block-Size Key - Hash Key First")) ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
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
