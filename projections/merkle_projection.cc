#include "projections/merkle_projection.h"

#include <fmt/format.h>

#include <cstring>

#include "base/bytes.h"

namespace ledger::projections {
namespace {

StoreResult<Hash256> DecodeNode(const std::optional<std::string>& value, uint32_t level,
                                uint64_t index) {
  if (!value || value->size() != 32) {
    return Unexpected(
        CorruptionError(fmt::format("merkle: the node at level {} index {} is {}", level, index,
                                    value ? "not 32 bytes" : "missing")));
  }
  Hash256 hash{};
  std::memcpy(hash.data(), value->data(), hash.size());
  return hash;
}

}  // namespace

std::string MerkleProjection::NodeKey(uint32_t level, uint64_t index) {
  std::string key = "n";
  key.push_back(static_cast<char>(level));
  AppendBigEndian64(key, index);
  return key;
}

StoreResult<void> MerkleProjection::Apply(const RecordedEvent& record,
                                          const domain::Event& /*event*/, RowBatch& rows) {
  if (!tree_) {
    // The tree of the events before this one, from the rows of its right edge.
    const uint64_t size = record.position - 1;
    std::vector<Hash256> edge;
    for (const auto& [level, index] : eventstore::MerkleAccumulator::EdgeNodes(size)) {
      auto value = rows.Get(NodeKey(level, index));
      if (!value) return Unexpected(std::move(value).error());
      auto hash = DecodeNode(*value, level, index);
      if (!hash) return Unexpected(std::move(hash).error());
      edge.push_back(*hash);
    }
    tree_ = eventstore::MerkleAccumulator::FromEdge(size, std::move(edge));
    LEDGER_ASSERT(tree_.has_value(), "EdgeNodes and FromEdge disagree");
  }
  if (record.position != tree_->size() + 1) {
    return Unexpected(CorruptionError(fmt::format("merkle: position {} follows a tree of {} leaves",
                                                  record.position, tree_->size()),
                                      record.position));
  }
  tree_->Append(eventstore::MerkleLeafHash(record.position, record.hash),
                [&rows](uint32_t level, uint64_t index, const Hash256& hash) {
                  rows.Put(
                      NodeKey(level, index),
                      std::string_view(reinterpret_cast<const char*>(hash.data()), hash.size()));
                });
  return {};
}

ProjectionFactory MerkleProjectionFactory() {
  return [] { return std::make_unique<MerkleProjection>(); };
}

StoreResult<Hash256> MerkleView::PerfectSubtree(uint32_t level, uint64_t index) {
  if (level >= 64 || ((index + 1) << level) > view_.position() ||
      (index + 1) << level >> level != index + 1) {
    return Unexpected(InvalidArgumentError(
        fmt::format("merkle: the node at level {} index {} is beyond the projection's position {}",
                    level, index, view_.position())));
  }
  auto value = view_.Get(MerkleProjection::NodeKey(level, index));
  if (!value) return Unexpected(std::move(value).error());
  return DecodeNode(*value, level, index);
}

}  // namespace ledger::projections
