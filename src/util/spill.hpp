// util: a grid of 16-bit values that lives in a temporary file once it grows long, so that a
// long recording's per-frame data does not grow the process's memory with the file's length.
//
// Values are appended row by row (`width` values per row, flat index = row * width + column)
// and stay in memory up to a limit. Past it an unlinked temporary file (in TMPDIR, else /tmp) is
// made, and from then on rows are gathered in blocks of `block_rows`; every completed block is
// written to the file, column by column, and dropped from memory. Reads of
// written values go through a small direct-mapped cache of (block, column) pages, so both a
// column's scan over the whole file (one class's scores) and a row's scan (all classes at one
// moment) read each page once. Memory: the open block plus the cache, whatever the length.
//
// Reads are safe from several threads at once (the cache is locked); writes are not.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

namespace earmark::util {

class Spill16 {
 public:
  // `cache_pages` pages of `block_rows` values are cached once values are on disk. Up to
  // `memory_values` values stay in memory (SIZE_MAX: all of them, no file).
  Spill16(size_t width, size_t block_rows, size_t cache_pages, size_t memory_values = SIZE_MAX);
  ~Spill16();
  // A copy gets a temporary file of its own (copied on disk, not through memory).
  Spill16(const Spill16& o);
  Spill16& operator=(const Spill16&) = delete;

  size_t width() const { return width_; }
  size_t memory_values() const { return memory_values_; }
  // Changes the limit; only before the limit was first passed.
  void limit_memory(size_t values) { memory_values_ = values; }
  // Past the limit: the temporary file exists.
  bool spilled() const { return fd_ >= 0; }
  size_t size() const { return size_; }
  void reserve(size_t n) { tail_.reserve(std::min(n, memory_values_ + block_values_)); }
  uint16_t get(size_t i) const {
    if (i >= flushed_) return tail_[i - flushed_];
    return get_written(i);
  }
  void set(size_t i, uint16_t v);
  void push_back(uint16_t v) {
    tail_.push_back(v);
    ++size_;
    if (size_ > memory_values_) spill();
  }
  // Shrinks or grows (with `v`) to n values.
  void resize(size_t n, uint16_t v);

 private:
  uint16_t get_written(size_t i) const;
  // Past the limit: makes the file (the first time; its errors surface here) and writes the
  // completed blocks.
  void spill();
  void start_file();
  void flush_blocks();
  // Reads block b back into the open block (a shrink into written values).
  void reopen_block(size_t b);
  size_t page_of(size_t i) const;

  size_t width_, block_rows_, block_values_, cache_pages_, memory_values_;
  int fd_ = -1;
  size_t size_ = 0;     // values
  size_t flushed_ = 0;  // values in the file: whole blocks
  std::vector<uint16_t> tail_;  // values [flushed_, size_), row-major
  mutable std::mutex mutex_;
  mutable std::vector<uint16_t> cache_;  // cache_pages_ x block_rows_ values (once spilled)
  mutable std::vector<size_t> tags_;     // page + 1 held by each cache slot; 0: none
};

}  // namespace earmark::util
