// util: bounded reads of parsed files.
#include "util/file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "earmark/earmark.hpp"

namespace earmark::util {

std::string format_bytes(size_t bytes) {
  if (bytes >= (size_t(1) << 30) && bytes % (size_t(1) << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  if (bytes >= (size_t(1) << 20) && bytes % (size_t(1) << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes >= (size_t(1) << 10) && bytes % (size_t(1) << 10) == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} bytes", bytes);
}

namespace {

// stat(), not std::filesystem: one call, and errno for the message.
struct stat stat_or_throw(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT || e == ENOTDIR) throw Error(path + ": cannot open the " + what + " (no such file); check the path");
    throw Error(path + ": cannot read the " + what + " (" + std::strerror(e) + ")");
  }
  if (S_ISDIR(st.st_mode)) throw Error(path + ": is a folder, not a " + what);
  if (!S_ISREG(st.st_mode))
    throw Error(path + ": is not a regular file (a pipe, device or socket); give the " + what +
                " as a file on disk");
  return st;
}

}  // namespace

void require_regular_file(const std::string& path, const std::string& what) { stat_or_throw(path, what); }

std::string read_file_bounded(const std::string& path, size_t max_bytes, const std::string& what) {
  const struct stat st = stat_or_throw(path, what);
  auto too_big = [&] {
    return Error(fmt::format("{}: the {} is larger than {} ({} bytes); this is not a file earmark wrote or "
                             "expects, check the path",
                             path, what, format_bytes(max_bytes), st.st_size));
  };
  if (st.st_size < 0 || uint64_t(st.st_size) > max_bytes) throw too_big();
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open the " + what + " (" + std::strerror(errno) + "); check the permissions");
  std::string out(size_t(st.st_size), '\0');
  f.read(out.data(), std::streamsize(out.size()));
  out.resize(size_t(f.gcount()));
  // The file may have grown since stat(): read on, but never past the cap.
  char buf[65536];
  while (f) {
    f.read(buf, sizeof buf);
    const auto got = size_t(f.gcount());
    if (got == 0) break;
    if (out.size() + got > max_bytes) throw too_big();
    out.append(buf, got);
  }
  if (f.bad()) throw Error(path + ": reading the " + what + " failed (" + std::strerror(errno) + ")");
  return out;
}

}  // namespace earmark::util
