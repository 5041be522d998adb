// Settings of the memory allocator that the programs apply at start.
#pragma once

namespace ledger {

// With tcmalloc linked (CMake option LEDGER_TCMALLOC), lets its per-thread caches hold up to
// 256 MiB in all, eight times its default. The ledger runs well over a hundred threads (HTTP
// handlers, appenders parked in the group commit, the process manager's workers), and memory is
// often freed on another thread than the one that allocated it: with the default, each thread's
// small share overflowed and handed its objects back to the central lists, under their locks, a
// seventh of the fulfillment path's CPU. Without tcmalloc it does nothing. Call it first in main.
void TuneAllocator();

}  // namespace ledger
