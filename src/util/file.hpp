// util: bounded reads of the files the program parses (configs, TSV tables, heads, events.json,
// label lists). Every parser reads through here so that a FIFO, a device such as /dev/zero or
// an unexpectedly huge file fails at once with a message naming it, instead of blocking or
// growing memory without limit.
#pragma once

#include <cstddef>
#include <string>

namespace earmark::util {

// Size caps by kind of file. A file above its cap is refused (the message says the cap).
inline constexpr size_t kMaxConfigBytes = size_t(1) << 20;        // YAML/JSON configuration, 1 MiB
inline constexpr size_t kMaxTableBytes = size_t(256) << 20;       // TSV/CSV event lists, maps, labels
inline constexpr size_t kMaxHeadJsonBytes = size_t(16) << 20;     // head.json
inline constexpr size_t kMaxHeadWeightsBytes = size_t(1) << 30;   // weights.bin
inline constexpr size_t kMaxResultsBytes = size_t(4) << 30;       // events.json of a run, score tables

// Throws earmark::Error("<path>: ...") unless `path` names an existing regular file (or a link
// to one): folders, FIFOs, sockets and devices are refused. `what` names the file's role
// ("config file", "event list") in the message.
void require_regular_file(const std::string& path, const std::string& what);

// The whole content of the regular file `path`, at most `max_bytes` long; throws
// earmark::Error naming the path, its role and the cap otherwise (also if it grows past the
// cap while being read).
std::string read_file_bounded(const std::string& path, size_t max_bytes, const std::string& what);

// "1 MiB", "256 MiB", "4 GiB": for messages.
std::string format_bytes(size_t bytes);

}  // namespace earmark::util
