// The projection crash test's child process: runs the order status projection live while placing
// orders, until it is killed. Usage: projection_crash_worker <log dir> <state dir> <seed> <prefix>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "eventstore/state_store.h"
#include "order_workload.h"
#include "projections/order_status_projection.h"
#include "projections/projection_runner.h"

int main(int argc, char** argv) {
  using namespace ledger;
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <log dir> <state dir> <seed> <prefix>\n", argv[0]);
    return 2;
  }
  auto store = eventstore::OpenRocksDbEventStore(argv[1]);
  auto state = eventstore::OpenRocksDbStateStore(argv[2]);
  if (!store || !state) {
    std::fprintf(stderr, "worker: cannot open the ledger\n");
    return 1;
  }
  auto runner = projections::ProjectionRunner::Open(
      **store, **state, [] { return std::make_unique<projections::OrderStatusProjection>(); },
      {.batch_events_max = 16, .idle_wait = std::chrono::milliseconds(2)});
  if (!runner) {
    std::fprintf(stderr, "worker: %s\n", runner.error().ToString().c_str());
    return 1;
  }
  (*runner)->Start();
  eventstore::OrderCommandService service(**store);
  testing::OrderWorkload workload(service, std::strtoull(argv[3], nullptr, 10), argv[4]);
  std::fprintf(stdout, "ready\n");
  std::fflush(stdout);
  for (;;) workload.AddOrder();  // Until SIGKILL.
}
