// MerkleProjection: the hashes of the perfect subtrees of the Merkle tree over the log
// (eventstore/merkle.h), kept in the state store so that inclusion and consistency proofs and
// digests take O(log n) reads instead of a walk of the log.
//
// It is a projection like the others: deterministic, rebuilt from the log by the runner, off the
// append path, and its rows are committed with its checkpoint, so a view at checkpoint c holds
// every perfect subtree of the tree of c leaves. Rows (relative to the generation):
//
//   n <level: 1 byte> <index: 8 bytes big-endian>  ->  32-byte hash
//
// where the node covers leaves [index << level, (index + 1) << level); level 0 holds the leaf
// hashes. A log of n events has fewer than 2n rows.
//
// It is not in projections::DefaultProjections(): ledgerd and ledgerctl run it where the audit
// features need it (server/audit_api.h, server/ledgerctl_audit.cc).
//
// Thread safety: as for every Projection (driven by its runner's thread); a MerkleView may be
// read from any one thread.
#pragma once

#include <optional>
#include <string>

#include "eventstore/merkle.h"
#include "projections/projection.h"

namespace ledger::projections {

inline constexpr std::string_view kMerkleProjectionName = "merkle";

class MerkleProjection final : public Projection {
 public:
  std::string_view name() const override { return kMerkleProjectionName; }
  StoreResult<void> Apply(const RecordedEvent& record, const domain::Event& event,
                          RowBatch& rows) override;
  void Reset() override { tree_.reset(); }

  static std::string NodeKey(uint32_t level, uint64_t index);

 private:
  // The right edge of the tree so far; loaded from the rows at the first event after a Reset.
  std::optional<eventstore::MerkleAccumulator> tree_;
};

ProjectionFactory MerkleProjectionFactory();

// The perfect subtrees of a view of the Merkle projection, for trees of up to view.position()
// leaves.
class MerkleView final : public eventstore::MerkleNodeSource {
 public:
  explicit MerkleView(ProjectionView view) : view_(std::move(view)) {}
  // The largest tree this view can prove things about.
  uint64_t tree_size_max() const { return view_.position(); }
  StoreResult<Hash256> PerfectSubtree(uint32_t level, uint64_t index) override;

 private:
  ProjectionView view_;
};

}  // namespace ledger::projections
