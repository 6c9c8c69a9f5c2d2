// SHA-256 (FIPS 180-4), for verifying model checkpoints and reporting what was loaded.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace earmark::util {

class Sha256 {
 public:
  Sha256();
  void update(std::span<const uint8_t> data);
  void update(const std::string& s) { update({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); }
  std::string hex();  // finalises

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Hex digest of a file's bytes; throws earmark::Error naming the file if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace earmark::util
