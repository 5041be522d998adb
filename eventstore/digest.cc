#include "eventstore/digest.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "base/bytes.h"
#include "eventstore/audit_json.h"

namespace ledger::eventstore {
namespace {

void InitSodium() {
  // sodium_init is thread-safe and idempotent; it fails only when no randomness can be had.
  LEDGER_ASSERT(sodium_init() >= 0, "libsodium cannot be initialised");
}

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& bytes) {
  return ToHex(std::span<const uint8_t>(bytes));
}

Error Corruption(std::string message, uint64_t position) {
  return Error{.code = ErrorCode::kCorruption,
               .message = std::move(message),
               .current_version = std::nullopt,
               .position = position};
}

}  // namespace

std::string DigestSigningBytes(const Digest& digest) {
  std::string bytes(kDigestFormat);
  AppendBigEndian64(bytes, digest.position);
  AppendBigEndian64(bytes, digest.tree_size);
  bytes.append(reinterpret_cast<const char*>(digest.root.data()), digest.root.size());
  bytes.append(reinterpret_cast<const char*>(digest.chain_head.data()), digest.chain_head.size());
  AppendBigEndian64(bytes, static_cast<uint64_t>(digest.time_us));
  bytes.append(reinterpret_cast<const char*>(digest.key_id.data()), digest.key_id.size());
  return bytes;
}

KeyId KeyIdOf(const PublicKey& public_key) {
  const Hash256 hash = Sha256Digest(
      std::string_view(reinterpret_cast<const char*>(public_key.data()), public_key.size()));
  KeyId id{};
  std::copy_n(hash.begin(), id.size(), id.begin());
  return id;
}

SigningKey SigningKey::FromSeed(const std::array<uint8_t, 32>& seed) {
  InitSodium();
  SigningKey key;
  crypto_sign_seed_keypair(key.public_key_.data(), key.secret_key_.data(), seed.data());
  return key;
}

Result<SigningKey, std::string> SigningKey::Load(const std::string& path) {
  auto key = LoadIfPresent(path);
  if (!key) return Unexpected(std::move(key).error());
  if (!*key) return Unexpected(fmt::format("there is no signing key at {}", path));
  return std::move(**key);
}

Result<std::optional<SigningKey>, std::string> SigningKey::LoadIfPresent(const std::string& path) {
  InitSodium();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return std::optional<SigningKey>();
  if (fd < 0) {
    return Unexpected(
        fmt::format("cannot read the signing key {}: {}", path, std::strerror(errno)));
  }
  struct stat status {};
  char text[129] = {};
  const bool stated = ::fstat(fd, &status) == 0;
  const ssize_t read_bytes = ::read(fd, text, sizeof(text) - 1);
  ::close(fd);
  if (!stated || read_bytes < 0) {
    return Unexpected(fmt::format("cannot read the signing key {}", path));
  }
  if ((status.st_mode & 077) != 0) {
    return Unexpected(
        fmt::format("the signing key {} can be read by others (mode {:o}); chmod 600 it", path,
                    status.st_mode & 0777));
  }
  std::string_view hex(text, static_cast<size_t>(read_bytes));
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r' || hex.back() == ' ')) {
    hex.remove_suffix(1);
  }
  auto seed_bytes = FromHex(hex);
  if (!seed_bytes || seed_bytes->size() != 32) {
    return Unexpected(fmt::format("the signing key {} is not 64 hex digits", path));
  }
  std::array<uint8_t, 32> seed{};
  std::memcpy(seed.data(), seed_bytes->data(), seed.size());
  SigningKey key = FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  return std::optional<SigningKey>(std::move(key));
}

Result<SigningKey, std::string> SigningKey::LoadOrCreate(const std::string& path) {
  auto present = LoadIfPresent(path);
  if (!present) return Unexpected(std::move(present).error());
  if (*present) return std::move(**present);
  // None yet: a fresh seed, written to a temporary file of mode 0600 and linked into place, so
  // that two processes starting at once cannot both create one (link fails if it exists).
  std::error_code ignored;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  std::array<uint8_t, 32> seed{};
  randombytes_buf(seed.data(), seed.size());
  const std::string line = Hex(seed) + "\n";
  const std::string temporary = fmt::format("{}.tmp.{}", path, ::getpid());
  const int out = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    return Unexpected(fmt::format("cannot write {}: {}", temporary, std::strerror(errno)));
  }
  const bool written = ::write(out, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const bool synced = written && ::fsync(out) == 0;
  ::close(out);
  const bool linked = synced && ::link(temporary.c_str(), path.c_str()) == 0;
  const int link_errno = errno;
  ::unlink(temporary.c_str());
  if (!linked) {
    if (synced && link_errno == EEXIST) return LoadOrCreate(path);  // Another process won.
    return Unexpected(
        fmt::format("cannot write the signing key {}: {}", path, std::strerror(link_errno)));
  }
  SigningKey key = FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  return key;
}

