#include "eval/tsv.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <istream>
#include <optional>
#include <ostream>
#include <set>

#include <sstream>

#include "eval/text.hpp"
#include "util/file.hpp"

namespace earmark::eval {

namespace fs = std::filesystem;

void EventTable::add_file(const std::string& file) {
  if (by_file_.emplace(file, std::vector<Event>{}).second) files_.push_back(file);
}

void EventTable::add(const std::string& file, Event event) {
  add_file(file);
  by_file_[file].push_back(std::move(event));
}

const std::vector<Event>& EventTable::events(const std::string& file) const {
  static const std::vector<Event> kNone;
  auto it = by_file_.find(file);
  return it == by_file_.end() ? kNone : it->second;
}

size_t EventTable::size() const {
  size_t n = 0;
  for (const auto& [file, events] : by_file_) n += events.size();
  return n;
}

std::vector<std::string> EventTable::labels() const {
  std::set<std::string> s;
  for (const auto& [file, events] : by_file_)
    for (const auto& e : events) s.insert(e.label);
  return {s.begin(), s.end()};
}

void EventTable::check(const std::string& what) const {
  for (const auto& file : files_)
    for (const auto& e : by_file_.at(file))
      if (!std::isfinite(e.onset) || !std::isfinite(e.offset) || e.onset < 0 || e.offset < e.onset ||
          e.label.empty())
        throw Error(fmt::format("{}: {}: event [{}, {}] '{}' is invalid; times must be finite seconds with "
                                "0 <= onset <= offset and the label must not be empty",
                                what, file, e.onset, e.offset, e.label));
}

namespace {

// The whole file, bounded (a FIFO or device is refused, not read forever).
std::istringstream open_or_throw(const std::string& path, const char* what, size_t max_bytes) {
  return std::istringstream(util::read_file_bounded(path, max_bytes, std::string(what) + " file"));
}

// Times past kMaxTimeS are refused wherever a table gives one.
bool beyond_limit(double t) { return t > kMaxTimeS; }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

}  // namespace

EventTable parse_events_tsv(std::istream& in, const std::string& source, const Durations* durations) {
  EventTable table;
  // Column positions; without a header the DCASE order is assumed.
  size_t c_file = 0, c_on = 1, c_off = 2, c_label = 3, n_cols = 4;
  // Earmark's own lists have a `kind` column: background segments are not events.
  std::optional<size_t> c_kind;
  bool first = true;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    strip_cr(line);
    if (trim(line).empty()) continue;
    std::vector<std::string> f = split(line, '\t');
    for (auto& x : f) x = std::string(trim(x));
    if (first) {
      first = false;
      std::map<std::string, size_t> pos;
      for (size_t i = 0; i < f.size(); ++i) pos[lower(f[i])] = i;
      if (pos.count("filename")) {
        for (const char* need : {"onset", "offset", "event_label"})
          if (!pos.count(need))
            throw Error(fmt::format("{}:{}: header has no '{}' column; the header must name filename, onset, "
                                    "offset and event_label (tab-separated)",
                                    source, line_no, need));
        c_file = pos["filename"], c_on = pos["onset"], c_off = pos["offset"], c_label = pos["event_label"];
        if (pos.count("kind")) c_kind = pos["kind"];
        n_cols = f.size();
        continue;
      }
    }
    const std::string where = fmt::format("{}:{}", source, line_no);
    // A file without events: a lone filename, or a full row whose other fields are empty.
    if (f.size() == 1 && c_file != 0)
      throw Error(fmt::format("{}: 1 column, expected {} as in the header", where, n_cols));
    if (f.size() == 1 || f.size() == n_cols) {
      const std::string& file = f[f.size() == 1 ? 0 : c_file];
      if (file.empty()) throw Error(where + ": empty filename; every row names its audio file");
      bool others_empty = true;
      for (size_t i = 0; i < f.size(); ++i)
        if (i != c_file && !f[i].empty()) others_empty = false;
      if (others_empty) {
        table.add_file(file);
        continue;
      }
    }
    if (f.size() != n_cols)
      throw Error(fmt::format("{}: {} columns, expected {} (filename, onset, offset, event_label separated by tabs)",
                              where, f.size(), n_cols));
    const std::string& file = f[c_file];
    if (c_kind && f[*c_kind] == "background") {  // a steady sound's stretch: the file still counts
      table.add_file(file);
      continue;
    }
    Event e;
    if (!parse_double(f[c_on], e.onset))
      throw Error(fmt::format("{}: onset '{}' is not a number; write seconds, e.g. 1.25", where, f[c_on]));
    if (!parse_double(f[c_off], e.offset))
      throw Error(fmt::format("{}: offset '{}' is not a number; write seconds, e.g. 1.25", where, f[c_off]));
    if (e.onset < 0)
      throw Error(fmt::format("{}: negative onset {}; times are seconds from the start of the file", where, e.onset));
    if (e.offset < e.onset)
      throw Error(fmt::format("{}: offset {} is before onset {}; swap or fix the times", where, e.offset, e.onset));
    if (beyond_limit(e.offset))
      throw Error(fmt::format("{}: offset {} s is beyond {} s (a week), the longest recording earmark evaluates; "
                              "times are seconds from the start of the file",
                              where, e.offset, kMaxTimeS));
    if (durations) {
      const auto d = durations->find(file);
      if (d != durations->end() && e.offset > d->second + kDurationSlackS)
        throw Error(fmt::format("{}: event ends at {} s but '{}' lasts {} s (--durations); fix the times or the "
                                "duration",
                                where, e.offset, file, d->second));
    }
    e.label = f[c_label];
    if (e.label.empty()) throw Error(where + ": empty event_label; give the class name");
    table.add(file, std::move(e));
  }
  return table;
}

