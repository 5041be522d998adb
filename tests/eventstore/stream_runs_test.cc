// Stream reads over the index of runs (one entry per append): from every version, with every
// count, forward and backward, across appends of different sizes interleaved with neighbouring
// streams, the store answers exactly what a model of the stream says.
#include <catch2/catch.hpp>

#include "store_test_support.h"

namespace ledger::eventstore {
namespace {

using testing::MakeEvents;
using testing::MustAppend;
using testing::RocksDbHarness;

TEST_CASE("stream reads over runs of appends match a model of the stream", "[read][runs]") {
  RocksDbHarness harness;
  EventStore& store = harness.store();
  std::vector<uint64_t> model;  // Position of each version of stream "s".
  const size_t run_sizes[] = {1, 3, 1, 5, 2, 4, 1};
  size_t run_index = 0;
  for (size_t size : run_sizes) {
    // Neighbours that share the prefix and sort right around "s"'s keys.
    MustAppend(store, "s-" + std::to_string(run_index), ExpectedVersion::Any(),
               MakeEvents("neighbour-" + std::to_string(run_index), 1));
    MustAppend(store, "r", ExpectedVersion::Any(),
               MakeEvents("before-" + std::to_string(run_index), 1));
    const AppendResult appended = MustAppend(store, "s", ExpectedVersion::Any(),
                                             MakeEvents("run-" + std::to_string(run_index), size));
    for (uint64_t p = appended.first_position; p <= appended.last_position; ++p) {
      model.push_back(p);
    }
    ++run_index;
  }
  const uint64_t versions = model.size();
  for (uint64_t from = 0; from <= versions + 1; ++from) {
    for (size_t count = 1; count <= 8; ++count) {
      auto forward = store.ReadStream("s", Direction::kForward, from, count);
      REQUIRE(forward.has_value());
      std::vector<uint64_t> expected;
      for (uint64_t v = from; v < versions && expected.size() < count; ++v) {
        expected.push_back(model[v]);
      }
      std::vector<uint64_t> got;
      for (size_t i = 0; i < forward->size(); ++i) {
        got.push_back((*forward)[i].position);
        CHECK((*forward)[i].version == from + i);
        CHECK((*forward)[i].stream == "s");
      }
      CHECK(got == expected);

      auto backward = store.ReadStream("s", Direction::kBackward, from, count);
      REQUIRE(backward.has_value());
      expected.clear();
      if (versions > 0) {
        for (uint64_t v = std::min(from, versions - 1) + 1; v-- > 0 && expected.size() < count;) {
          expected.push_back(model[v]);
        }
      }
      got.clear();
      for (const auto& event : *backward) got.push_back(event.position);
      CHECK(got == expected);
    }
  }
  auto last = store.ReadStream("s", Direction::kBackward, kEndOfStream, 1);
  REQUIRE(last.has_value());
  REQUIRE(last->size() == 1);
  CHECK(last->front().version == versions - 1);
}

}  // namespace
}  // namespace ledger::eventstore
