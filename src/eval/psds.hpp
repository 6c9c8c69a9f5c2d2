// Polyphonic Sound Detection Score (PSDS; Bilen et al., "A Framework for the Robust Evaluation
// of Sound Event Detection", ICASSP 2020), as computed by psds_eval >= 0.4 and by
// sed_scores_eval (Ebbers et al., ICASSP 2022) for DCASE task 4 since 2021.
//
// For every threshold of the sweep each class's score column becomes detections, which are
// judged against the ground truth by intersection:
//  - a detection passes the DTC when the part of it that overlaps ground truth events of its
//    class is >= dtc x its length; detections that fail are false positives (FP);
//  - a ground truth event is a true positive when DTC-passing detections of its class cover
//    >= gtc x its length; TPR = TP / number of events of the class;
//  - a failed detection is a cross-trigger (CT) on another class k when its overlap with class
//    k's events is >= cttc x its length (only counted when alpha_ct > 0).
// Rates per unit of time (hour): FPR = FP / total audio length; CTR(c,k) = CT / total length
// of class k's events; eFPR(c) = FPR(c) + alpha_ct x mean over the other classes of CTR(c,k).
// Each class's ROC (TPR against eFPR, plus the origin) is made a non-decreasing staircase; the
// PSD-ROC is mean - alpha_st x std (population std) of the class ROCs on the union of their
// eFPR points, floored at 0; PSDS is its area up to max_efpr, divided by max_efpr.
//
// Choices where the references leave room or differ:
//  - Thresholds: by default the 50 values (2k+1)/100, k = 0..49 (0.01, 0.03, ..., 0.99: the
//    DCASE baseline's psds_eval sweep); `exact` uses every distinct score value of the class
//    instead, which gives sed_scores_eval's exact PSD-ROC (cost grows with frames^2 per file).
//  - Detections: contiguous frames with score >= threshold; frame f spans
//    [f*hop_s, (f+1)*hop_s], the last one cut at the file's duration. `detect` replaces this.
//  - Classes: those of the ground truth (psds_eval's default). Every file's scores must have
//    a column for each; score columns of other classes are ignored.
//  - Overlapping or touching ground truth events of one class in one file are merged first
//    (psds_eval and sed_scores_eval refuse such ground truth); zero-length ones are dropped.
//  - Criteria compare times rounded to 1e-6 s, as sed_scores_eval does, so that a detection
//    exactly at the DTC/GTC boundary is not lost to floating point noise.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "earmark/earmark.hpp"
#include "eval/tsv.hpp"

namespace earmark::eval {

struct PsdsConfig {
  double dtc = 0.7;       // detection tolerance criterion
  double gtc = 0.7;       // ground truth intersection criterion
  double cttc = 0.3;      // cross-trigger tolerance criterion (used when alpha_ct > 0)
  double alpha_ct = 0.0;  // weight of cross-triggers in the eFPR
  double alpha_st = 1.0;  // weight of the across-class standard deviation
  double max_efpr = 100;  // per unit of time
  double unit_s = 3600;   // unit of time of the rates: one hour
  int n_thresholds = 50;  // linear sweep (2k+1)/(2n), k = 0..n-1
  bool exact = false;     // every distinct score value instead of the linear sweep
  // Optional post-processing: detections (onset, offset in seconds) of class column `cls` of
  // one file's scores at `threshold`. Empty: runs of frames >= threshold. Not with `exact`
  // (distinct raw scores are no longer the points where the detections change).
  std::function<std::vector<std::pair<double, double>>(const FrameScores& scores, int cls, double threshold)>
      detect;

  // DCASE 2021-2023 task 4 scenario 1 (dtc = gtc = 0.7, alpha_ct = 0, alpha_st = 1, 100/h).
  static PsdsConfig psds1();
  // Scenario 2 (dtc = gtc = 0.1, cttc = 0.3, alpha_ct = 0.5, alpha_st = 1, 100/h).
  static PsdsConfig psds2();
  void validate() const;
};

struct PsdsPoint {
  double threshold = 0;
  long tp = 0, fp = 0;
  double tpr = 0, fpr = 0, efpr = 0;  // fpr and efpr per unit of time
};

struct PsdsClass {
  std::string label;
  long n_ref = 0;          // ground truth events (after merging)
  double ref_length_s = 0; // their total length
  std::vector<PsdsPoint> points;  // one per threshold, highest threshold first
  double psds = 0;         // this class's ROC area up to max_efpr / max_efpr
};

struct PsdsResult {
  double value = 0;
  // The PSD-ROC as a staircase: etpr[i] holds from efpr[i] to efpr[i+1]; ends at max_efpr.
  std::vector<double> efpr, etpr;
  std::vector<PsdsClass> classes;  // sorted by label
  int files = 0;
  double duration_s = 0;  // total audio length
};

// `scores`: by file name as in `ref` (extra entries are ignored). Files evaluated: those of
// `ref` and of `durations`; each needs scores. A file's length is its `durations` entry, else
// the length of its score grid. Throws earmark::Error naming missing files or classes.
PsdsResult psds(const std::map<std::string, FrameScores>& scores, const EventTable& ref,
                const Durations& durations, const PsdsConfig& config);

// Area under a staircase (y[i] from x[i] to x[i+1], the last step to max_x), x ascending,
// stopping at max_x: psds_eval's _auc.
double staircase_area(const std::vector<double>& x, const std::vector<double>& y, double max_x);

// Runs of frames whose score in column `cls` is >= threshold (compared as float, the scores'
// precision), as (onset, offset) seconds, the last one cut at `duration_s`.
std::vector<std::pair<double, double>> threshold_runs(const FrameScores& scores, int cls, double threshold,
                                                      double duration_s);

}  // namespace earmark::eval
