#include "eventstore/merkle.h"

#include <fmt/format.h>

#include <bit>

#include "base/bytes.h"

namespace ledger::eventstore {
namespace {

// The largest power of two strictly below n (n >= 2).
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

// RFC 6962 PATH(m, D[begin:end]), appended to `path` leaf first.
StoreResult<void> AppendPath(MerkleNodeSource& source, uint64_t m, uint64_t begin, uint64_t end,
                             std::vector<Hash256>& path) {
  const uint64_t n = end - begin;
  if (n <= 1) return {};
  const uint64_t k = SplitPoint(n);
  if (m < k) {
    auto deeper = AppendPath(source, m, begin, begin + k, path);
    if (!deeper) return deeper;
    auto sibling = MerkleSubtreeRoot(source, begin + k, end);
    if (!sibling) return Unexpected(std::move(sibling).error());
    path.push_back(*sibling);
  } else {
    auto deeper = AppendPath(source, m - k, begin + k, end, path);
    if (!deeper) return deeper;
    auto sibling = MerkleSubtreeRoot(source, begin, begin + k);
    if (!sibling) return Unexpected(std::move(sibling).error());
    path.push_back(*sibling);
  }
  return {};
}

// RFC 6962 SUBPROOF(m, D[begin:end], b), appended to `path`.
StoreResult<void> AppendSubproof(MerkleNodeSource& source, uint64_t m, uint64_t begin, uint64_t end,
                                 bool complete, std::vector<Hash256>& path) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (complete) return {};
    auto root = MerkleSubtreeRoot(source, begin, end);
    if (!root) return Unexpected(std::move(root).error());
    path.push_back(*root);
    return {};
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    auto deeper = AppendSubproof(source, m, begin, begin + k, complete, path);
    if (!deeper) return deeper;
    auto right = MerkleSubtreeRoot(source, begin + k, end);
    if (!right) return Unexpected(std::move(right).error());
    path.push_back(*right);
  } else {
    auto deeper = AppendSubproof(source, m - k, begin + k, end, false, path);
    if (!deeper) return deeper;
    auto left = MerkleSubtreeRoot(source, begin, begin + k);
    if (!left) return Unexpected(std::move(left).error());
    path.push_back(*left);
  }
  return {};
}

}  // namespace

std::string MerkleLeafData(uint64_t position, const Hash256& event_hash) {
  std::string data;
  data.reserve(40);
  AppendBigEndian64(data, position);
  data.append(reinterpret_cast<const char*>(event_hash.data()), event_hash.size());
  return data;
}

Hash256 MerkleLeafHash(uint64_t position, const Hash256& event_hash) {
  Sha256 sha;
  const uint8_t prefix = 0x00;
  sha.Update(&prefix, 1);
  sha.Update(MerkleLeafData(position, event_hash));
  return sha.Finish();
}

Hash256 MerkleNodeHash(const Hash256& left, const Hash256& right) {
  Sha256 sha;
  const uint8_t prefix = 0x01;
  sha.Update(&prefix, 1);
  sha.Update(left.data(), left.size());
  sha.Update(right.data(), right.size());
  return sha.Finish();
}

Hash256 MerkleEmptyRoot() { return Sha256Digest(""); }

StoreResult<Hash256> MerkleSubtreeRoot(MerkleNodeSource& source, uint64_t begin, uint64_t end) {
  LEDGER_ASSERT(begin <= end, "MerkleSubtreeRoot: begin after end");
  const uint64_t n = end - begin;
  if (n == 0) return MerkleEmptyRoot();
  if (IsPowerOfTwo(n) && begin % n == 0) {
    return source.PerfectSubtree(static_cast<uint32_t>(std::countr_zero(n)), begin / n);
  }
  const uint64_t k = SplitPoint(n);
  auto left = MerkleSubtreeRoot(source, begin, begin + k);
  if (!left) return left;
  auto right = MerkleSubtreeRoot(source, begin + k, end);
  if (!right) return right;
  return MerkleNodeHash(*left, *right);
}

StoreResult<std::vector<Hash256>> MerkleInclusionProof(MerkleNodeSource& source,
                                                       uint64_t leaf_index, uint64_t tree_size) {
  if (leaf_index >= tree_size) {
    return Unexpected(
        InvalidArgumentError(fmt::format("leaf {} (position {}) is not in a tree of {} leaves",
                                         leaf_index, leaf_index + 1, tree_size)));
  }
  std::vector<Hash256> path;
  auto built = AppendPath(source, leaf_index, 0, tree_size, path);
  if (!built) return Unexpected(std::move(built).error());
  return path;
}

