// Mapping from a dataset's class names to AudioSet labels, so that a model that speaks the 527
// AudioSet classes can be scored against a dataset's own annotations.
//
// One dataset class maps to one or more AudioSet labels ("doorslam" -> Door, Slam); an AudioSet
// label may serve several dataset classes (Bleat -> goat, sheep).
//  - Scores: a dataset class's score in a frame is the maximum of its AudioSet labels' scores.
//  - Events: an event labelled with an AudioSet name becomes one event per dataset class that
//    lists the name (several classes: duplicated); an event already labelled with a dataset
//    class is kept; other labels are dropped.
//
// Accepted files:
//  - YAML (.yaml, .yml): `doorslam: [Door, Slam]` or `speech: Speech`.
//  - CSV with a `class` and an `audioset_labels` column (other columns ignored), names in
//    audioset_labels separated by ';' — the layout of shared/sounds/events.csv; repeated rows
//    are merged.
//  - CSV rows `dataset_label,audioset_label` (optionally with that header line); a class may
//    have several rows, and the second field may itself be a ';'-separated list.
// Fields may be quoted ("Male speech, man speaking").
#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "earmark/earmark.hpp"
#include "eval/tsv.hpp"

namespace earmark::eval {

class LabelMap {
 public:
  // By extension: .yaml/.yml as YAML, anything else as CSV.
  static LabelMap load(const std::string& path);
  static LabelMap parse_csv(std::istream& in, const std::string& source);
  static LabelMap parse_yaml(const std::string& text, const std::string& source);

  void add(const std::string& dataset_label, const std::string& audioset_label);

  bool empty() const { return classes_.empty(); }
  // Dataset classes in order of first appearance in the file.
  const std::vector<std::string>& classes() const { return classes_; }
  // AudioSet labels of one dataset class (empty if unknown).
  const std::vector<std::string>& audioset_labels(const std::string& dataset_label) const;
  // Dataset classes that list this AudioSet label, in classes() order.
  std::vector<std::string> dataset_labels(const std::string& audioset_label) const;
  const std::string& source() const { return source_; }

  // Throws earmark::Error naming every AudioSet label of the map that is not in `known`.
  void check_known(const std::vector<std::string>& known, const std::string& known_source) const;

  // Model scores (any label list containing every mapped AudioSet label) -> one column per
  // dataset class, in classes() order. Throws naming unknown AudioSet labels.
  FrameScores map_scores(const FrameScores& model) const;

  // AudioSet-labelled events -> dataset-labelled events (class_index: position in classes()).
  // Events that end up with the same dataset class and overlap or touch are merged into one
  // (earliest onset, latest offset, highest confidence): a model reporting Door and Slam over
  // one door slam has made one "doorslam" detection, not two.
  std::vector<Event> map_events(const std::vector<Event>& events) const;
  EventTable map_events(const EventTable& table) const;

 private:
  std::string source_ = "<label map>";
  std::vector<std::string> classes_;
  std::map<std::string, std::vector<std::string>> to_audioset_;
};

// Display names from AudioSet's class_labels_indices.csv (index,mid,display_name), in order.
std::vector<std::string> read_audioset_label_names(const std::string& path);

// RFC 4180 CSV: comma-separated, fields optionally in double quotes ("" for a quote, commas and
// line breaks allowed inside). Returns rows with the 1-based line where each starts; blank
// lines are skipped.
struct CsvRow {
  int line = 0;
  std::vector<std::string> fields;
};
std::vector<CsvRow> parse_csv(std::istream& in, const std::string& source);

}  // namespace earmark::eval
