// Enables tcmalloc's sampled heap profile and hands it to the profiler endpoints.
#include "observe/tcmalloc/heap_sample.h"

#include <gperftools/malloc_extension.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "observe/profiler.h"

// gperftools 2.x reads TCMALLOC_SAMPLE_PARAMETER into this flag while libtcmalloc initialises,
// i.e. before main(), and rereads the flag at every sampling point (sampler.cc "supports the
// flag changing at runtime"). This is the declaration its own DECLARE_int64 macro produces; the
// symbol is exported by libtcmalloc.so.4.
namespace FLAG__namespace_do_not_use_directly_use_DECLARE_int64_instead {
extern int64_t FLAGS_tcmalloc_sample_parameter;
}

namespace sluice::observe {

namespace {

// One sample per ~4 MiB allocated on average. (gperftools' and Go's 512 KiB cost about one
// rt_sigprocmask system call per proxied request: libunwind makes two per frame it steps
// through. TCMALLOC_SAMPLE_PARAMETER picks a finer rate when one is hunting a leak.)
constexpr int64_t kSamplePeriodBytes = 4 * 1024 * 1024;

std::string tcmalloc_heap_sample() {
  std::string sample;
  MallocExtension::instance()->GetHeapSample(&sample);
  return sample;
}

}  // namespace

void install_tcmalloc_heap_sampling() {
  if (std::getenv("TCMALLOC_SAMPLE_PARAMETER") == nullptr) {
    FLAG__namespace_do_not_use_directly_use_DECLARE_int64_instead::
        FLAGS_tcmalloc_sample_parameter = kSamplePeriodBytes;
  }
  set_heap_sample_source(&tcmalloc_heap_sample);
}

}  // namespace sluice::observe
