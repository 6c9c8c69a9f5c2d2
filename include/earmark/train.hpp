// earmark/train.hpp: teaching Earmark new sound classes from a few labelled clips
// (`earmark train`, docs/custom-classes.md), and the head that holds them.
//
// The frozen network turns each clip into frame embeddings exactly as the detector does
// (FrameScorer, columns method, same frames settings: one pooled 384-dim vector per 0.32 s
// cell); a small head (logistic regression or a one-hidden-layer MLP, Head below) is fitted
// on them with LibTorch (src/model/head_fit.cpp). Which frames teach what:
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
//
// A custom-class head is that small classifier, applied by the detector next to (or instead
// of) the AudioSet classifier. Plain C++: training lives in head_fit.cpp (torch), applying a
// head is a few small matrix products (head.cpp).
//
// On disk a head is a folder:
//   head.json    format "earmark-head", version 1: class names, the embedding it expects
//                (layer, dim, frames settings), the backbone (name, checkpoint sha256), the
//                architecture, suggested per-class thresholds, training metrics, and the name,
//                byte size and sha256 of the weights file;
//   weights.bin  little-endian float32, in this order: mean[dim], inv_std[dim] (the input
//                standardisation), then for hidden == 0 (logistic regression) w[classes x dim],
//                b[classes]; for hidden > 0 (one-hidden-layer MLP, ReLU) w1[hidden x dim],
//                b1[hidden], w2[classes x hidden], b2[classes]. Row-major.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "earmark/config.hpp"

namespace earmark::model {

inline constexpr int kHeadFormatVersion = 1;
inline constexpr const char* kHeadFormat = "earmark-head";
// The embedding a head is trained on: the last feature map, averaged over frequency, one
// column per 0.32 s, averaged over frames.pool_columns neighbours (model/scorer.hpp).
inline constexpr const char* kHeadEmbeddingLayer = "features.freq_mean.pooled_columns";

struct Head {
  std::vector<std::string> classes;
  int dim = 0;     // embedding size (384 for mn04)
  int hidden = 0;  // 0: logistic regression; else hidden units of the MLP
  std::string backbone;         // model name it was trained with (informative)
  std::string backbone_sha256;  // checkpoint it was trained on (checked at load)
  // The frame settings the embeddings were made with (the detector must use the same).
  double chunk_s = 3.2;
  double context_s = 0.32;
  int pool_columns = 3;
  // frames.column_norm_max the embeddings were made with; < 0: not recorded (heads written
  // before the setting existed), not checked.
  double column_norm_max = -1;
  std::vector<float> mean, inv_std;        // dim each
  std::vector<float> w1, b1, w2, b2;       // the file layout is above (w1/b1 empty for hidden == 0)
  std::vector<double> thresholds;          // per class, suggested event on-threshold; < 0: none
  // The classes exclude each other (trained on single-label clips): the detector keeps only
  // the highest-scoring class of the head in each frame.
  bool exclusive = false;
  std::string training_json = "{}";       // metrics and settings of the training run (JSON object)
  std::string source;                      // where it was loaded from (for messages)

  // Checks sizes and values; throws earmark::Error naming `source`.
  void check() const;
  // n x dim embeddings -> n x classes logits.
  void logits(const float* embeddings, size_t n, float* out) const;
  // Writes DIR/head.json and DIR/weights.bin (creates DIR).
  void save(const std::string& dir) const;
  // DIR (or DIR/head.json). Throws earmark::Error naming the file for a missing, unreadable,
  // corrupt or unsupported head.
  static Head load(const std::string& path);
  // Throws earmark::Error unless the head fits this backbone checkpoint and these frame settings.
  void check_compatible(const std::string& checkpoint_sha256, int embedding_dim, const FramesConfig& frames) const;
};

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

struct FitReport {
  int epochs_run = 0, best_epoch = 0;
  double train_loss = 0, val_loss = 0;
  size_t train_rows = 0, val_rows = 0;
  std::vector<long> positives;       // per class, all rows
  std::vector<double> val_f1;        // per class, frame level at the chosen threshold (NaN: no val positives)
  std::vector<double> thresholds;    // per class (chosen on the held-out split)
};

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

struct TrainResult {
  Head head;
  FitReport report;
  std::vector<std::string> warnings;
  double embed_s = 0, fit_s = 0;
};
// read_clip_list + build_train_data + check + fit_head; fills the head's metadata.
TrainResult train_head(const TrainOptions& opt, const Log& log);

}  // namespace earmark::model
