// A Merkle tree over the log, as in RFC 6962 (Certificate Transparency), section 2.1.
//
// Leaf i (from 0) is the event at position i + 1. Its *leaf data* binds the position and the
// event's chain hash (FORMAT.md, "The Merkle tree"):
//
//   leaf data  = position (8 bytes, big-endian) || event hash (32 bytes)
//   leaf hash  = SHA-256(0x00 || leaf data)
//   node hash  = SHA-256(0x01 || left || right)
//   MTH({})    = SHA-256("")
//
// and the tree of n > 1 leaves splits at k, the largest power of two below n (RFC 6962's
// split), so that a tree of size m is a prefix of every larger tree and *consistency proofs*
// (a newer root extends an older one) are O(log n) hashes, as are *inclusion proofs* (one leaf
// is in the tree of a given root).
//
// Building proofs in O(log n) needs the hashes of internal nodes. Every subtree that appears in
// the RFC's recursion for any tree size is a *perfect* subtree (2^level leaves starting at a
// multiple of 2^level) or a node over perfect subtrees, so a store of the perfect subtrees is
// enough: MerkleNodeSource. MerkleAccumulator builds the tree leaf by leaf in O(log n) memory
// (the perfect subtrees along the right edge) and reports each perfect subtree as it completes,
// which is how the Merkle projection fills its store and how an export is checked offline.
//
// Thread safety: free functions are safe from any thread; a MerkleAccumulator or a
// MerkleNodeSource is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/sha256.h"
#include "eventstore/event_store.h"

namespace ledger::eventstore {

// The 40 bytes of leaf data of the event at `position` with chain hash `event_hash`.
std::string MerkleLeafData(uint64_t position, const Hash256& event_hash);
Hash256 MerkleLeafHash(uint64_t position, const Hash256& event_hash);
Hash256 MerkleNodeHash(const Hash256& left, const Hash256& right);
// The root of the empty tree: SHA-256 of no bytes.
Hash256 MerkleEmptyRoot();

// Where the hashes of perfect subtrees come from (a projection's rows, a map in a test).
class MerkleNodeSource {
 public:
  virtual ~MerkleNodeSource() = default;
  // The hash of the perfect subtree of 2^level leaves [index << level, (index + 1) << level).
  // kCorruption (or another error of the store) when it cannot be had.
  virtual StoreResult<Hash256> PerfectSubtree(uint32_t level, uint64_t index) = 0;
};

// MTH(D[begin:end]): the root of the tree over leaves [begin, end). O(log n) node reads for the
// ranges proofs use (begin a multiple of the largest power of two not above end - begin).
StoreResult<Hash256> MerkleSubtreeRoot(MerkleNodeSource& source, uint64_t begin, uint64_t end);

// RFC 6962 PATH(leaf_index, D[tree_size]): sibling hashes from the leaf up to the root.
// kInvalidArgument unless leaf_index < tree_size.
StoreResult<std::vector<Hash256>> MerkleInclusionProof(MerkleNodeSource& source,
                                                       uint64_t leaf_index, uint64_t tree_size);

// RFC 6962 PROOF(from_size, D[to_size]). Empty when from_size == to_size. kInvalidArgument
// unless 1 <= from_size <= to_size.
StoreResult<std::vector<Hash256>> MerkleConsistencyProof(MerkleNodeSource& source,
                                                         uint64_t from_size, uint64_t to_size);

// The root an inclusion proof leads to (RFC 9162, 2.1.3.2); nullopt when the proof cannot be one
// for (leaf_index, tree_size): wrong length, leaf_index >= tree_size. The caller compares the
// root with the one it trusts.
std::optional<Hash256> MerkleRootFromInclusionProof(uint64_t leaf_index, uint64_t tree_size,
                                                    const Hash256& leaf_hash,
                                                    std::span<const Hash256> path);

// Whether `path` proves that the tree of `from_size` leaves with root `from_root` is a prefix of
// the tree of `to_size` leaves with root `to_root` (RFC 9162, 2.1.4.2).
bool MerkleVerifyConsistency(uint64_t from_size, uint64_t to_size, const Hash256& from_root,
                             const Hash256& to_root, std::span<const Hash256> path);

// Builds the tree leaf by leaf, keeping only the perfect subtrees along the right edge (one per
// set bit of the size).
class MerkleAccumulator {
 public:
  // Called for every perfect subtree completed by an Append (the leaf itself at level 0 first).
  using NodeCallback = std::function<void(uint32_t level, uint64_t index, const Hash256& hash)>;

  MerkleAccumulator() = default;
  // Continues a tree of `size` leaves whose right-edge perfect subtrees are `edge`, largest
  // (leftmost) first: one hash per set bit of `size`, from the highest bit down. nullopt when
  // the count does not match.
  static std::optional<MerkleAccumulator> FromEdge(uint64_t size, std::vector<Hash256> edge);
  // The perfect subtrees FromEdge needs for a tree of `size` leaves, as (level, index), in the
  // order it wants them.
  static std::vector<std::pair<uint32_t, uint64_t>> EdgeNodes(uint64_t size);

  void Append(const Hash256& leaf_hash, const NodeCallback& on_node = {});
  uint64_t size() const { return size_; }
  // The root of the tree of size() leaves.
  Hash256 Root() const;

 private:
  struct Node {
    uint32_t level;
    Hash256 hash;
  };
  uint64_t size_ = 0;
  std::vector<Node> edge_;  // Levels strictly decreasing.
};

}  // namespace ledger::eventstore
