// Fuzzes the evaluation readers: DCASE event lists, durations and frame score tables.
// Properties: only earmark::Error escapes; every event read has finite times with
// 0 <= onset <= offset <= kMaxTimeS and a label; a score grid is consistent.
#include <cmath>
#include <sstream>
#include <string>

#include "eval/tsv.hpp"
#include "earmark/earmark.hpp"
#include "fuzz_support.hpp"

namespace ev = earmark::eval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ev::Durations durations;
  try {
    std::istringstream in(text);
    durations = ev::parse_durations_tsv(in, "fuzz-durations.tsv");
    for (const auto& [f, d] : durations) EARMARK_FUZZ_CHECK(std::isfinite(d) && d >= 0 && d <= ev::kMaxTimeS);
  } catch (const earmark::Error&) {
  }
  const ev::Durations* const both[] = {nullptr, &durations};
  for (const ev::Durations* limits : both) {
    try {
      std::istringstream in(text);
      const ev::EventTable t = ev::parse_events_tsv(in, "fuzz.tsv", limits);
      t.check("fuzz.tsv");
      for (const auto& f : t.files())
        for (const auto& e : t.events(f)) {
          EARMARK_FUZZ_CHECK(std::isfinite(e.onset) && std::isfinite(e.offset));
          EARMARK_FUZZ_CHECK(e.onset >= 0 && e.onset <= e.offset && e.offset <= ev::kMaxTimeS);
          EARMARK_FUZZ_CHECK(!e.label.empty());
          if (limits && limits->count(f)) EARMARK_FUZZ_CHECK(e.offset <= limits->at(f) + ev::kDurationSlackS);
        }
      std::ostringstream out;
      ev::write_events_tsv(out, t);
    } catch (const earmark::Error&) {
    }
  }
  try {
    std::istringstream in(text);
    const earmark::FrameScores s = ev::parse_scores_tsv(in, "fuzz.scores.tsv");
    EARMARK_FUZZ_CHECK(s.frames >= 0 && s.values.size() == size_t(s.frames) * s.labels.size());
    if (s.frames > 0) EARMARK_FUZZ_CHECK(s.hop_s > 0 && s.frames * s.hop_s <= ev::kMaxTimeS * 1.01);
  } catch (const earmark::Error&) {
  }
  return 0;
}
