// util: giving the heap's free pages back to the kernel now and then during a long run.
#pragma once

namespace earmark::util {

// Returns the whole free pages inside the heap's arenas to the kernel (glibc's malloc_trim; a
// no-op elsewhere). Live memory is untouched; what it releases is what fragmentation and
// earmark::keep_freed_memory() keep resident. Costs a walk over the free lists.
void release_free_memory();

}  // namespace earmark::util
