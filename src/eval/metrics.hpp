// Event-based and segment-based sound event detection metrics, as sed_eval computes them
// (sed_eval.sound_event.EventBasedMetrics / SegmentBasedMetrics, Mesaros, Heittola, Virtanen,
// "Metrics for polyphonic sound event detection", Applied Sciences 6(6), 2016).
//
// Conventions kept from sed_eval so that numbers can be compared with published results:
//  - Counts are accumulated file by file and the metrics computed from the totals
//    ("overall" in sed_eval = micro average here).
//  - precision = TP / Nsys and recall = TP / Nref are NaN when their denominator is 0;
//    F = 0 when precision and recall are both 0, NaN when either is NaN.
//  - Rates are count / (Nref + eps) with eps = 2^-52 (numpy.spacing(1)): 0 when there are no
//    errors, and a huge number (errors * 4.5e15) when Nref = 0 but errors exist, as in sed_eval.
//  - Class-wise error rate = deletion rate + insertion rate (no substitutions within a class).
//  - Macro averages are means over classes ignoring NaN values (numpy.nanmean); NaN if every
//    class is NaN.
//  - The classes are the union of reference and estimated labels and `labels` (sorted), like
//    sed_eval given the union as event_label_list. A class present only in the estimate has
//    recall NaN, so it drops out of the macro F but adds its insertions to the macro error
//    rate; a class in `labels` with no events at all has F NaN and error rate 0.
#pragma once

#include <string>
#include <vector>

#include "eval/tsv.hpp"

namespace earmark::eval {

struct ClassMetrics {
  std::string label;
  long n_ref = 0, n_sys = 0, tp = 0, fp = 0, fn = 0;
  double precision = 0, recall = 0, f1 = 0;
  double error_rate = 0, deletion_rate = 0, insertion_rate = 0;
};

struct OverallMetrics {
  long n_ref = 0, n_sys = 0, tp = 0, fp = 0, fn = 0;
  long substitutions = 0, deletions = 0, insertions = 0;
  double precision = 0, recall = 0, f1 = 0;
  double error_rate = 0, substitution_rate = 0, deletion_rate = 0, insertion_rate = 0;
};

// Class-wise means (nanmean).
struct MacroMetrics {
  double precision = 0, recall = 0, f1 = 0;
  double error_rate = 0, deletion_rate = 0, insertion_rate = 0;
};

struct SedResult {
  OverallMetrics micro;
  MacroMetrics macro;
  std::vector<ClassMetrics> classes;  // in label order
  int files = 0;
  double evaluated_length_s = 0;  // event-based: sum of reference max offsets (as sed_eval)
};

// sed_eval's two ways of pairing same-class events that match in time. "optimal" (sed_eval's
// default) takes a maximum bipartite matching (Hopcroft-Karp, reproduced in sed_eval's order so
// that the leftovers, and hence the substitutions, are the same); "greedy" pairs each
// reference event with the first unpaired estimated event that matches.
enum class Matching { Optimal, Greedy };

struct EventBasedConfig {
  double t_collar = 0.2;              // onset tolerance, seconds
  double percentage_of_length = 0.2;  // offset tolerance: max(t_collar, this * reference length)
  bool evaluate_onset = true;
  bool evaluate_offset = true;        // false: onset-only evaluation
  Matching matching = Matching::Optimal;
  void validate() const;
};

struct SegmentBasedConfig {
  double time_resolution = 1.0;  // segment length, seconds
  void validate() const;
};

// Files evaluated: those of `ref`, plus those of `est` (a file absent from `ref` has no
// reference events). `labels`: classes to report besides those that occur in ref or est.
SedResult event_based(const EventTable& ref, const EventTable& est, const EventBasedConfig& config = {},
                      const std::vector<std::string>& labels = {});

// Each file is evaluated over ceil(length / time_resolution) segments, where length is the
// file's entry in `durations` if there is one (events beyond it are cut, as sed_eval does with
// evaluated_length_seconds), else the last offset of its reference and estimated events.
// An event marks every segment it touches: [floor(onset / res), ceil(offset / res)).
SedResult segment_based(const EventTable& ref, const EventTable& est, const Durations& durations = {},
                        const SegmentBasedConfig& config = {}, const std::vector<std::string>& labels = {});

// sed_eval's formulas, exposed for the tests.
double sed_precision(double tp, double n_sys);
double sed_recall(double tp, double n_ref);
double sed_f_measure(double precision, double recall);
double sed_rate(double count, double n_ref);
double nanmean(const std::vector<double>& v);

// Maximum bipartite matching between reference (rows) and estimated (columns) events,
// following sed_eval.util.event_matching.bipartite_match step by step. hit[j][i]: reference j
// may pair with estimate i. Returns, per reference, the paired estimate or -1.
std::vector<int> sed_bipartite_match(const std::vector<std::vector<bool>>& hit, size_t n_est);

}  // namespace earmark::eval
