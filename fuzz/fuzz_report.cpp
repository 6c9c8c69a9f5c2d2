// Fuzzes the events.json reader behind `earmark report` (report::read_json).
// Properties: only earmark::Error escapes; what it returns is consistent (frame score grid
// sizes, spectrogram sizes) and can be written back.
#include <sstream>
#include <string>

#include "earmark/earmark.hpp"
#include "fuzz_support.hpp"
#include "report/writers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<earmark::FileResult> results;
  try {
    std::istringstream in(text);
    results = earmark::report::read_json(in, "fuzz-events.json");
  } catch (const earmark::Error&) {
    return 0;
  }
  for (const auto& r : results) {
    const auto& s = r.scores;
    EARMARK_FUZZ_CHECK(s.frames >= 0 && s.values.size() == size_t(s.frames) * s.labels.size());
    const auto& sp = r.spectrogram;
    EARMARK_FUZZ_CHECK(sp.values.size() == size_t(sp.bins) * size_t(sp.columns));
  }
  try {
    std::ostringstream out;
    earmark::report::write_json(out, results, true);
  } catch (const earmark::Error&) {
  }
  return 0;
}
