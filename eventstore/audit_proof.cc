#include "eventstore/audit_proof.h"

#include <fmt/format.h>

#include "base/bytes.h"
#include "eventstore/audit_json.h"

namespace ledger::eventstore {
namespace {

namespace json = boost::json;
using namespace audit_json;

json::array PathJson(const std::vector<Hash256>& path) {
  json::array array;
  for (const Hash256& hash : path) array.emplace_back(ToHex(hash));
  return array;
}

Result<std::vector<Hash256>, std::string> ParsePath(const json::object& object) {
  auto value = Field(object, "path");
  if (!value) return Unexpected(std::move(value).error());
  if (!(*value)->is_array()) return Unexpected(std::string("\"path\" is not an array"));
  std::vector<Hash256> path;
  if ((*value)->get_array().size() > 128) return Unexpected(std::string("\"path\" is too long"));
  for (const json::value& item : (*value)->get_array()) {
    json::object wrapper;
    wrapper["hash"] = item;
    auto hash = HexBytes<32>(wrapper, "hash");
    if (!hash) return Unexpected(std::string("\"path\" holds something other than 32-byte hex"));
    path.push_back(*hash);
  }
  return path;
}

void PutDigest(json::object& object, const std::optional<ParsedDigest>& digest) {
  if (!digest) return;
  PublicKey key{};
  if (digest->public_key) key = *digest->public_key;
  auto parsed = json::parse(DigestToJson(digest->digest, key));
  if (!digest->public_key) parsed.get_object().erase("public_key");
  object["digest"] = std::move(parsed);
}

Result<std::optional<ParsedDigest>, std::string> GetDigest(const json::object& object) {
  const json::value* value = object.if_contains("digest");
  if (value == nullptr) return std::optional<ParsedDigest>();
  auto digest = ParseDigestJson(json::serialize(*value));
  if (!digest) return Unexpected(std::move(digest).error());
  return std::optional<ParsedDigest>(std::move(*digest));
}

}  // namespace

StoreResult<InclusionProof> BuildInclusionProof(EventStore& store, MerkleNodeSource& nodes,
                                                uint64_t position, uint64_t tree_size) {
  if (position == 0 || position > tree_size || tree_size > store.HeadPosition()) {
    return Unexpected(InvalidArgumentError(
        fmt::format("an inclusion proof needs 1 <= position <= tree_size <= head ({}), not {} "
                    "and {}",
                    store.HeadPosition(), position, tree_size)));
  }
  InclusionProof proof;
  proof.position = position;
  proof.tree_size = tree_size;
  auto page = store.ReadAll(position, 1);
  if (!page) return Unexpected(std::move(page).error());
  if (page->events.empty()) {
    return Unexpected(Error{.code = ErrorCode::kCorruption,
                            .message = fmt::format("position {} cannot be read", position),
                            .current_version = std::nullopt,
                            .position = position});
  }
  proof.event_hash = page->events.front().hash;
  auto path = MerkleInclusionProof(nodes, position - 1, tree_size);
  if (!path) return Unexpected(std::move(path).error());
  proof.path = std::move(*path);
  auto root = MerkleSubtreeRoot(nodes, 0, tree_size);
  if (!root) return Unexpected(std::move(root).error());
  proof.root = *root;
  return proof;
}

StoreResult<ConsistencyProof> BuildConsistencyProof(MerkleNodeSource& nodes, uint64_t from_size,
                                                    uint64_t to_size) {
  ConsistencyProof proof;
  proof.from_size = from_size;
  proof.to_size = to_size;
  auto path = MerkleConsistencyProof(nodes, from_size, to_size);
  if (!path) return Unexpected(std::move(path).error());
  proof.path = std::move(*path);
  auto from_root = MerkleSubtreeRoot(nodes, 0, from_size);
  if (!from_root) return Unexpected(std::move(from_root).error());
  auto to_root = MerkleSubtreeRoot(nodes, 0, to_size);
  if (!to_root) return Unexpected(std::move(to_root).error());
  proof.from_root = *from_root;
  proof.to_root = *to_root;
  return proof;
}

bool CheckInclusionProof(const InclusionProof& proof) {
  if (proof.position == 0) return false;
  auto root =
      MerkleRootFromInclusionProof(proof.position - 1, proof.tree_size,
                                   MerkleLeafHash(proof.position, proof.event_hash), proof.path);
  return root && *root == proof.root;
}

bool CheckConsistencyProof(const ConsistencyProof& proof) {
  return MerkleVerifyConsistency(proof.from_size, proof.to_size, proof.from_root, proof.to_root,
                                 proof.path);
}

std::string InclusionProofToJson(const InclusionProof& proof) {
  json::object object;
  object["proof"] = kInclusionProofFormat;
  object["position"] = proof.position;
  object["tree_size"] = proof.tree_size;
  object["event_hash"] = ToHex(proof.event_hash);
  object["leaf_hash"] = ToHex(MerkleLeafHash(proof.position, proof.event_hash));
  object["root"] = ToHex(proof.root);
  object["path"] = PathJson(proof.path);
  PutDigest(object, proof.digest);
  return json::serialize(object);
}

std::string ConsistencyProofToJson(const ConsistencyProof& proof) {
  json::object object;
  object["proof"] = kConsistencyProofFormat;
  object["from_size"] = proof.from_size;
  object["to_size"] = proof.to_size;
  object["from_root"] = ToHex(proof.from_root);
  object["to_root"] = ToHex(proof.to_root);
  object["path"] = PathJson(proof.path);
  PutDigest(object, proof.digest);
  return json::serialize(object);
}

Result<ParsedProof, std::string> ParseProofJson(std::string_view text) {
  auto parsed = ParseObject(text);
  if (!parsed) return Unexpected("proof: " + parsed.error());
  const json::object& object = *parsed;
  auto kind = Text(object, "proof");
  if (!kind) return Unexpected("proof: " + kind.error());
  auto path = ParsePath(object);
  if (!path) return Unexpected("proof: " + path.error());
  auto digest = GetDigest(object);
  if (!digest) return Unexpected("proof: " + digest.error());
  ParsedProof out;
  if (*kind == kInclusionProofFormat) {
    auto position = Unsigned(object, "position");
    auto tree_size = Unsigned(object, "tree_size");
    auto event_hash = HexBytes<32>(object, "event_hash");
    auto root = HexBytes<32>(object, "root");
    if (!position) return Unexpected("proof: " + position.error());
    if (!tree_size) return Unexpected("proof: " + tree_size.error());
    if (!event_hash) return Unexpected("proof: " + event_hash.error());
    if (!root) return Unexpected("proof: " + root.error());
    out.inclusion = InclusionProof{.position = *position,
                                   .tree_size = *tree_size,
                                   .event_hash = *event_hash,
                                   .root = *root,
                                   .path = std::move(*path),
                                   .digest = std::move(*digest)};
    return out;
  }
  if (*kind == kConsistencyProofFormat) {
    auto from_size = Unsigned(object, "from_size");
    auto to_size = Unsigned(object, "to_size");
    auto from_root = HexBytes<32>(object, "from_root");
    auto to_root = HexBytes<32>(object, "to_root");
    if (!from_size) return Unexpected("proof: " + from_size.error());
    if (!to_size) return Unexpected("proof: " + to_size.error());
    if (!from_root) return Unexpected("proof: " + from_root.error());
    if (!to_root) return Unexpected("proof: " + to_root.error());
    out.consistency = ConsistencyProof{.from_size = *from_size,
                                       .to_size = *to_size,
                                       .from_root = *from_root,
                                       .to_root = *to_root,
                                       .path = std::move(*path),
                                       .digest = std::move(*digest)};
    return out;
  }
  return Unexpected(fmt::format("proof: \"proof\" is neither \"{}\" nor \"{}\"",
                                kInclusionProofFormat, kConsistencyProofFormat));
}

}  // namespace ledger::eventstore
