#include "model/registry.hpp"

#include <cstdlib>
#include <filesystem>

#include "earmark/earmark.hpp"

namespace earmark::model {

namespace fs = std::filesystem;

const std::vector<ModelSpec>& known_models() {
  static const std::vector<ModelSpec> models = {
      {"mn04_as", "mn04_as_mAP_432.pt", "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c", 0.4, .432},
      {"mn05_as", "mn05_as_mAP_443.pt", "", 0.5, .443},
      {"mn10_as", "mn10_as_mAP_471.pt", "", 1.0, .471},
      {"mn20_as", "mn20_as_mAP_478.pt", "", 2.0, .478},
      {"mn30_as", "mn30_as_mAP_482.pt", "", 3.0, .482},
      {"mn40_as", "mn40_as_mAP_484.pt", "", 4.0, .484},
      {"mn40_as_ext", "mn40_as_ext_mAP_487.pt", "", 4.0, .487},
  };
  return models;
}

std::string models_dir(const ModelConfig& cfg) {
  if (!cfg.models_dir.empty()) return cfg.models_dir;
  if (const char* e = std::getenv("EARMARK_MODELS"); e && *e) return e;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "earmark" / "models").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "earmark" / "models").string();
  return "models";
}

ResolvedModel resolve_model(const ModelConfig& cfg) {
  ResolvedModel r;
  const std::string dir = models_dir(cfg);
  const bool looks_like_path = cfg.name.find('/') != std::string::npos || fs::path(cfg.name).extension() == ".pt";
  if (looks_like_path) {
    if (!fs::is_regular_file(cfg.name)) throw Error(cfg.name + ": model checkpoint not found");
    r.name = fs::path(cfg.name).stem().string();
    r.checkpoint = cfg.name;
    const fs::path beside = fs::path(cfg.name).parent_path() / kLabelsFile;
    r.labels = fs::exists(beside) ? beside.string() : (fs::path(dir) / kLabelsFile).string();
  } else {
    for (const auto& m : known_models())
      if (m.name == cfg.name) r.spec = &m;
    if (!r.spec) {
      std::string names;
      for (const auto& m : known_models()) names += (names.empty() ? "" : ", ") + m.name;
      throw Error("unknown model '" + cfg.name + "' (known: " + names + "; or give the path of a .pt checkpoint)");
    }
    r.name = r.spec->name;
    r.checkpoint = (fs::path(dir) / r.spec->file).string();
    r.labels = (fs::path(dir) / kLabelsFile).string();
    if (!fs::is_regular_file(r.checkpoint))
      throw Error(r.checkpoint + ": model '" + r.name + "' is not downloaded; run 'scripts/fetch-models " + r.name +
                  "' or point EARMARK_MODELS (or --models-dir) at the folder that has " + r.spec->file);
  }
  if (!fs::is_regular_file(r.labels))
    throw Error(r.labels + ": the AudioSet label list is missing; run 'scripts/fetch-models' or put " +
                std::string(kLabelsFile) + " beside the checkpoint");
  return r;
}

std::string find_ontology(const ModelConfig& cfg, const ResolvedModel& model, const std::string& configured) {
  if (!configured.empty()) {
    if (!fs::is_regular_file(configured))
      throw Error("events.ontology: " + configured + " is not a file; give the path of the AudioSet ontology.json " +
                  "(scripts/fetch-models fetches it into the models folder) or leave the key out to look for it there");
    return configured;
  }
  auto folder = [](fs::path p) {  // "a/efficientat/" -> "a/efficientat", so that its parent is "a"
    p = p.lexically_normal();
    return p.filename().empty() ? p.parent_path() : p;
  };
  std::vector<fs::path> folders = {folder(models_dir(cfg))};
  if (!model.checkpoint.empty()) folders.push_back(folder(fs::path(model.checkpoint).parent_path()));
  for (const auto& d : folders)
    for (const auto& p : {d / kOntologyFile, d.parent_path() / "audioset" / kOntologyFile, d / "audioset" / kOntologyFile})
      if (!d.empty() && fs::is_regular_file(p)) return p.string();
  return "";
}

}  // namespace earmark::model
