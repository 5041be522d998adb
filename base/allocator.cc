#include "base/allocator.h"

#include <cstddef>

#if LEDGER_WITH_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

namespace ledger {

void TuneAllocator() {
#if LEDGER_WITH_TCMALLOC
  constexpr size_t kThreadCachesBytes = size_t{256} << 20;
  MallocExtension::instance()->SetNumericProperty("tcmalloc.max_total_thread_cache_bytes",
                                                  kThreadCachesBytes);
#endif
}

}  // namespace ledger
