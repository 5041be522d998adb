// Signed digests of the log: the ledger's Ed25519 signature (libsodium) over the state of the
// log at one position — its chain head hash and the root of the Merkle tree over positions
// 1..position (eventstore/merkle.h) — and the time it was taken.
//
// A digest kept somewhere the ledger cannot write (an auditor's mailbox, another cloud) pins the
// history up to its position: an export, a live ledger or a newer digest that disagrees with it
// has been changed. FORMAT.md ("Signed digests") gives the signed bytes and the JSON form.
//
// The signing key is a 32-byte Ed25519 seed kept as 64 hexadecimal digits in a file of mode
// 0600 (the ledger's data directory by default); its *key id* is the first 8 bytes of SHA-256
// over the public key.
//
// Thread safety: a SigningKey is immutable after loading and may sign from any thread; free
// functions are safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/sha256.h"
#include "eventstore/event_store.h"
#include "eventstore/merkle.h"

namespace ledger::eventstore {

inline constexpr std::string_view kDigestFormat = "orderledger.digest.v1";

// Where ledgerd keeps its signing key and appends its periodic digests by default, relative to
// the data directory (both configurable in its [audit] table).
inline constexpr std::string_view kDefaultSigningKeyFile = "audit/signing.key";
inline constexpr std::string_view kDefaultDigestFile = "audit/digests.jsonl";

using PublicKey = std::array<uint8_t, 32>;
using KeyId = std::array<uint8_t, 8>;
using Signature = std::array<uint8_t, 64>;

struct Digest {
  uint64_t position = 0;   // The last position covered; 0 for an empty log.
  uint64_t tree_size = 0;  // Leaves of the Merkle tree: equal to position (positions are dense).
  Hash256 root{};          // MTH over positions 1..tree_size.
  Hash256 chain_head{};    // The chain hash of the event at `position`; zero for position 0.
  int64_t time_us = 0;     // When it was signed, µs since the Unix epoch.
  KeyId key_id{};
  Signature signature{};

  friend bool operator==(const Digest&, const Digest&) = default;
};

// The canonical bytes the signature covers (FORMAT.md): the format tag, then every field but
// the signature, fixed width, big-endian.
std::string DigestSigningBytes(const Digest& digest);

KeyId KeyIdOf(const PublicKey& public_key);

class SigningKey {
 public:
  // Reads the seed from `path`, or creates the file (mode 0600, parent directories too) with a
  // fresh random seed when there is none. An error text when it cannot be read or written, is
  // malformed, or can be read by others than its owner.
  static Result<SigningKey, std::string> LoadOrCreate(const std::string& path);
  // Reads the seed from `path`, which must exist (the same errors, and one when it does not).
  static Result<SigningKey, std::string> Load(const std::string& path);
  // A key from a known seed (tests).
  static SigningKey FromSeed(const std::array<uint8_t, 32>& seed);

  // The key at `path`, or nullopt when there is no file there.
  static Result<std::optional<SigningKey>, std::string> LoadIfPresent(const std::string& path);

  const PublicKey& public_key() const { return public_key_; }
  KeyId key_id() const { return KeyIdOf(public_key_); }
  // Sets digest.key_id and signs the digest's canonical bytes into digest.signature.
  void Sign(Digest& digest) const;

 private:
  SigningKey() = default;
  std::array<uint8_t, 64> secret_key_{};  // libsodium's form: seed || public key.
  PublicKey public_key_{};
};

// Whether `digest` carries the key id of `public_key` and a valid signature by it.
bool VerifyDigestSignature(const Digest& digest, const PublicKey& public_key);

// The digest as one line of JSON (no newline), with the public key that signed it.
std::string DigestToJson(const Digest& digest, const PublicKey& public_key);

struct ParsedDigest {
  Digest digest;
  // The public key the digest names, when it does (it is checked against key_id). A verifier
  // that has its own copy of the ledger's key should use that instead.
  std::optional<PublicKey> public_key;
};
// Parses DigestToJson's form; an error text naming what is wrong: a field missing or mistyped, a
// key DigestToJson does not write, a "time" (optional) that is not the text of the signed
// "time_us". The signature is not checked.
Result<ParsedDigest, std::string> ParseDigestJson(std::string_view text);
// Parses a public key: 64 hex digits, or a JSON object with "public_key" (as GET
// /v1/audit/public-key answers), surrounding white space ignored.
std::optional<PublicKey> ParsePublicKey(std::string_view text);

// The unsigned digest of the log at `position` (<= the head): the chain hash of the event there
// and the Merkle root over 1..position from `nodes`, which must cover that tree.
StoreResult<Digest> BuildDigest(EventStore& store, MerkleNodeSource& nodes, uint64_t position,
                                int64_t time_us);

// What CheckLogAgainstDigest found.
struct DigestCheck {
  bool ok = true;
  // When !ok: the position found bad (0 when the problem is not one event's), and what is wrong.
  uint64_t position = 0;
  std::string problem;
};

// Walks the log from position 1 to digest.position: checks the hash chain (each record's own
// hash and its link to its predecessor), then that the chain head and the Merkle root there are
// the digest's. Does not check the signature (VerifyDigestSignature). Store errors other than
// a damaged record are returned as errors; a damaged record is a !ok check naming it.
StoreResult<DigestCheck> CheckLogAgainstDigest(EventStore& store, const Digest& digest,
                                               const ProgressCallback& progress = {});

// "2026-11-22T10:00:00.000000Z".
std::string FormatRfc3339Us(int64_t time_us);

}  // namespace ledger::eventstore