EventTable read_events_tsv(const std::string& path, const Durations* durations) {
  auto f = open_or_throw(path, "event list", util::kMaxTableBytes);
  return parse_events_tsv(f, path, durations);
}

void write_events_tsv(std::ostream& out, const EventTable& table) {
  out << "filename\tonset\toffset\tevent_label\n";
  for (const auto& file : table.files()) {
    const auto& events = table.events(file);
    if (events.empty()) out << file << "\n";
    for (const auto& e : events) out << fmt::format("{}\t{}\t{}\t{}\n", file, e.onset, e.offset, e.label);
  }
}

Durations parse_durations_tsv(std::istream& in, const std::string& source) {
  Durations d;
  std::string line;
  int line_no = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++line_no;
    strip_cr(line);
    if (trim(line).empty()) continue;
    std::vector<std::string> f = split(line, '\t');
    for (auto& x : f) x = std::string(trim(x));
    const std::string where = fmt::format("{}:{}", source, line_no);
    if (first) {
      first = false;
      if (lower(f[0]) == "filename") continue;
    }
    if (f.size() != 2)
      throw Error(fmt::format("{}: {} columns, expected 2 (filename<TAB>duration in seconds)", where, f.size()));
    double v = 0;
    if (!parse_double(f[1], v) || v < 0)
      throw Error(fmt::format("{}: duration '{}' is not a non-negative number of seconds", where, f[1]));
    if (beyond_limit(v))
      throw Error(fmt::format("{}: duration {} s is beyond {} s (a week), the longest recording earmark evaluates",
                              where, v, kMaxTimeS));
    auto [it, inserted] = d.emplace(f[0], v);
    if (!inserted && it->second != v)
      throw Error(fmt::format("{}: '{}' listed again with another duration ({} vs {}); keep one row per file",
                              where, f[0], v, it->second));
  }
  return d;
}

Durations read_durations_tsv(const std::string& path) {
  auto f = open_or_throw(path, "durations", util::kMaxTableBytes);
  return parse_durations_tsv(f, path);
}

void write_scores_tsv(std::ostream& out, const FrameScores& scores) {
  const size_t k = scores.labels.size();
  if (scores.frames < 0 || scores.values.size() != size_t(scores.frames) * k)
    throw Error(fmt::format("frame scores: {} values for {} frames x {} labels; the score grid is inconsistent",
                            scores.values.size(), scores.frames, k));
  if (!(scores.hop_s > 0)) throw Error("frame scores: hop_s must be > 0");
  out << "onset\toffset";
  for (const auto& l : scores.labels) {
    if (l.find_first_of("\t\r\n") != std::string::npos)
      throw Error("frame scores: label '" + l + "' contains a tab or line break; it cannot be written as TSV");
    out << '\t' << l;
  }
  out << '\n';
  std::string row;
  for (int f = 0; f < scores.frames; ++f) {
    row = fmt::format("{}\t{}", f * scores.hop_s, (f + 1) * scores.hop_s);
    for (size_t c = 0; c < k; ++c) fmt::format_to(std::back_inserter(row), "\t{}", scores.values.printable(size_t(f) * k + c));
    row += '\n';
    out << row;
  }
}

