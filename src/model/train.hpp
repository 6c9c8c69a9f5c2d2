// model: teaching Earmark new sound classes from a few labelled clips (`earmark train`).
//
// The frozen network turns each clip into frame embeddings exactly as the detector does
// (FrameScorer, columns method, same frames settings: one pooled 384-dim vector per 0.32 s
// cell); a small head (logistic regression or a one-hidden-layer MLP, head.hpp) is fitted on
// them with LibTorch (head_fit.cpp). Which frames teach what:
//  * weak labels (a folder per class, or `file,label` rows): the clip's cells whose energy is
//    within `active_db` of its loudest cell are positives; cells next to them are left out
//    (the pooled embedding spans three cells), cells with none of the clip are negatives;
//  * strong labels (`file,onset,offset,label`): cells covered by an event (at least half the
//    cell, or half the event if it is shorter) are positives, cells away from every event
//    (not adjacent) are background negatives, the rest are left out;
//  * every clip is also a negative for every other class; `--negatives` recordings (any
//    length, without the sounds) give background negatives;
//  * synthetic white/pink/brown noise at random levels is always added as negatives, and
//    negatives recordings are embedded in 6 s pieces (each piece's edges look like file edges);
//  * augmentation: each weak clip is embedded with digital silence around it, and mixed
//    `mixes` times into an excerpt of a negatives recording (half of the time with noise added;
//    pink/white noise alone without --negatives) at a random SNR and position, so that the head
//    sees the sound over a background and the background around it.
// Training is full-batch Adam on the standardised embeddings, with per-class positive weights
// (negatives / positives, capped) against imbalance, early stopping on a held-out split of the
// clips (by file), then a refit on all data for the chosen number of epochs. Everything
// is seeded: the same inputs and seed give bit-identical weights on the same machine.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "model/head.hpp"

namespace earmark::model {

class Network;

// One labelled file: weak (onset < 0: the whole file is an example of `label`) or strong.
struct LabelledClip {
  std::string file;
  std::string label;
  double onset = -1;
  double offset = -1;
};

// DIR: one sub-folder per class holding its audio files (searched recursively).
// CSV/TSV (',' or tab, by the first line): rows `file,label` or `file,onset,offset,label`,
// an optional header line; or a header naming the columns file/filename, label/class/
// event_label and optionally onset, offset (other columns ignored, e.g. sounds/events.csv).
// Relative paths are taken from the list's folder. Throws earmark::Error naming the file and
// line for a malformed list; warnings (e.g. files at the top of DIR) are appended.
std::vector<LabelledClip> read_clip_list(const std::string& path, std::vector<std::string>& warnings);

using Log = std::function<void(const std::string&)>;

struct FitOptions {
  uint64_t seed = 1;
  int hidden = 0;            // 0: logistic regression; else MLP hidden units
  int max_epochs = 300;
  int patience = 30;         // epochs without a better validation loss before stopping
  double lr = 0.01;
  double weight_decay = 1e-3;
  double val_fraction = 0.2;  // of each class's files (at least one) held out for early stopping
  double max_pos_weight = 50;
};

// Rows to fit: embeddings and multi-label targets; `group` is the unit of the held-out split
// (a file: its augmented copies share it).
struct FrameSet {
  int dim = 0;
  size_t classes = 0;
  std::vector<float> x;    // rows x dim
  std::vector<float> y;    // rows x classes, 0 or 1
  std::vector<int> group;  // rows
  size_t rows() const { return group.size(); }
  void add(const float* embedding, const std::vector<float>& target, int g);
};

struct FitReport {
  int epochs_run = 0, best_epoch = 0;
  double train_loss = 0, val_loss = 0;
  size_t train_rows = 0, val_rows = 0;
  std::vector<long> positives;       // per class, all rows
  std::vector<double> val_f1;        // per class, frame level at the chosen threshold (NaN: no val positives)
  std::vector<double> thresholds;    // per class (chosen on the held-out split)
};

// LibTorch (head_fit.cpp). Throws earmark::Error if the data cannot train anything.
Head fit_head(const FrameSet& data, const std::vector<std::string>& classes, const FitOptions& opt, FitReport& report,
              const Log& log);

// The network plus frames settings, as the detector uses them, for clips in memory.
class Embedder {
 public:
  explicit Embedder(const Config& config);  // resolves and loads the model (sha256 checked)
  ~Embedder();
  const std::string& checkpoint_sha256() const { return sha256_; }
  const std::string& model_name() const { return name_; }
  int dim() const;
  // Seconds between rows of embed()'s output: the detector's grid step, 0.32 s / frames.passes.
  double hop_s() const { return kColumnSeconds / std::max(1, config_.frames.passes); }
  const Config& config() const { return config_; }
  const std::vector<std::string>& audioset_labels() const { return labels_; }
  // 32 kHz mono samples -> cells x dim embeddings (and cells x 527 AudioSet logits if asked).
  int embed(std::span<const float> samples, std::vector<float>& embeddings, std::vector<float>* logits = nullptr) const;
  // Many inputs at once, spread over model.threads worker threads (0: the cores, at most 8);
  // returns the cells of each. The result does not depend on the number of workers.
  std::vector<int> embed_many(const std::vector<std::vector<float>>& inputs, std::vector<std::vector<float>>& embeddings) const;

 private:
  Config config_;
  std::string sha256_, name_;
  std::vector<std::string> labels_;
  std::unique_ptr<Network> net_;
  int workers_ = 1;
};

// Decodes a whole file to 32 kHz mono (at most max_s seconds; 0: all).
std::vector<float> read_audio(const std::string& path, double max_s = 0);

struct TrainOptions {
  Config config;                       // model, frames and condition settings (as for detect)
  std::string clips;                   // DIR or CSV/TSV (see read_clip_list)
  std::vector<std::string> negatives;  // folders or files without the sounds
  FitOptions fit;
  int mixes = 2;                 // augmented copies of each weak clip
  double snr_min_db = -5, snr_max_db = 20;
  double negatives_max_s = 120;  // per negatives file
  double min_clip_s = 0.05;      // shorter clips are skipped with a warning
  double active_db = 15;         // weak labels: positive cells are within this of the loudest
  int min_clips = 2;             // per class; fewer is an error
  bool noise_negatives = true;   // add white/pink/brown noise at random levels as negatives
};

// Embeddings of every usable clip and negative, labelled; `warnings` lists skipped files.
struct TrainData {
  std::vector<std::string> classes;
  FrameSet frames;
  std::vector<std::string> warnings;
  std::vector<long> clips_per_class;
  // Per usable file: its index in `files`, class labels, and rows [first_row, end_row).
  struct FileRows {
    std::string file;
    std::vector<std::string> labels;
    size_t first_row = 0, end_row = 0;
  };
  std::vector<FileRows> files;
  size_t negative_rows = 0;  // rows from --negatives
};
TrainData build_train_data(const TrainOptions& opt, const Embedder& embedder, const Log& log);
// The checks on a built set (one clip per class, no negatives, ...): throws earmark::Error.
void check_train_data(const TrainData& data, const TrainOptions& opt);

struct TrainResult {
  Head head;
  FitReport report;
  std::vector<std::string> warnings;
  double embed_s = 0, fit_s = 0;
};
// read_clip_list + build_train_data + check + fit_head; fills the head's metadata.
TrainResult train_head(const TrainOptions& opt, const Log& log);
// Same on data already built (cross-validation reuses one set of embeddings).
TrainResult fit_train_data(const TrainData& data, const TrainOptions& opt, const Embedder& embedder, const Log& log);

}  // namespace earmark::model