StoreResult<std::vector<Hash256>> MerkleConsistencyProof(MerkleNodeSource& source,
                                                         uint64_t from_size, uint64_t to_size) {
  if (from_size == 0 || from_size > to_size) {
    return Unexpected(InvalidArgumentError(fmt::format(
        "a consistency proof needs 1 <= from_size <= to_size, not {} and {}", from_size, to_size)));
  }
  std::vector<Hash256> path;
  if (from_size == to_size) return path;
  auto built = AppendSubproof(source, from_size, 0, to_size, true, path);
  if (!built) return Unexpected(std::move(built).error());
  return path;
}

std::optional<Hash256> MerkleRootFromInclusionProof(uint64_t leaf_index, uint64_t tree_size,
                                                    const Hash256& leaf_hash,
                                                    std::span<const Hash256> path) {
  if (leaf_index >= tree_size) return std::nullopt;
  uint64_t fn = leaf_index;
  uint64_t sn = tree_size - 1;
  Hash256 r = leaf_hash;
  for (const Hash256& p : path) {
    if (sn == 0) return std::nullopt;
    if ((fn & 1) != 0 || fn == sn) {
      r = MerkleNodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = MerkleNodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return std::nullopt;
  return r;
}

bool MerkleVerifyConsistency(uint64_t from_size, uint64_t to_size, const Hash256& from_root,
                             const Hash256& to_root, std::span<const Hash256> path) {
  if (from_size == 0 || from_size > to_size) return false;
  if (from_size == to_size) return path.empty() && from_root == to_root;
  if (path.empty()) return false;
  // RFC 9162, 2.1.4.2: when from_size is a power of two, the old root is itself the first node
  // of the path (the proof leaves it out).
  std::vector<Hash256> nodes;
  nodes.reserve(path.size() + 1);
  if (IsPowerOfTwo(from_size)) nodes.push_back(from_root);
  nodes.insert(nodes.end(), path.begin(), path.end());
  uint64_t fn = from_size - 1;
  uint64_t sn = to_size - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash256 fr = nodes.front();
  Hash256 sr = nodes.front();
  for (size_t i = 1; i < nodes.size(); ++i) {
    const Hash256& c = nodes[i];
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      fr = MerkleNodeHash(c, fr);
      sr = MerkleNodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = MerkleNodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && fr == from_root && sr == to_root;
}

std::vector<std::pair<uint32_t, uint64_t>> MerkleAccumulator::EdgeNodes(uint64_t size) {
  std::vector<std::pair<uint32_t, uint64_t>> nodes;
  uint64_t offset = 0;
  for (int bit = 63; bit >= 0; --bit) {
    const uint64_t width = uint64_t{1} << bit;
    if ((size & width) == 0) continue;
    nodes.emplace_back(static_cast<uint32_t>(bit), offset >> bit);
    offset += width;
  }
  return nodes;
}

std::optional<MerkleAccumulator> MerkleAccumulator::FromEdge(uint64_t size,
                                                             std::vector<Hash256> edge) {
  const auto nodes = EdgeNodes(size);
  if (nodes.size() != edge.size()) return std::nullopt;
  MerkleAccumulator accumulator;
  accumulator.size_ = size;
  for (size_t i = 0; i < nodes.size(); ++i) {
    accumulator.edge_.push_back(Node{.level = nodes[i].first, .hash = edge[i]});
  }
  return accumulator;
}

void MerkleAccumulator::Append(const Hash256& leaf_hash, const NodeCallback& on_node) {
  const uint64_t index = size_;
  ++size_;
  edge_.push_back(Node{.level = 0, .hash = leaf_hash});
  if (on_node) on_node(0, index, leaf_hash);
  while (edge_.size() >= 2 && edge_[edge_.size() - 2].level == edge_.back().level) {
    const Node right = edge_.back();
    edge_.pop_back();
    Node& left = edge_.back();
    left.hash = MerkleNodeHash(left.hash, right.hash);
    left.level = right.level + 1;
    // The merged subtree ends at leaf size_ - 1, so it is number (size_ >> level) - 1.
    if (on_node) on_node(left.level, (size_ >> left.level) - 1, left.hash);
  }
}

Hash256 MerkleAccumulator::Root() const {
  if (edge_.empty()) return MerkleEmptyRoot();
  Hash256 root = edge_.back().hash;
  for (size_t i = edge_.size() - 1; i-- > 0;) root = MerkleNodeHash(edge_[i].hash, root);
  return root;
}

}  // namespace ledger::eventstore