FrameScores parse_scores_tsv(std::istream& in, const std::string& source) {
  FrameScores s;
  std::string line;
  int line_no = 0;
  bool header = false;
  std::vector<double> onsets, offsets;
  while (std::getline(in, line)) {
    ++line_no;
    strip_cr(line);
    if (trim(line).empty()) continue;
    std::vector<std::string> f = split(line, '\t');
    const std::string where = fmt::format("{}:{}", source, line_no);
    if (!header) {
      if (f.size() < 3 || trim(f[0]) != "onset" || trim(f[1]) != "offset")
        throw Error(where + ": a score table starts with the header onset<TAB>offset<TAB><class>...; "
                            "this does not look like one");
      for (size_t i = 2; i < f.size(); ++i) s.labels.emplace_back(trim(f[i]));
      header = true;
      continue;
    }
    if (f.size() != s.labels.size() + 2)
      throw Error(fmt::format("{}: {} columns, the header has {}", where, f.size(), s.labels.size() + 2));
    double on = 0, off = 0;
    if (!parse_double(trim(f[0]), on) || !parse_double(trim(f[1]), off))
      throw Error(where + ": onset/offset are not numbers");
    if (beyond_limit(off))
      throw Error(fmt::format("{}: offset {} s is beyond {} s (a week), the longest recording earmark evaluates",
                              where, off, kMaxTimeS));
    onsets.push_back(on);
    offsets.push_back(off);
    for (size_t i = 2; i < f.size(); ++i) {
      double v = 0;
      if (!parse_double(trim(f[i]), v))
        throw Error(fmt::format("{}: score '{}' (column {}) is not a number", where, f[i], s.labels[i - 2]));
      s.values.push_back(float(v));
    }
  }
  if (!header) throw Error(source + ": empty score table; expected a header onset<TAB>offset<TAB><class>...");
  s.frames = int(onsets.size());
  if (s.frames == 0) return s;
  s.hop_s = offsets[0] - onsets[0];
  if (!(s.hop_s > 0)) throw Error(source + ": first frame has offset <= onset; frames must have positive length");
  const double tol = 1e-3 * s.hop_s;
  for (int f = 0; f < s.frames; ++f) {
    if (std::abs(onsets[size_t(f)] - f * s.hop_s) > tol || std::abs(offsets[size_t(f)] - (f + 1) * s.hop_s) > tol)
      throw Error(fmt::format("{}: frame {} spans [{}, {}] but a regular grid from 0 with hop {} s puts it at "
                              "[{}, {}]; earmark reads scores on a regular grid only",
                              source, f + 1, onsets[size_t(f)], offsets[size_t(f)], s.hop_s, f * s.hop_s,
                              (f + 1) * s.hop_s));
  }
  return s;
}

FrameScores read_scores_tsv(const std::string& path) {
  auto f = open_or_throw(path, "score table", util::kMaxResultsBytes);
  return parse_scores_tsv(f, path);
}

std::string audio_stem(const std::string& filename) {
  fs::path p(filename);
  std::string name = p.filename().string();
  const auto dot = name.rfind('.');
  if (dot != std::string::npos && dot > 0) name.resize(dot);
  return name;
}

std::string scores_file_name(const std::string& filename) { return audio_stem(filename) + ".scores.tsv"; }

std::map<std::string, FrameScores> read_scores_dir(const std::string& dir, const std::vector<std::string>& files) {
  if (!fs::is_directory(dir)) throw Error(dir + ": not a folder; --scores expects a folder of <stem>.scores.tsv files");
  std::map<std::string, FrameScores> out;
  std::vector<std::string> missing;
  for (const auto& file : files) {
    const fs::path a = fs::path(dir) / scores_file_name(file);
    const fs::path b = fs::path(dir) / (audio_stem(file) + ".tsv");
    if (fs::is_regular_file(a))
      out.emplace(file, read_scores_tsv(a.string()));
    else if (fs::is_regular_file(b))
      out.emplace(file, read_scores_tsv(b.string()));
    else
      missing.push_back(scores_file_name(file));
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 10) list += fmt::format(" and {} more", missing.size() - 10);
    throw Error(fmt::format("{}: no score table for {} of {} files ({}); write one per audio file", dir,
                            missing.size(), files.size(), list));
  }
  return out;
}

}  // namespace earmark::eval