void SigningKey::Sign(Digest& digest) const {
  digest.key_id = key_id();
  const std::string bytes = DigestSigningBytes(digest);
  crypto_sign_detached(digest.signature.data(), nullptr,
                       reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                       secret_key_.data());
}

bool VerifyDigestSignature(const Digest& digest, const PublicKey& public_key) {
  InitSodium();
  if (digest.key_id != KeyIdOf(public_key)) return false;
  const std::string bytes = DigestSigningBytes(digest);
  return crypto_sign_verify_detached(digest.signature.data(),
                                     reinterpret_cast<const unsigned char*>(bytes.data()),
                                     bytes.size(), public_key.data()) == 0;
}

std::string FormatRfc3339Us(int64_t time_us) {
  int64_t seconds = time_us / 1'000'000;
  int64_t micros = time_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    seconds -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm parts{};
  ::gmtime_r(&t, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &parts);
  return fmt::format("{}.{:06d}Z", text, micros);
}

std::string DigestToJson(const Digest& digest, const PublicKey& public_key) {
  return fmt::format(
      "{{\"digest\":\"{}\",\"position\":{},\"tree_size\":{},\"root\":\"{}\",\"chain_head\":\"{}\","
      "\"time\":\"{}\",\"time_us\":{},\"key_id\":\"{}\",\"public_key\":\"{}\","
      "\"signature\":\"{}\"}}",
      kDigestFormat, digest.position, digest.tree_size, Hex(digest.root), Hex(digest.chain_head),
      FormatRfc3339Us(digest.time_us), digest.time_us, Hex(digest.key_id), Hex(public_key),
      Hex(digest.signature));
}

Result<ParsedDigest, std::string> ParseDigestJson(std::string_view text) {
  using namespace audit_json;
  auto parsed = ParseObject(text);
  if (!parsed) return Unexpected("digest: " + parsed.error());
  const boost::json::object& object = *parsed;
  auto format = Text(object, "digest");
  if (!format || *format != kDigestFormat) {
    return Unexpected(fmt::format("digest: \"digest\" is not \"{}\"", kDigestFormat));
  }
  // Every key is a signed field, a view of one ("time") or the key that signed it: a key that is
  // none of these would be read by people and checked by nothing.
  static constexpr std::string_view kKeys[] = {"digest",     "position", "tree_size", "root",
                                               "chain_head", "time",     "time_us",   "key_id",
                                               "public_key", "signature"};
  for (const auto& field : object) {
    if (std::find(std::begin(kKeys), std::end(kKeys), field.key()) == std::end(kKeys)) {
      return Unexpected(fmt::format("digest: unknown field \"{}\"", std::string_view(field.key())));
    }
  }
  ParsedDigest out;
  Digest& digest = out.digest;
  auto position = Unsigned(object, "position");
  auto tree_size = Unsigned(object, "tree_size");
  auto root = HexBytes<32>(object, "root");
  auto chain_head = HexBytes<32>(object, "chain_head");
  auto time_us = Signed(object, "time_us");
  auto key_id = HexBytes<8>(object, "key_id");
  auto signature = HexBytes<64>(object, "signature");
  for (const std::string* problem :
       {position ? nullptr : &position.error(), tree_size ? nullptr : &tree_size.error(),
        root ? nullptr : &root.error(), chain_head ? nullptr : &chain_head.error(),
        time_us ? nullptr : &time_us.error(), key_id ? nullptr : &key_id.error(),
        signature ? nullptr : &signature.error()}) {
    if (problem != nullptr) return Unexpected("digest: " + *problem);
  }
  digest.position = *position;
  digest.tree_size = *tree_size;
  digest.root = *root;
  digest.chain_head = *chain_head;
  digest.time_us = *time_us;
  digest.key_id = *key_id;
  digest.signature = *signature;
  // The signature covers time_us; "time" is its text for people, which may be left out. Unchecked,
  // a changed "time" passed verification while the signed time stayed as it was.
  if (object.contains("time")) {
    auto time = Text(object, "time");
    if (!time) return Unexpected("digest: " + time.error());
    if (*time != FormatRfc3339Us(digest.time_us)) {
      return Unexpected(
          fmt::format("digest: \"time\" {} is not \"time_us\" {} ({}), the signed time", *time,
                      digest.time_us, FormatRfc3339Us(digest.time_us)));
    }
  }
  if (digest.tree_size != digest.position) {
    return Unexpected(fmt::format("digest: tree_size {} differs from position {}", digest.tree_size,
                                  digest.position));
  }
  if (object.contains("public_key")) {
    auto public_key = HexBytes<32>(object, "public_key");
    if (!public_key) return Unexpected("digest: " + public_key.error());
    if (KeyIdOf(*public_key) != digest.key_id) {
      return Unexpected(std::string("digest: \"key_id\" is not the id of \"public_key\""));
    }
    out.public_key = *public_key;
  }
  return out;
}

