#include "util/memory.hpp"

#include <malloc.h>

namespace earmark::util {

void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace earmark::util
