// Training data for custom-class heads: clip lists, embeddings, frame targets, augmentation.
// (The fit itself is in head_fit.cpp, the only other torch translation unit.)
#include "model/train.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "condition/conditioner.hpp"
#include "decode/decoder.hpp"
#include "earmark/earmark.hpp"
#include "features/logmel.hpp"
#include "model/labels.hpp"
#include "model/network.hpp"
#include "model/registry.hpp"
#include "model/scorer.hpp"
#include "run/front_half.hpp"
#include "synth/soundscape.hpp"
#include "util/file.hpp"
#include "util/sha256.hpp"

namespace earmark::model {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool parse_double(const std::string& s, double& v) {
  try {
    size_t pos = 0;
    v = std::stod(s, &pos);
    return pos == s.size() && std::isfinite(v);
  } catch (...) {
    return false;
  }
}

std::vector<std::string> split_fields(const std::string& line, char sep) {
  if (sep == ',') return split_csv_line(line);
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string f;
  while (std::getline(ss, f, sep)) out.push_back(f);
  if (!line.empty() && line.back() == sep) out.emplace_back();
  return out;
}

std::vector<std::string> audio_files_under(const fs::path& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && decode::has_audio_extension(it->path().string())) found.push_back(it->path().string());
  }
  std::sort(found.begin(), found.end());
  return found;
}

// Deterministic on every standard library (std distributions are not).
struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  double uniform() { return double(g() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  size_t index(size_t n) { return size_t(g() % n); }
};

double rms(std::span<const float> x) {
  double s = 0;
  for (float v : x) s += double(v) * v;
  return x.empty() ? 0.0 : std::sqrt(s / double(x.size()));
}

// The network's column: the shortest input worth a row.
constexpr size_t kCellSamples = size_t(kSampleRate * kColumnSeconds + 0.5);  // 10240

}  // namespace

void FrameSet::add(const float* e, const std::vector<float>& target, int g) {
  x.insert(x.end(), e, e + dim);
  y.insert(y.end(), target.begin(), target.end());
  group.push_back(g);
}

std::vector<LabelledClip> read_clip_list(const std::string& path, std::vector<std::string>& warnings) {
  std::error_code ec;
  std::vector<LabelledClip> out;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> classes;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.is_directory(ec)) classes.push_back(e.path());
      else if (e.is_regular_file(ec) && decode::has_audio_extension(e.path().string()))
        warnings.push_back(e.path().string() + ": audio at the top of the clips folder is ignored; put each class's clips in a folder named after the class");
    }
    std::sort(classes.begin(), classes.end());
    for (const auto& c : classes) {
      const auto files = audio_files_under(c);
      const std::string label = c.filename().string();
      if (files.empty()) throw Error(c.string() + ": class '" + label + "' has no audio files (looked for .wav, .flac, .ogg, .mp3, ...)");
      for (const auto& f : files) out.push_back({f, label, -1, -1});
    }
    if (out.empty()) throw Error(path + ": no class folders with audio; make one folder per class holding its clips");
    return out;
  }
  std::error_code exists_ec;
  if (!fs::exists(path, exists_ec))
    throw Error(path + ": cannot read the clip list (give a folder with one sub-folder per class, or a CSV/TSV file)");
  std::istringstream in(util::read_file_bounded(path, util::kMaxTableBytes, "clip list"));
  const fs::path base = fs::path(path).parent_path();
  std::string line;
  int lineno = 0;
  char sep = 0;
  int col_file = 0, col_label = 1, col_on = -1, col_off = -1;
  bool first = true;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    if (!sep) sep = line.find('\t') != std::string::npos ? '\t' : ',';
    auto f = split_fields(line, sep);
    for (auto& s : f) s = trim(s);
    const std::string where = path + ":" + std::to_string(lineno);
    if (first) {
      first = false;
      std::map<std::string, int> named;
      for (size_t i = 0; i < f.size(); ++i) named[lower(f[i])] = int(i);
      auto find = [&](std::initializer_list<const char*> names) {
        for (const char* n : names)
          if (named.count(n)) return named[n];
        return -1;
      };
      const int hf = find({"file", "filename", "path"});
      const int hl = find({"label", "class", "event_label"});
      if (hf >= 0 || hl >= 0) {  // a header line
        if (hf < 0 || hl < 0) throw Error(where + ": the header needs a file (or filename) and a label (or class) column");
        col_file = hf;
        col_label = hl;
        col_on = find({"onset", "start"});
        col_off = find({"offset", "end"});
        if ((col_on < 0) != (col_off < 0)) throw Error(where + ": the header names onset without offset or the reverse");
        continue;
      }
      if (f.size() == 4) col_on = 1, col_off = 2, col_label = 3;
      else if (f.size() != 2)
        throw Error(where + ": expected `file,label` or `file,onset,offset,label` (" + std::to_string(f.size()) + " fields)");
    }
    const int need = std::max({col_file, col_label, col_on, col_off});
    if (int(f.size()) <= need) throw Error(where + ": too few fields (" + std::to_string(f.size()) + ")");
    LabelledClip c;
    c.file = f[size_t(col_file)];
    c.label = f[size_t(col_label)];
    if (c.file.empty()) throw Error(where + ": the file field is empty");
    if (c.label.empty()) throw Error(where + ": the label field is empty");
    if (col_on >= 0) {
      if (!parse_double(f[size_t(col_on)], c.onset) || !parse_double(f[size_t(col_off)], c.offset) || c.onset < 0 ||
          c.offset <= c.onset)
        throw Error(where + ": onset and offset must be seconds with 0 <= onset < offset");
    }
    if (fs::path(c.file).is_relative()) c.file = (base / c.file).lexically_normal().string();
    out.push_back(std::move(c));
  }
  if (out.empty()) throw Error(path + ": the clip list has no rows");
  return out;
}

