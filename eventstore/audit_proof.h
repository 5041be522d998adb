// Inclusion and consistency proofs of the Merkle tree over the log (eventstore/merkle.h) as
// self-contained values with a JSON form, so that a proof can be saved, handed over and checked
// later with no server (FORMAT.md, "Proofs").
//
//   {"proof":"orderledger.inclusion.v1","position":P,"tree_size":N,"event_hash":H,
//    "leaf_hash":L,"root":R,"path":[...]}
//   {"proof":"orderledger.consistency.v1","from_size":M,"to_size":N,"from_root":A,
//    "to_root":B,"path":[...]}
//
// Either may carry a "digest" (eventstore/digest.h): the signed digest whose tree the proof is
// about. Checking a proof recomputes the root from the path; the caller then compares the roots
// with digests it trusts.
//
// Thread safety: free functions, safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/digest.h"
#include "eventstore/event_store.h"
#include "eventstore/merkle.h"

namespace ledger::eventstore {

inline constexpr std::string_view kInclusionProofFormat = "orderledger.inclusion.v1";
inline constexpr std::string_view kConsistencyProofFormat = "orderledger.consistency.v1";

struct InclusionProof {
  uint64_t position = 0;  // The event's position: leaf position - 1.
  uint64_t tree_size = 0;
  Hash256 event_hash{};  // The event's chain hash.
  Hash256 root{};        // The root of the tree of tree_size leaves.
  std::vector<Hash256> path;
  std::optional<ParsedDigest> digest;
};

struct ConsistencyProof {
  uint64_t from_size = 0;
  uint64_t to_size = 0;
  Hash256 from_root{};
  Hash256 to_root{};
  std::vector<Hash256> path;
  std::optional<ParsedDigest> digest;  // Of the newer tree, when the server signed one.
};

// The proof that the event at `position` is in the tree of `tree_size` leaves; `nodes` must
// cover that tree. kInvalidArgument unless 1 <= position <= tree_size <= head.
StoreResult<InclusionProof> BuildInclusionProof(EventStore& store, MerkleNodeSource& nodes,
                                                uint64_t position, uint64_t tree_size);
StoreResult<ConsistencyProof> BuildConsistencyProof(MerkleNodeSource& nodes, uint64_t from_size,
                                                    uint64_t to_size);

// Whether the path leads from the event's leaf to proof.root.
bool CheckInclusionProof(const InclusionProof& proof);
// Whether the path shows that proof.from_root's tree is a prefix of proof.to_root's.
bool CheckConsistencyProof(const ConsistencyProof& proof);

std::string InclusionProofToJson(const InclusionProof& proof);
std::string ConsistencyProofToJson(const ConsistencyProof& proof);

// A proof of either kind, as parsed from JSON.
struct ParsedProof {
  std::optional<InclusionProof> inclusion;
  std::optional<ConsistencyProof> consistency;
};
Result<ParsedProof, std::string> ParseProofJson(std::string_view text);

}  // namespace ledger::eventstore
