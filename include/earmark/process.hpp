// earmark/process.hpp: process-level settings for programs built on libearmark (the library
// itself never calls these).
#pragma once

namespace earmark {

// Keeps freed large buffers in the heap instead of returning them to the kernel. The pipeline
// allocates and frees megabyte-sized blocks per file; returned pages come back as page faults,
// which on virtual machines cost more than decoding a 10 s WAV. Call once at start-up, before
// any thread starts.
void keep_freed_memory();

}  // namespace earmark
