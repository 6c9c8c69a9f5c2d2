// Process-level memory settings for Earmark's programs (not called by the library itself).
#pragma once

namespace earmark::util {

// Keeps freed large buffers in the heap instead of returning them to the kernel. The pipeline
// allocates and frees megabyte-sized blocks per file; returned pages come back as page faults,
// which on virtual machines cost more than decoding a 10 s WAV. Call once at start-up.
void keep_freed_memory();

}  // namespace earmark::util
