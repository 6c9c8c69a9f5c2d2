// Fuzzes what the service does with an upload before it takes it (src/serve/server.cpp,
// parse_uploads + probe_uploads): the client's file name through sanitise_upload_name, then
// the bytes staged under that name and probed with decode::AudioReader. (The multipart body
// itself is parsed by cpp-httplib.) Input: the file name up to the first newline, then the
// content.
// Properties: only earmark::Error escapes; a name that is accepted is a plain, non-empty,
// non-hidden file name of at most 100 safe characters.
#include <cmath>
#include <string>

#include "decode/decoder.hpp"
#include "earmark/earmark.hpp"
#include "fuzz_support.hpp"
#include "serve/store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  if (nl == std::string::npos) return 0;
  const std::string raw_name = in.substr(0, nl), content = in.substr(nl + 1);
  std::string name;
  try {
    name = earmark::serve::sanitise_upload_name(raw_name);
  } catch (const earmark::Error&) {
    return 0;
  }
  EARMARK_FUZZ_CHECK(!name.empty() && name.size() <= 100 && name.front() != '.');
  for (unsigned char c : name)
    EARMARK_FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                       c == '-' || c == '_');
  if (content.empty()) return 0;  // the server refuses empty uploads before probing
  const auto path = earmark::fuzz::scratch() / ("0-0-" + name);
  earmark::fuzz::write_file(path, content);
  try {
    earmark::decode::AudioReader reader(path.string());
    EARMARK_FUZZ_CHECK(std::isfinite(reader.info().duration_s));
  } catch (const earmark::Error&) {
  }
  std::error_code ec;
  std::filesystem::remove(path, ec);
  return 0;
}
