// The Merkle tree of eventstore/merkle.h against an independent, straightforward recomputation:
// RFC 6962's MTH, PATH and PROOF written as the RFC's recursions over a vector of leaves, with no
// stored nodes. Random sizes, every inclusion proof of the small trees, random consistency
// pairs, and proofs with one bit flipped (which must fail).
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <vector>

#include "eventstore/merkle.h"
#include "tests/audit/audit_test_support.h"

namespace ledger::audit_testing {
namespace {

using eventstore::MerkleAccumulator;

// --- The reference: RFC 6962, section 2.1, literally. ---

Hash256 LeafOf(uint64_t position) {
  // Any 32 bytes stand for the chain hash here; derived from the position so every leaf differs.
  return Sha256Digest("event " + std::to_string(position));
}

Hash256 ReferenceLeafHash(uint64_t position) {
  std::string data(1, '\0');
  for (int shift = 56; shift >= 0; shift -= 8) {
    data.push_back(static_cast<char>((position >> shift) & 0xff));
  }
  const Hash256 event_hash = LeafOf(position);
  data.append(reinterpret_cast<const char*>(event_hash.data()), 32);
  return Sha256Digest(data);
}

Hash256 ReferenceNode(const Hash256& left, const Hash256& right) {
  std::string data(1, '\1');
  data.append(reinterpret_cast<const char*>(left.data()), 32);
  data.append(reinterpret_cast<const char*>(right.data()), 32);
  return Sha256Digest(data);
}

uint64_t ReferenceSplit(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// MTH(D[begin:end]) over leaf hashes.
Hash256 Mth(const std::vector<Hash256>& leaves, uint64_t begin, uint64_t end) {
  const uint64_t n = end - begin;
  if (n == 0) return Sha256Digest("");
  if (n == 1) return leaves[begin];
  const uint64_t k = ReferenceSplit(n);
  return ReferenceNode(Mth(leaves, begin, begin + k), Mth(leaves, begin + k, end));
}

std::vector<Hash256> Path(const std::vector<Hash256>& leaves, uint64_t m, uint64_t begin,
                          uint64_t end) {
  const uint64_t n = end - begin;
  if (n <= 1) return {};
  const uint64_t k = ReferenceSplit(n);
  std::vector<Hash256> path;
  if (m < k) {
    path = Path(leaves, m, begin, begin + k);
    path.push_back(Mth(leaves, begin + k, end));
  } else {
    path = Path(leaves, m - k, begin + k, end);
    path.push_back(Mth(leaves, begin, begin + k));
  }
  return path;
}

std::vector<Hash256> Subproof(const std::vector<Hash256>& leaves, uint64_t m, uint64_t begin,
                              uint64_t end, bool b) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (b) return {};
    return {Mth(leaves, begin, end)};
  }
  const uint64_t k = ReferenceSplit(n);
  std::vector<Hash256> proof;
  if (m <= k) {
    proof = Subproof(leaves, m, begin, begin + k, b);
    proof.push_back(Mth(leaves, begin + k, end));
  } else {
    proof = Subproof(leaves, m - k, begin + k, end, false);
    proof.push_back(Mth(leaves, begin, begin + k));
  }
  return proof;
}

std::vector<Hash256> ReferenceLeaves(uint64_t size) {
  std::vector<Hash256> leaves;
  for (uint64_t position = 1; position <= size; ++position) {
    leaves.push_back(ReferenceLeafHash(position));
  }
  return leaves;
}

// --- The code under test, fed through a MerkleAccumulator into a map of perfect subtrees. ---

class MapSource final : public eventstore::MerkleNodeSource {
 public:
  explicit MapSource(uint64_t size) {
    for (uint64_t position = 1; position <= size; ++position) {
      tree_.Append(eventstore::MerkleLeafHash(position, LeafOf(position)),
                   [this](uint32_t level, uint64_t index, const Hash256& hash) {
                     CHECK(nodes_.emplace(std::make_pair(level, index), hash).second);
                   });
    }
  }
  StoreResult<Hash256> PerfectSubtree(uint32_t level, uint64_t index) override {
    ++reads_;
    auto found = nodes_.find({level, index});
    REQUIRE(found != nodes_.end());
    return found->second;
  }
  const MerkleAccumulator& tree() const { return tree_; }
  size_t reads() const { return reads_; }
  void ResetReads() { reads_ = 0; }

