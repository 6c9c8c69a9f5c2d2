// model: the published checkpoints Earmark knows by name, and where to find them on disk.
#pragma once

#include <string>
#include <vector>

#include "earmark/config.hpp"

namespace earmark::model {

struct ModelSpec {
  std::string name;    // what users type: mn04_as, mn10_as, ...
  std::string file;    // file name of the upstream release asset
  std::string sha256;  // pinned checksum; empty where upstream publishes none we could pin
  double width;
  double map;          // published AudioSet mAP
};

inline constexpr const char* kReleaseUrl = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/";
inline constexpr const char* kLabelsFile = "class_labels_indices.csv";

const std::vector<ModelSpec>& known_models();

// The folder models are looked up in: cfg.models_dir, else $EARMARK_MODELS, else
// $XDG_CACHE_HOME/earmark/models or ~/.cache/earmark/models.
std::string models_dir(const ModelConfig& cfg);

struct ResolvedModel {
  std::string name;        // registry name, or the file stem for a path
  std::string checkpoint;  // path of the .pt file
  std::string labels;      // path of class_labels_indices.csv
  const ModelSpec* spec = nullptr;
};

// A registry name or a path to a checkpoint. Throws earmark::Error with what to do when the
// name is unknown or the file is absent.
ResolvedModel resolve_model(const ModelConfig& cfg);

}  // namespace earmark::model
