#include <malloc.h>

#include "earmark/process.hpp"
#include "util/memory.hpp"

namespace earmark {

// Blocks up to 64 MB come from the heap (not mmap, whose pages are returned on free), and the
// heap's top is returned to the kernel only beyond 256 MB free.
void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace earmark

namespace earmark::util {

void release_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace earmark::util
