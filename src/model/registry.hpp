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
// The AudioSet ontology (github.com/audioset/ontology at d417d32, CC BY-SA 4.0, (c) Google): the
// label hierarchy that events are rolled up by (detect/rollup.hpp).
inline constexpr const char* kOntologyFile = "ontology.json";
inline constexpr const char* kOntologySha256 = "9c685f4403eecc3ca9be37fd7285cf212feaaea6ff7229d3e7ca89e0d1f2d15d";

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

// Where the AudioSet ontology is: `configured` (events.ontology) when given, which must exist;
// else the first ontology.json found in the models folder (models_dir), its sibling folder
// audioset/ (the layout of ../shared/models: efficientat/ and audioset/ side by side), the
// checkpoint's folder and its sibling audioset/. Returns "" when there is none (the caller warns
// and reports every label). Throws earmark::Error when `configured` names a missing file.
std::string find_ontology(const ModelConfig& cfg, const ResolvedModel& model, const std::string& configured);

}  // namespace earmark::model