std::vector<float> read_audio(const std::string& path, double max_s) {
  decode::AudioReader reader(path, kSampleRate);
  std::vector<float> out;
  const size_t cap = max_s > 0 ? size_t(max_s * kSampleRate) : SIZE_MAX;
  while (out.size() < cap && reader.read(out, std::min<size_t>(size_t(kSampleRate) * 10, cap - out.size())) > 0) {
  }
  return out;
}

Embedder::Embedder(const Config& config) : config_(config) {
  config_.validate();
  const auto resolved = resolve_model(config_.model);
  sha256_ = util::sha256_file(resolved.checkpoint);
  if (resolved.spec && !resolved.spec->sha256.empty() && sha256_ != resolved.spec->sha256)
    throw Error(resolved.checkpoint + ": checksum mismatch (sha256 " + sha256_ + ", expected " + resolved.spec->sha256 +
                "); run scripts/fetch-models " + resolved.name + " again");
  name_ = resolved.name;
  for (const auto& l : read_labels(resolved.labels)) labels_.push_back(l.name);
  // One network thread per worker, the workers embedding different clips: clips are short,
  // and splitting one short input over threads costs more than it saves.
  workers_ = config_.model.threads > 0 ? config_.model.threads
                                       : int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  net_ = std::make_unique<Network>(resolved.checkpoint, resolved.spec ? resolved.spec->width : 0.0, 1);
  if (config_.frames.method != "columns")
    throw Error("config: custom-class training needs frames.method 'columns' (the detector's default)");
}

Embedder::~Embedder() = default;

int Embedder::dim() const { return net_->info().embedding_dim; }

