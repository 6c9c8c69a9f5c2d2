// Reading and writing the evaluation inputs: DCASE event lists, per-file durations and
// per-file frame score tables.
//
// Event lists follow the DCASE metadata format used by sed_eval, psds_eval and
// sed_scores_eval: `filename<TAB>onset<TAB>offset<TAB>event_label`, one event per row, with an
// optional header line naming the columns. A row with only a filename (or with the other
// fields empty, as pandas writes them) stands for a file with no events.
//
// Score tables follow sed_scores_eval's score file format: a header
// `onset<TAB>offset<TAB><class 1><TAB><class 2>...` and one row per frame. Earmark names them
// `<stem>.scores.tsv` (stem: the audio file name without folder and extension); the reader also
// finds sed_scores_eval's own `<stem>.tsv`.
#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "earmark/earmark.hpp"

namespace earmark::eval {

// Events of an evaluation set, by file. Files listed without events are present with an
// empty list, because they still count (audio length, segments, false alarms).
class EventTable {
 public:
  // Registers a file (no-op if known); keeps the order of first appearance.
  void add_file(const std::string& file);
  void add(const std::string& file, Event event);

  const std::vector<std::string>& files() const { return files_; }
  bool has(const std::string& file) const { return by_file_.count(file) != 0; }
  // Events of `file` in input order; empty if the file is unknown.
  const std::vector<Event>& events(const std::string& file) const;
  // Number of events over all files.
  size_t size() const;
  // Sorted, de-duplicated event labels over all files.
  std::vector<std::string> labels() const;
  // Throws earmark::Error naming `what`, the file and the event if a time is not finite, an
  // onset is negative, an offset precedes its onset or a label is empty (the TSV reader
  // already refuses these; tables built in code are checked by the metrics).
  void check(const std::string& what) const;

 private:
  std::vector<std::string> files_;
  std::map<std::string, std::vector<Event>> by_file_;
};

// Audio length in seconds by file name.
using Durations = std::map<std::string, double>;

// The longest time (seconds) any table may hold: a week. The metrics allocate per segment of
// the evaluated length, so a stray 1e9 s would otherwise ask for gigabytes.
inline constexpr double kMaxTimeS = 7 * 24 * 3600.0;
// How far past a file's --durations length an event may end (rounding, codec padding).
inline constexpr double kDurationSlackS = 1.0;

// Throws earmark::Error "<source>:<line>: <cause>; <fix>" for malformed rows: wrong column
// count, non-numeric or non-finite times, negative onset, offset < onset, empty label, a time
// beyond kMaxTimeS, or (with `durations`) an event ending more than kDurationSlackS after
// its file's listed duration.
EventTable parse_events_tsv(std::istream& in, const std::string& source, const Durations* durations = nullptr);
// Reads at most util::kMaxTableBytes from a regular file (no pipes or devices).
EventTable read_events_tsv(const std::string& path, const Durations* durations = nullptr);
// Writes a header and one row per event (a filename-only row for files without events).
void write_events_tsv(std::ostream& out, const EventTable& table);

// `filename<TAB>duration` rows, optional header (`filename<TAB>duration`).
Durations parse_durations_tsv(std::istream& in, const std::string& source);
Durations read_durations_tsv(const std::string& path);

// Frame score tables. Frame f is written as onset f*hop_s, offset (f+1)*hop_s, so that each
// offset equals the next onset exactly, which sed_scores_eval checks.
void write_scores_tsv(std::ostream& out, const FrameScores& scores);
// The rows must form a regular grid starting at 0 (within 0.1 % of the hop).
FrameScores parse_scores_tsv(std::istream& in, const std::string& source);
FrameScores read_scores_tsv(const std::string& path);

// "dir/a.flac" -> "a": the key that links an audio file to its score file.
std::string audio_stem(const std::string& filename);
// "dir/a.flac" -> "a.scores.tsv".
std::string scores_file_name(const std::string& filename);
// Loads the score table of each of `files` from `dir` (`<stem>.scores.tsv`, else `<stem>.tsv`).
// Throws naming the files that have none.
std::map<std::string, FrameScores> read_scores_dir(const std::string& dir,
                                                   const std::vector<std::string>& files);

}  // namespace earmark::eval
