// tcmalloc glue for /debug/pprof/heap, compiled into the `sluice` binary only when it links
// tcmalloc (SLUICE_ALLOCATOR=tcmalloc), so sluice_core, the mock and the tests stay allocator-free.
#pragma once

namespace sluice::observe {

/// Turns on tcmalloc's allocation sampling (unless TCMALLOC_SAMPLE_PARAMETER already set it) and
/// installs tcmalloc's heap sample as the source of /debug/pprof/heap. Called by main() first.
void install_tcmalloc_heap_sampling();

}  // namespace sluice::observe
