// model: training internals of `earmark train` (the options, result and train_head() are
// public: earmark/train.hpp, which says which frames teach what).
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
#include "earmark/train.hpp"
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

// Same on data already built (cross-validation reuses one set of embeddings).
TrainResult fit_train_data(const TrainData& data, const TrainOptions& opt, const Embedder& embedder, const Log& log);

}  // namespace earmark::model