std::optional<PublicKey> ParsePublicKey(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (!text.empty() && text.front() == '{') {
    auto object = audit_json::ParseObject(text);
    if (!object) return std::nullopt;
    auto key = audit_json::HexBytes<32>(*object, "public_key");
    if (!key) return std::nullopt;
    return *key;
  }
  auto bytes = FromHex(text);
  if (!bytes || bytes->size() != 32) return std::nullopt;
  PublicKey key{};
  std::memcpy(key.data(), bytes->data(), key.size());
  return key;
}

StoreResult<Digest> BuildDigest(EventStore& store, MerkleNodeSource& nodes, uint64_t position,
                                int64_t time_us) {
  Digest digest;
  digest.position = position;
  digest.tree_size = position;
  digest.time_us = time_us;
  if (position > 0) {
    auto page = store.ReadAll(position, 1);
    if (!page) return Unexpected(std::move(page).error());
    if (page->events.empty() || page->events.front().position != position) {
      return Unexpected(Corruption(fmt::format("position {} cannot be read", position), position));
    }
    digest.chain_head = page->events.front().hash;
  }
  auto root = MerkleSubtreeRoot(nodes, 0, position);
  if (!root) return Unexpected(std::move(root).error());
  digest.root = *root;
  return digest;
}

StoreResult<DigestCheck> CheckLogAgainstDigest(EventStore& store, const Digest& digest,
                                               const ProgressCallback& progress) {
  DigestCheck check;
  const uint64_t head = store.HeadPosition();
  if (head < digest.position) {
    check.ok = false;
    check.position = head + 1;
    check.problem = fmt::format(
        "the log ends at position {}, before the digest's position {}: events were removed", head,
        digest.position);
    return check;
  }
  // The chain first: Verify names the first record that is damaged, missing, out of place or
  // not linked to its predecessor.
  if (digest.position > 0) {
    auto verified = store.Verify(1, digest.position, progress);
    if (!verified) return Unexpected(std::move(verified).error());
    if (!verified->ok) {
      check.ok = false;
      check.position = verified->first_bad_position;
      check.problem = verified->problem;
      return check;
    }
  }
  MerkleAccumulator tree;
  Hash256 chain_head{};
  auto scanned = store.ScanAll(
      1, digest.position,
      [&](const RecordedEvent& record) {
        tree.Append(MerkleLeafHash(record.position, record.hash));
        chain_head = record.hash;
        return true;
      },
      ScanOptions{.verify_hashes = false});  // Verify has just walked the range.
  if (!scanned) return Unexpected(std::move(scanned).error());
  if (tree.size() != digest.position) {
    return Unexpected(
        Corruption(fmt::format("the scan ended at {} events, not {}", tree.size(), digest.position),
                   tree.size() + 1));
  }
  if (chain_head != digest.chain_head) {
    check.ok = false;
    check.position = digest.position;
    check.problem = fmt::format(
        "the chain hash at position {} is {}, the digest says {}: the history up to it was "
        "rewritten",
        digest.position, Hex(chain_head), Hex(digest.chain_head));
    return check;
  }
  if (tree.Root() != digest.root) {
    check.ok = false;
    check.problem = fmt::format("the Merkle root over 1..{} is {}, the digest says {}",
                                digest.position, Hex(tree.Root()), Hex(digest.root));
  }
  return check;
}

}  // namespace ledger::eventstore