 private:
  MerkleAccumulator tree_;
  std::map<std::pair<uint32_t, uint64_t>, Hash256> nodes_;
  size_t reads_ = 0;
};

Hash256 FlipBit(Hash256 hash, size_t bit) {
  hash[bit / 8 % 32] = static_cast<uint8_t>(hash[bit / 8 % 32] ^ (1u << (bit % 8)));
  return hash;
}

void CheckInclusion(MapSource& source, const std::vector<Hash256>& leaves, uint64_t size,
                    uint64_t index, std::mt19937_64& random) {
  auto proof = eventstore::MerkleInclusionProof(source, index, size);
  REQUIRE(proof);
  REQUIRE(*proof == Path(leaves, index, 0, size));
  const Hash256 root = Mth(leaves, 0, size);
  auto computed = eventstore::MerkleRootFromInclusionProof(index, size, leaves[index], *proof);
  REQUIRE(computed);
  REQUIRE(*computed == root);
  // One flipped bit anywhere (in the path, the leaf, or a wrong index) must not give the root.
  if (!proof->empty()) {
    std::vector<Hash256> damaged = *proof;
    const size_t which = random() % damaged.size();
    damaged[which] = FlipBit(damaged[which], random());
    auto wrong = eventstore::MerkleRootFromInclusionProof(index, size, leaves[index], damaged);
    CHECK((!wrong || *wrong != root));
  }
  auto wrong_leaf = eventstore::MerkleRootFromInclusionProof(
      index, size, FlipBit(leaves[index], random()), *proof);
  CHECK((!wrong_leaf || *wrong_leaf != root));
  if (size > 1) {
    const uint64_t other = (index + 1 + random() % (size - 1)) % size;
    auto wrong_index = eventstore::MerkleRootFromInclusionProof(other, size, leaves[index], *proof);
    CHECK((!wrong_index || *wrong_index != root));
  }
}

void CheckConsistency(MapSource& source, const std::vector<Hash256>& leaves, uint64_t from,
                      uint64_t to, std::mt19937_64& random) {
  auto proof = eventstore::MerkleConsistencyProof(source, from, to);
  REQUIRE(proof);
  if (from < to) {
    REQUIRE(*proof == Subproof(leaves, from, 0, to, true));
  } else {
    REQUIRE(proof->empty());
  }
  const Hash256 old_root = Mth(leaves, 0, from);
  const Hash256 new_root = Mth(leaves, 0, to);
  REQUIRE(eventstore::MerkleVerifyConsistency(from, to, old_root, new_root, *proof));
  if (!proof->empty()) {
    std::vector<Hash256> damaged = *proof;
    const size_t which = random() % damaged.size();
    damaged[which] = FlipBit(damaged[which], random());
    CHECK_FALSE(eventstore::MerkleVerifyConsistency(from, to, old_root, new_root, damaged));
  }
  CHECK_FALSE(
      eventstore::MerkleVerifyConsistency(from, to, FlipBit(old_root, random()), new_root, *proof));
  CHECK_FALSE(
      eventstore::MerkleVerifyConsistency(from, to, old_root, FlipBit(new_root, random()), *proof));
  if (from > 1 && from < to) {
    // The roots of other trees do not fit the proof.
    CHECK_FALSE(
        eventstore::MerkleVerifyConsistency(from, to, Mth(leaves, 0, from - 1), new_root, *proof));
  }
}

TEST_CASE("merkle: the leaf, node and empty hashes are RFC 6962's", "[merkle]") {
  CHECK(eventstore::MerkleLeafHash(7, LeafOf(7)) == ReferenceLeafHash(7));
  CHECK(eventstore::MerkleEmptyRoot() == Sha256Digest(""));
  const Hash256 a = LeafOf(1), b = LeafOf(2);
  CHECK(eventstore::MerkleNodeHash(a, b) == ReferenceNode(a, b));
  CHECK(eventstore::MerkleLeafData(1, a).size() == 40);
}

TEST_CASE("merkle: roots equal the recursive MTH for sizes 0..300 and some larger", "[merkle]") {
  std::vector<uint64_t> sizes;
  for (uint64_t size = 0; size <= 300; ++size) sizes.push_back(size);
  for (uint64_t size : {511u, 512u, 513u, 1000u, 1023u, 1024u, 1025u, 4097u}) {
    sizes.push_back(size);
  }
  for (uint64_t size : sizes) {
    INFO("size " << size);
    const std::vector<Hash256> leaves = ReferenceLeaves(size);
    MapSource source(size);
    const Hash256 root = Mth(leaves, 0, size);
    REQUIRE(source.tree().Root() == root);
    auto stored = eventstore::MerkleSubtreeRoot(source, 0, size);
    REQUIRE(stored);
    REQUIRE(*stored == root);
  }
}

TEST_CASE("merkle: every inclusion proof of the trees up to 70 leaves", "[merkle]") {
  std::mt19937_64 random(1);
  for (uint64_t size = 1; size <= 70; ++size) {
    const std::vector<Hash256> leaves = ReferenceLeaves(size);
    MapSource source(size);
    for (uint64_t index = 0; index < size; ++index) {
      INFO("size " << size << " leaf " << index);
      CheckInclusion(source, leaves, size, index, random);
    }
  }
}

TEST_CASE("merkle: inclusion proofs at random in random trees up to 3000 leaves", "[merkle]") {
  std::mt19937_64 random(2);
  const size_t trees = Scaled(40, 10);
  for (size_t t = 0; t < trees; ++t) {
    const uint64_t size = 1 + random() % (t < trees / 2 ? 300 : 3000);
    const std::vector<Hash256> leaves = ReferenceLeaves(size);
    MapSource source(size);
    for (int i = 0; i < 20; ++i) {
      const uint64_t index = random() % size;
      INFO("size " << size << " leaf " << index);
      CheckInclusion(source, leaves, size, index, random);
    }
  }
}

TEST_CASE("merkle: every consistency pair up to 40 leaves, random pairs up to 3000", "[merkle]") {
  std::mt19937_64 random(3);
  {
    const std::vector<Hash256> leaves = ReferenceLeaves(40);
    MapSource source(40);
    for (uint64_t to = 1; to <= 40; ++to) {
      for (uint64_t from = 1; from <= to; ++from) {
        INFO("from " << from << " to " << to);
        CheckConsistency(source, leaves, from, to, random);
      }
    }
  }
  const uint64_t size = 3000;
  const std::vector<Hash256> leaves = ReferenceLeaves(size);
  MapSource source(size);
  for (size_t i = 0; i < Scaled(200, 40); ++i) {
    uint64_t a = 1 + random() % size, b = 1 + random() % size;
    if (a > b) std::swap(a, b);
    INFO("from " << a << " to " << b);
    CheckConsistency(source, leaves, a, b, random);
  }
}

TEST_CASE("merkle: proofs of a large tree take O(log n) node reads", "[merkle]") {
  const uint64_t size = Scaled(100'000, 20'000);
  MapSource source(size);
  std::mt19937_64 random(4);
  for (int i = 0; i < 50; ++i) {
    const uint64_t index = random() % size;
    source.ResetReads();
    auto proof = eventstore::MerkleInclusionProof(source, index, size);
    REQUIRE(proof);
    CHECK(proof->size() <= 17);
    CHECK(source.reads() <= 17 * 17);
    auto root = eventstore::MerkleRootFromInclusionProof(
        index, size, eventstore::MerkleLeafHash(index + 1, LeafOf(index + 1)), *proof);
    REQUIRE(root);
    CHECK(*root == source.tree().Root());
  }
}

TEST_CASE("merkle: bad sizes are refused, not crashed on", "[merkle]") {
  MapSource source(10);
  CHECK_FALSE(eventstore::MerkleInclusionProof(source, 10, 10));
  CHECK_FALSE(eventstore::MerkleConsistencyProof(source, 0, 10));
  CHECK_FALSE(eventstore::MerkleConsistencyProof(source, 11, 10));
  const Hash256 leaf = eventstore::MerkleLeafHash(1, LeafOf(1));
  CHECK_FALSE(eventstore::MerkleRootFromInclusionProof(5, 5, leaf, {}));
  CHECK_FALSE(eventstore::MerkleRootFromInclusionProof(0, 4, leaf, {}));  // Too short.
  CHECK_FALSE(eventstore::MerkleVerifyConsistency(3, 2, leaf, leaf, {}));
  CHECK_FALSE(eventstore::MerkleVerifyConsistency(2, 3, leaf, leaf, {}));
  CHECK(eventstore::MerkleVerifyConsistency(3, 3, leaf, leaf, {}));
}

TEST_CASE("merkle: an accumulator continued from its edge equals one built whole", "[merkle]") {
  for (uint64_t size : {0u, 1u, 2u, 3u, 7u, 8u, 100u, 255u}) {
    MapSource source(size);
    std::vector<Hash256> edge;
    for (const auto& [level, index] : MerkleAccumulator::EdgeNodes(size)) {
      edge.push_back(*source.PerfectSubtree(level, index));
    }
    auto continued = MerkleAccumulator::FromEdge(size, edge);
    REQUIRE(continued);
    for (uint64_t position = size + 1; position <= size + 20; ++position) {
      continued->Append(eventstore::MerkleLeafHash(position, LeafOf(position)));
    }
    CHECK(continued->Root() == Mth(ReferenceLeaves(size + 20), 0, size + 20));
  }
  CHECK_FALSE(MerkleAccumulator::FromEdge(3, {}));
}

}  // namespace
}  // namespace ledger::audit_testing
