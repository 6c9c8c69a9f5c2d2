#include "util/spill.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "earmark/earmark.hpp"

namespace earmark::util {

namespace {

std::string temp_dir() {
  const char* d = std::getenv("TMPDIR");
  return d && *d ? d : "/tmp";
}

[[noreturn]] void fail(const std::string& what, int err) {
  throw Error("the temporary file that holds a long recording's frame data (in " + temp_dir() + "): " + what +
              " failed (" + std::strerror(err) +
              "); point TMPDIR at a folder with free space, or raise model.spill_after_s to keep it in memory");
}

void write_all(int fd, const void* data, size_t bytes, off_t offset) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pwrite(fd, p, bytes, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("writing", n < 0 ? errno : ENOSPC);
    p += n;
    bytes -= size_t(n);
    offset += off_t(n);
  }
}

void read_all(int fd, void* data, size_t bytes, off_t offset) {
  auto* p = static_cast<char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, p, bytes, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("reading", n < 0 ? errno : EIO);
    p += n;
    bytes -= size_t(n);
    offset += off_t(n);
  }
}

int open_temp() {
  std::string path = temp_dir() + "/earmark-frames-XXXXXX";
  const int fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) fail("creating", errno);
  ::unlink(path.c_str());  // gone when closed, even after a crash
  return fd;
}

}  // namespace

Spill16::Spill16(size_t width, size_t block_rows, size_t cache_pages, size_t memory_values)
    : width_(std::max<size_t>(width, 1)),
      block_rows_(std::max<size_t>(block_rows, 1)),
      block_values_(width_ * block_rows_),
      cache_pages_(std::max<size_t>(cache_pages, 1)),
      memory_values_(memory_values) {}

Spill16::~Spill16() {
  if (fd_ >= 0) ::close(fd_);
}

Spill16::Spill16(const Spill16& o)
    : width_(o.width_),
      block_rows_(o.block_rows_),
      block_values_(o.block_values_),
      cache_pages_(o.cache_pages_),
      memory_values_(o.memory_values_),
      size_(o.size_),
      flushed_(o.flushed_),
      tail_(o.tail_) {
  if (!o.spilled()) return;
  start_file();
  std::vector<char> buf(1 << 20);
  const size_t bytes = flushed_ * sizeof(uint16_t);
  for (size_t off = 0; off < bytes; off += buf.size()) {
    const size_t n = std::min(buf.size(), bytes - off);
    read_all(o.fd_, buf.data(), n, off_t(off));
    write_all(fd_, buf.data(), n, off_t(off));
  }
}

void Spill16::start_file() {
  fd_ = open_temp();
  cache_.assign(cache_pages_ * block_rows_, 0);
  tags_.assign(cache_pages_, 0);
}

void Spill16::spill() {
  if (fd_ < 0) start_file();
  if (tail_.size() >= block_values_) flush_blocks();
}

// The file holds block b's values at b * block_values_, column-major: column c's block_rows_
// values at (b * width_ + c) * block_rows_, i.e. page b * width_ + c.
size_t Spill16::page_of(size_t i) const {
  const size_t row = i / width_, col = i % width_;
  return (row / block_rows_) * width_ + col;
}

uint16_t Spill16::get_written(size_t i) const {
  const size_t page = page_of(i), slot = page % cache_pages_;
  const size_t r = (i / width_) % block_rows_;
  std::lock_guard lock(mutex_);
  uint16_t* values = cache_.data() + slot * block_rows_;
  if (tags_[slot] != page + 1) {
    read_all(fd_, values, block_rows_ * sizeof(uint16_t), off_t(page * block_rows_ * sizeof(uint16_t)));
    tags_[slot] = page + 1;
  }
  return values[r];
}

void Spill16::set(size_t i, uint16_t v) {
  if (i >= flushed_) {
    tail_[i - flushed_] = v;
    return;
  }
  const size_t page = page_of(i), r = (i / width_) % block_rows_;
  write_all(fd_, &v, sizeof v, off_t((page * block_rows_ + r) * sizeof(uint16_t)));
  std::lock_guard lock(mutex_);
  if (const size_t slot = page % cache_pages_; tags_[slot] == page + 1) cache_[slot * block_rows_ + r] = v;
}

void Spill16::flush_blocks() {
  const size_t blocks = tail_.size() / block_values_;
  std::vector<uint16_t> columns(block_values_);
  for (size_t k = 0; k < blocks; ++k) {
    const uint16_t* rows = tail_.data() + k * block_values_;
    for (size_t r = 0; r < block_rows_; ++r)
      for (size_t c = 0; c < width_; ++c) columns[c * block_rows_ + r] = rows[r * width_ + c];
    write_all(fd_, columns.data(), block_values_ * sizeof(uint16_t), off_t((flushed_ + k * block_values_) * sizeof(uint16_t)));
  }
  tail_.erase(tail_.begin(), tail_.begin() + long(blocks * block_values_));
  flushed_ += blocks * block_values_;
}

void Spill16::reopen_block(size_t b) {
  std::vector<uint16_t> columns(block_values_);
  read_all(fd_, columns.data(), block_values_ * sizeof(uint16_t), off_t(b * block_values_ * sizeof(uint16_t)));
  std::vector<uint16_t> rows(block_values_);
  for (size_t r = 0; r < block_rows_; ++r)
    for (size_t c = 0; c < width_; ++c) rows[r * width_ + c] = columns[c * block_rows_ + r];
  rows.insert(rows.end(), tail_.begin(), tail_.end());
  tail_ = std::move(rows);
  flushed_ = b * block_values_;
  std::lock_guard lock(mutex_);
  for (size_t s = 0; s < cache_pages_; ++s)
    if (tags_[s] != 0 && (tags_[s] - 1) / width_ >= b) tags_[s] = 0;
}

void Spill16::resize(size_t n, uint16_t v) {
  while (n < flushed_) reopen_block(flushed_ / block_values_ - 1);
  if (n <= size_) {
    tail_.resize(n - flushed_);
    size_ = n;
    return;
  }
  while (size_ < n) push_back(v);
}

}  // namespace earmark::util