std::vector<int> Embedder::embed_many(const std::vector<std::vector<float>>& inputs,
                                      std::vector<std::vector<float>>& embeddings) const {
  embeddings.assign(inputs.size(), {});
  std::vector<int> cells(inputs.size(), 0);
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex m;
  auto work = [&](bool own_thread) {
    if (own_thread) Network::prepare_thread();
    try {
      for (size_t i; (i = next.fetch_add(1)) < inputs.size();) cells[i] = embed(inputs[i], embeddings[i]);
    } catch (...) {
      std::lock_guard lock(m);
      if (!error) error = std::current_exception();
      next = inputs.size();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::min<int>(workers_, int(inputs.size())); ++t) threads.emplace_back(work, true);
  work(false);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  return cells;
}

int Embedder::embed(std::span<const float> samples, std::vector<float>& embeddings, std::vector<float>* logits) const {
  // The detector's own front half (condition -> log-mel -> network), so that a head is fitted
  // on exactly the features it is applied to.
  run::FrontHalf half(config_, *net_, true, false);
  half.push(samples, true);
  embeddings = half.scorer().embeddings();
  if (logits) *logits = half.scorer().logits();
  return half.scorer().frames();
}

namespace {

// A negatives recording, kept for mixing (at most a minute of it) and embedded for rows.
struct NegativeAudio {
  std::string file;
  std::vector<float> samples;
};

// Targets of the cells of one version of a file. `spans` are the labelled events in the
// version's time (seconds) with their class index; `energy` (weak clips): per-sample clip
// signal for the energy rule, placed in the version's time, or empty.
// `cell_s`: the grid step of the embedder's rows (0.32 s / frames.passes), as in detection.
void add_rows(const std::vector<float>& emb, int cells, double cell_s, int dim, size_t classes,
              const std::vector<std::tuple<double, double, int>>& spans, const std::vector<float>* clip_signal,
              size_t clip_start, double active_db, int group, FrameSet& out, size_t& positives) {
  const size_t cell_samples = size_t(kSampleRate * cell_s + 0.5);
  std::vector<int> state(size_t(cells), 0);  // 0 negative, 1 positive, 2 ignore
  std::vector<std::vector<float>> targets(size_t(cells), std::vector<float>(classes, 0.0f));
  if (clip_signal) {  // weak: energy of the clip itself per cell
    std::vector<double> e(size_t(cells), 0.0);
    for (size_t i = 0; i < clip_signal->size(); ++i) {
      const size_t cell = (clip_start + i) / cell_samples;
      if (cell < e.size()) e[cell] += double((*clip_signal)[i]) * (*clip_signal)[i];
    }
    const double peak = *std::max_element(e.begin(), e.end());
    const int cls = std::get<2>(spans.front());
    for (int g = 0; g < cells; ++g) {
      const size_t lo = size_t(g) * cell_samples, hi = lo + cell_samples;
      const bool touches = hi > clip_start && lo < clip_start + clip_signal->size();
      if (peak > 0 && e[size_t(g)] >= peak * std::pow(10.0, -active_db / 10.0)) {
        state[size_t(g)] = 1;
        targets[size_t(g)][size_t(cls)] = 1.0f;
      } else if (touches) {
        state[size_t(g)] = 2;
      }
    }
  } else {
    for (const auto& [on, off, cls] : spans) {
      const double need = std::min(0.5 * cell_s, 0.5 * (off - on));
      for (int g = 0; g < cells; ++g) {
        const double lo = g * cell_s, hi = lo + cell_s;
        const double ov = std::min(hi, off) - std::max(lo, on);
        if (ov >= need - 1e-9) {
          if (state[size_t(g)] != 2) state[size_t(g)] = 1;
          targets[size_t(g)][size_t(cls)] = 1.0f;
        } else if (ov > 0) {
          state[size_t(g)] = 2;
        }
      }
    }
    for (int g = 0; g < cells; ++g)  // a cell partly in one event and fully in another: leave out
      if (state[size_t(g)] == 2) std::fill(targets[size_t(g)].begin(), targets[size_t(g)].end(), 0.0f);
  }
  // Negatives next to a positive are left out: the pooled embedding spans three cells.
  std::vector<int> final_state = state;
  for (int g = 0; g < cells; ++g) {
    if (state[size_t(g)] != 0) continue;
    if ((g > 0 && state[size_t(g - 1)] == 1) || (g + 1 < cells && state[size_t(g + 1)] == 1)) final_state[size_t(g)] = 2;
  }
  for (int g = 0; g < cells; ++g) {
    if (final_state[size_t(g)] == 2) continue;
    if (final_state[size_t(g)] == 1) ++positives;
    out.add(emb.data() + size_t(g) * size_t(dim), targets[size_t(g)], group);
  }
}

}  // namespace

TrainData build_train_data(const TrainOptions& opt, const Embedder& embedder, const Log& log) {
  TrainData d;
  const auto clips = read_clip_list(opt.clips, d.warnings);
  for (const auto& w : d.warnings) log("warning: " + w);
  // Files in order of first appearance, with their labels.
  std::map<std::string, size_t> file_index;
  struct FileLabels {
    std::string file;
    std::vector<LabelledClip> rows;
  };
  std::vector<FileLabels> files;
  std::set<std::string> class_set;
  for (const auto& c : clips) {
    class_set.insert(c.label);
    auto [it, inserted] = file_index.try_emplace(c.file, files.size());
    if (inserted) files.push_back({c.file, {}});
    files[it->second].rows.push_back(c);
  }
  d.classes.assign(class_set.begin(), class_set.end());
  const size_t k = d.classes.size();
  auto class_of = [&](const std::string& l) { return int(std::find(d.classes.begin(), d.classes.end(), l) - d.classes.begin()); };
  d.clips_per_class.assign(k, 0);
  d.frames.dim = embedder.dim();
  d.frames.classes = k;
  const int dim = embedder.dim();

  // Negatives first (their audio is also the bed for the augmented copies).
  std::vector<NegativeAudio> negatives;
  std::vector<std::string> neg_files;
  for (const auto& n : opt.negatives) {
    std::error_code ec;
    if (fs::is_directory(n, ec)) {
      const auto found = audio_files_under(n);
      if (found.empty()) throw Error(n + ": no audio files in the negatives folder");
      neg_files.insert(neg_files.end(), found.begin(), found.end());
    } else {
      neg_files.push_back(n);
    }
  }
  int next_group = 0;
  {
    std::vector<std::vector<float>> audio;
    std::vector<std::string> used;
    for (size_t i = 0; i < neg_files.size(); ++i) {
      log("negatives " + std::to_string(i + 1) + "/" + std::to_string(neg_files.size()) + ": " + neg_files[i]);
      std::vector<float> s;
      try {
        s = read_audio(neg_files[i], opt.negatives_max_s);
      } catch (const std::exception& e) {
        d.warnings.push_back(std::string(e.what()) + " (negatives file skipped)");
        log("warning: " + d.warnings.back());
        continue;
      }
      if (s.size() < kCellSamples) {
        d.warnings.push_back(neg_files[i] + ": shorter than 0.32 s, skipped as a negative");
        log("warning: " + d.warnings.back());
        continue;
      }
      audio.push_back(std::move(s));
      used.push_back(neg_files[i]);
    }
    // Recordings are embedded in pieces of kPieceS seconds: every piece start and end is then an
    // example of the file edges (where the network's input is padded with silence), which
    // the detector meets at the start and end of every file.
    constexpr double kPieceS = 6.0;
    const size_t piece = size_t(kPieceS * kSampleRate);
    std::vector<std::vector<float>> pieces;
    std::vector<int> piece_group;
    for (size_t i = 0; i < audio.size(); ++i) {
      for (size_t start = 0; start < audio[i].size(); start += piece) {
        const size_t end = std::min(audio[i].size(), start + piece);
        if (end - start < kCellSamples && start > 0) break;
        pieces.emplace_back(audio[i].begin() + long(start), audio[i].begin() + long(end));
        piece_group.push_back(next_group + int(start / (2 * piece)));  // ~12 s held out together
      }
      next_group += int(audio[i].size() / (2 * piece)) + 1;
    }
    // Synthetic noise (white, pink, brown at -70 to -20 dBFS): broadband hiss and rumble are
    // in most recordings and must not pass for any class.
    Rng noise_rng(opt.fit.seed ^ 0x5bd1e995ULL);
    for (int i = 0; opt.noise_negatives && i < 9; ++i) {
      static const char* kColours[] = {"white", "pink", "brown"};
      auto n = synth::make_noise(kColours[i % 3], piece, kSampleRate, noise_rng.g());
      const double level = std::pow(10.0, noise_rng.uniform(-70, -20) / 20.0);
      for (auto& v : n) v = float(v * level);
      pieces.push_back(std::move(n));
      piece_group.push_back(next_group++);
    }
    std::vector<std::vector<float>> embs;
    const auto cells = embedder.embed_many(pieces, embs);
    const std::vector<float> zero(k, 0.0f);
    for (size_t i = 0; i < pieces.size(); ++i) {
      for (int g = 0; g < cells[i]; ++g) d.frames.add(embs[i].data() + size_t(g) * size_t(dim), zero, piece_group[i]);
      if (i < pieces.size() - (opt.noise_negatives ? 9 : 0)) d.negative_rows += size_t(cells[i]);
    }
    for (size_t i = 0; i < audio.size(); ++i) {
      audio[i].resize(std::min(audio[i].size(), size_t(kSampleRate) * 60));
      negatives.push_back({used[i], std::move(audio[i])});
    }
  }

  // Clips, a batch at a time: decode and augment in order (the random draws stay in one
  // sequence), embed the batch's versions in parallel, then add their rows in order.
  struct Version {
    std::vector<float> audio;
    size_t clip_start = 0;
  };
  struct Pending {
    TrainData::FileRows fr;
    std::vector<float> clip;
    std::vector<std::tuple<double, double, int>> spans;
    bool weak = false;
    std::vector<Version> versions;
  };
  Rng rng(opt.fit.seed ^ 0x9e3779b97f4a7c15ULL);
  constexpr size_t kBatchFiles = 16;
  for (size_t batch_start = 0; batch_start < files.size(); batch_start += kBatchFiles) {
    std::vector<Pending> batch;
    for (size_t fi = batch_start; fi < std::min(files.size(), batch_start + kBatchFiles); ++fi) {
      const auto& f = files[fi];
      std::string labels_text;
      for (const auto& r : f.rows) labels_text += (labels_text.empty() ? "" : ",") + r.label;
      log("clips " + std::to_string(fi + 1) + "/" + std::to_string(files.size()) + ": " + f.file + " (" + labels_text + ")");
      std::vector<float> s;
      try {
        s = read_audio(f.file);
      } catch (const std::exception& e) {
        d.warnings.push_back(std::string(e.what()) + " (clip skipped)");
        log("warning: " + d.warnings.back());
        continue;
      }
      const double len = double(s.size()) / kSampleRate;
      if (len < opt.min_clip_s) {
        d.warnings.push_back(f.file + ": " + std::to_string(int(len * 1000)) + " ms long, shorter than " +
                             std::to_string(int(opt.min_clip_s * 1000)) + " ms; skipped (too short to learn from)");
        log("warning: " + d.warnings.back());
        continue;
      }
      if (rms(s) < 1e-5) {
        d.warnings.push_back(f.file + ": digital silence (below -100 dBFS); skipped");
        log("warning: " + d.warnings.back());
        continue;
      }
      const bool weak = std::all_of(f.rows.begin(), f.rows.end(), [](const LabelledClip& r) { return r.onset < 0; });
      const bool strong = std::all_of(f.rows.begin(), f.rows.end(), [](const LabelledClip& r) { return r.onset >= 0; });
      if (!weak && !strong)
        throw Error(f.file + ": has both clip-level and onset/offset labels in the list; use one kind per file");
      Pending p;
      p.weak = weak;
      for (const auto& r : f.rows) {
        if (strong && r.onset >= len) {
          d.warnings.push_back(f.file + ": event " + r.label + " at " + std::to_string(r.onset) + " s starts after the end (" +
                               std::to_string(len) + " s); ignored");
          log("warning: " + d.warnings.back());
          continue;
        }
        p.spans.emplace_back(strong ? r.onset : 0.0, strong ? std::min(r.offset, len) : len, class_of(r.label));
      }
      if (p.spans.empty()) continue;
      p.fr.file = f.file;
      for (const auto& sp : p.spans) {
        const std::string& l = d.classes[size_t(std::get<2>(sp))];
        if (std::find(p.fr.labels.begin(), p.fr.labels.end(), l) == p.fr.labels.end()) p.fr.labels.push_back(l);
      }
      if (weak) {  // the clip alone, with digital silence around it (negatives of "nothing")
        const size_t pre = size_t(rng.uniform(0.3, 1.3) * kSampleRate), post = size_t(rng.uniform(0.3, 1.3) * kSampleRate);
        std::vector<float> padded(pre + s.size() + post, 0.0f);
        std::copy(s.begin(), s.end(), padded.begin() + long(pre));
        p.versions.push_back({std::move(padded), pre});
      } else {
        p.versions.push_back({s, 0});
      }
      for (int m = 0; weak && m < opt.mixes; ++m) {
        const size_t pre = size_t(rng.uniform(0.3, 1.3) * kSampleRate), post = size_t(rng.uniform(0.3, 1.3) * kSampleRate);
        const size_t total = pre + s.size() + post;
        std::vector<float> bed;
        if (!negatives.empty()) {
          const auto& src = negatives[rng.index(negatives.size())].samples;
          const size_t start = src.size() > total ? rng.index(src.size() - total) : 0;
          bed.resize(total);
          for (size_t i = 0; i < total; ++i) bed[i] = src[(start + i) % src.size()];
          if (rng.uniform() < 0.5) {  // and noise under it half of the time
            const auto n = synth::make_noise(rng.uniform() < 0.5 ? "pink" : "white", total, kSampleRate, rng.g());
            const double level = std::max(1e-5, rms(bed)) * std::pow(10.0, -rng.uniform(0, 20) / 20.0);
            for (size_t i = 0; i < total; ++i) bed[i] += float(level * n[i]);
          }
        } else {
          bed = synth::make_noise(rng.uniform() < 0.5 ? "pink" : "white", total, kSampleRate, rng.g());
          const double level = std::pow(10.0, rng.uniform(-60, -25) / 20.0);
          for (auto& v : bed) v = float(v * level);
        }
        const double bed_rms = std::max(1e-6, rms(std::span<const float>(bed).subspan(pre, s.size())));
        const double snr = rng.uniform(opt.snr_min_db, opt.snr_max_db);
        const double gain = bed_rms * std::pow(10.0, snr / 20.0) / std::max(1e-9, rms(s));
        for (size_t i = 0; i < s.size(); ++i) bed[pre + i] += float(gain * s[i]);
        double peak = 0;
        for (float v : bed) peak = std::max(peak, double(std::abs(v)));
        if (peak > 0.99)
          for (auto& v : bed) v = float(v * 0.99 / peak);
        p.versions.push_back({std::move(bed), pre});
      }
      p.clip = std::move(s);
      batch.push_back(std::move(p));
    }
    std::vector<std::vector<float>> inputs;
    for (auto& p : batch)
      for (auto& v : p.versions) inputs.push_back(std::move(v.audio));
    std::vector<std::vector<float>> embs;
    const auto cells = embedder.embed_many(inputs, embs);
    size_t vi = 0;
    for (auto& p : batch) {
      p.fr.first_row = d.frames.rows();
      const int group = next_group++;
      size_t positives = 0;
      for (const auto& v : p.versions) {
        const size_t before = d.frames.rows();
        if (p.weak) {
          // A file with several weak labels: every label applies to its active cells.
          const auto first = p.spans.front();
          add_rows(embs[vi], cells[vi], embedder.hop_s(), dim, k, {first}, &p.clip, v.clip_start, opt.active_db, group, d.frames, positives);
          for (size_t r = before; r < d.frames.rows(); ++r)
            if (d.frames.y[r * k + size_t(std::get<2>(first))] > 0)
              for (const auto& sp : p.spans) d.frames.y[r * k + size_t(std::get<2>(sp))] = 1.0f;
        } else {
          add_rows(embs[vi], cells[vi], embedder.hop_s(), dim, k, p.spans, nullptr, 0, opt.active_db, group, d.frames, positives);
        }
        ++vi;
      }
      p.fr.end_row = d.frames.rows();
      if (positives == 0) {
        d.warnings.push_back(p.fr.file + ": no grid cell is covered enough by its label(s) to learn from; skipped");
        log("warning: " + d.warnings.back());
        d.frames.x.resize(p.fr.first_row * size_t(dim));
        d.frames.y.resize(p.fr.first_row * k);
        d.frames.group.resize(p.fr.first_row);
        continue;
      }
      for (const auto& l : p.fr.labels) ++d.clips_per_class[size_t(class_of(l))];
      d.files.push_back(std::move(p.fr));
    }
  }
  return d;
}

void check_train_data(const TrainData& d, const TrainOptions& opt) {
  const size_t k = d.classes.size();
  for (size_t c = 0; c < k; ++c) {
    if (d.clips_per_class[c] == 0)
      throw Error("class '" + d.classes[c] + "': none of its files could be used (see the warnings above); it has no audio to learn from");
    if (d.clips_per_class[c] < opt.min_clips)
      throw Error("class '" + d.classes[c] + "' has only " + std::to_string(d.clips_per_class[c]) +
                  " usable clip(s); give at least " + std::to_string(opt.min_clips) +
                  " (10-20 recommended): part of the clips is held out to check the head");
  }
  // Negatives for each class: rows where it is 0 that come from real audio other than
  // silence padding: other classes' clips, unlabelled parts, --negatives.
  for (size_t c = 0; c < k; ++c) {
    long negatives = long(d.negative_rows);
    for (const auto& f : d.files) {
      const bool has = std::find(f.labels.begin(), f.labels.end(), d.classes[c]) != f.labels.end();
      if (!has) negatives += long(f.end_row - f.first_row);
    }
    if (k == 1 && d.negative_rows == 0) {
      throw Error("all clips are of one class ('" + d.classes[0] +
                  "') and no --negatives were given: the head could only learn 'sound versus silence'. Give --negatives DIR "
                  "with recordings of the places where you will listen, without the sound (or clips of other classes)");
    }
    if (negatives == 0)
      throw Error("class '" + d.classes[c] + "': no negative examples (every clip carries it); add --negatives or clips of other classes");
  }
}

TrainResult fit_train_data(const TrainData& data, const TrainOptions& opt, const Embedder& embedder, const Log& log) {
  check_train_data(data, opt);
  TrainResult r;
  r.warnings = data.warnings;
  const auto t0 = std::chrono::steady_clock::now();
  r.head = fit_head(data.frames, data.classes, opt.fit, r.report, log);
  r.fit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Head& h = r.head;
  h.backbone = embedder.model_name();
  h.backbone_sha256 = embedder.checkpoint_sha256();
  h.chunk_s = embedder.config().frames.chunk_s;
  h.context_s = embedder.config().frames.context_s;
  h.pool_columns = embedder.config().frames.pool_columns;
  h.column_norm_max = embedder.config().frames.column_norm_max;
  h.thresholds = r.report.thresholds;
  // Clips with one label each: the classes exclude each other, and the detector keeps only
  // the best of them per frame (a drawer must not also come out as a knock).
  h.exclusive = std::all_of(data.files.begin(), data.files.end(), [](const TrainData::FileRows& f) { return f.labels.size() == 1; });
  nlohmann::json t;
  t["seed"] = opt.fit.seed;
  t["clips"] = opt.clips;
  t["negatives"] = opt.negatives;
  t["clips_per_class"] = nlohmann::json::object();
  for (size_t c = 0; c < data.classes.size(); ++c) t["clips_per_class"][data.classes[c]] = data.clips_per_class[c];
  t["rows"] = data.frames.rows();
  t["negative_rows"] = data.negative_rows;
  t["mixes"] = opt.mixes;
  t["epochs_run"] = r.report.epochs_run;
  t["best_epoch"] = r.report.best_epoch;
  t["train_loss"] = r.report.train_loss;
  t["val_loss"] = r.report.val_loss;
  t["val_frame_f1"] = nlohmann::json::object();
  for (size_t c = 0; c < data.classes.size(); ++c) {
    const double f = r.report.val_f1[c];
    t["val_frame_f1"][data.classes[c]] = std::isfinite(f) ? nlohmann::json(f) : nlohmann::json(nullptr);
  }
  t["lr"] = opt.fit.lr;
  t["weight_decay"] = opt.fit.weight_decay;
  t["warnings"] = data.warnings;
  t["earmark_version"] = version();
  h.training_json = t.dump();
  h.source = "trained head";
  h.check();
  return r;
}

TrainResult train_head(const TrainOptions& opt, const Log& log) {
  const Embedder embedder(opt.config);
  const auto t0 = std::chrono::steady_clock::now();
  const TrainData data = build_train_data(opt, embedder, log);
  const double embed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  TrainResult r = fit_train_data(data, opt, embedder, log);
  r.embed_s = embed_s;
  return r;
}

}  // namespace earmark::model
