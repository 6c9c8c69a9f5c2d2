// model: a custom-class head, a small classifier trained on the frozen network's frame
// embeddings (`earmark train`, see docs/custom-classes.md) and applied next to (or instead of)
// the AudioSet classifier by the detector. Plain C++: training lives in head_fit.cpp (torch),
// applying a head is a few small matrix products done here.
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
  std::vector<float> w1, b1, w2, b2;       // see the file layout above (w1/b1 empty for hidden == 0)
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

}  // namespace earmark::model
