#include "model/scorer.hpp"

#include <algorithm>
#include <cmath>

#include "earmark/earmark.hpp"
#include "features/logmel.hpp"

namespace earmark::model {

namespace {
constexpr int kMels = features::kNumMels;
constexpr long kCol = kTimeDownsample;  // mel frames per output column

// The factor that scales v down to norm `max_norm` when it is longer, else 1
// (FramesConfig::column_norm_max; 0: off).
float norm_limit_factor(const float* v, size_t n, double max_norm) {
  if (max_norm <= 0) return 1.0f;
  double sq = 0;
  for (size_t i = 0; i < n; ++i) sq += double(v[i]) * double(v[i]);
  const double norm = std::sqrt(sq);
  return norm > max_norm ? float(max_norm / norm) : 1.0f;
}
}  // namespace

void FrameScorer::keep_scores_only(double spill_after_s) {
  scores_ = ScoreValues::make_compact();
  if (spill_after_s > 0) {
    const auto rows = size_t(std::ceil(spill_after_s / hop_s()));
    scores_.spill_beyond(size_t(classes_), rows * size_t(classes_));
    unscaled_.spill_after(rows);
  }
}

void FrameScorer::Unscaled::add(long row, const uint8_t* scores) {
  rows_.push_back(row);
  for (size_t c = 0; c < (classes_ + 1) / 2; ++c) scores_->push_back(pair(scores, c));
}

uint16_t FrameScorer::Unscaled::pair(const uint8_t* scores, size_t c) const {
  const size_t a = 2 * c, b = 2 * c + 1;
  return uint16_t(scores[a] | (b < classes_ ? scores[b] << 8 : 0));
}

size_t FrameScorer::Unscaled::first_at_or_after(long r) const {
  return size_t(std::lower_bound(rows_.begin(), rows_.end(), r) - rows_.begin());
}

uint8_t FrameScorer::Unscaled::score(size_t k, size_t c) const {
  const uint16_t v = scores_->get(k * ((classes_ + 1) / 2) + c / 2);
  return uint8_t(c % 2 ? v >> 8 : v & 0xffu);
}

void FrameScorer::append(const std::vector<float>& logits) {
  if (!scores_.compact()) {
    logits_.insert(logits_.end(), logits.begin(), logits.end());
    return;
  }
  for (float z : logits) scores_.push_back(1.0f / (1.0f + std::exp(-z)));
}

FrameScorer::FrameScorer(const Network& net, const FramesConfig& cfg, int batch, bool keep_embeddings)
    : net_(net), cfg_(cfg), batch_(std::max(1, batch)), keep_embeddings_(keep_embeddings), classes_(net.info().num_classes),
      unscaled_(size_t(classes_)) {
  // Pass p's columns are centred on (p + 0.5) / P of a cell instead of its middle.
  const int P = passes();
  for (int p = 0; p < P; ++p) pass_offsets_.push_back(int(std::lround((p + 0.5) * double(kCol) / P - kCol / 2.0)));
}

int FrameScorer::passes() const { return cfg_.method == "windows" ? 1 : std::max(1, cfg_.passes); }

double FrameScorer::hop_s() const { return cfg_.method == "windows" ? cfg_.hop_s : kColumnSeconds / passes(); }

long FrameScorer::chunk_start(long g0, int context) const { return kCol * (g0 - context) + kCol / 2; }

void FrameScorer::reserve_seconds(double seconds) {
  if (!(seconds > 0)) return;
  const auto rows = size_t(std::ceil(seconds / hop_s())) + 8;
  if (scores_.compact())
    scores_.reserve(rows * size_t(classes_));
  else
    logits_.reserve(rows * size_t(classes_));
  if (keep_embeddings_) embeddings_.reserve(rows * size_t(net_.info().embedding_dim));
}

void FrameScorer::push(std::span<const float> frames, size_t n) {
  mel_.insert(mel_.end(), frames.begin(), frames.begin() + long(n * kMels));
  mel_total_ += long(n);
  run_ready(false);
}

void FrameScorer::finish(size_t samples) {
  const double cell = (cfg_.method == "windows" ? cfg_.hop_s : kColumnSeconds) * kSampleRate;
  grid_total_ = samples == 0 ? 0 : long(std::ceil(double(samples) / cell - 1e-9));
  const double row = hop_s() * kSampleRate;
  rows_total_ = samples == 0 ? 0 : long(std::ceil(double(samples) / row - 1e-9));
  run_ready(true);
  mel_.clear();
  // The last cell's later passes may lie past the end of the audio.
  if (logits_.size() > size_t(rows_total_) * size_t(classes_)) logits_.resize(size_t(rows_total_) * size_t(classes_));
  if (scores_.size() > size_t(rows_total_) * size_t(classes_)) scores_.resize(size_t(rows_total_) * size_t(classes_));
  const size_t dim = size_t(net_.info().embedding_dim);
  if (embeddings_.size() > size_t(rows_total_) * dim) embeddings_.resize(size_t(rows_total_) * dim);
}

void FrameScorer::gather(long start, int length, float* out) const {
  const float silence = features::silence_value();
  for (int j = 0; j < length; ++j) {
    const long g = start + j;
    if (g < mel_start_ || g >= mel_total_) {
      for (int m = 0; m < kMels; ++m) out[size_t(m) * size_t(length) + size_t(j)] = silence;
    } else {
      const size_t base = size_t(g - mel_start_) * kMels;
      for (int m = 0; m < kMels; ++m) out[size_t(m) * size_t(length) + size_t(j)] = mel_[base + size_t(m)];
    }
  }
}

void FrameScorer::run_chunks(const std::vector<long>& g0s, int core, int input_columns) {
  const int P = passes();
  const int frames = input_columns * int(kCol);
  const int context = (input_columns - core) / 2;
  const size_t inputs = g0s.size() * size_t(P);
  const size_t dim = size_t(net_.info().embedding_dim);
  std::vector<float> feats;
  int cols = 0;  // per pass
  // One run per chunk gives both passes' columns interleaved (pass 0's input; odd columns half
  // a column later); otherwise each pass is an input of its own.
  const bool interleaved = P == 2 && cfg_.shared_passes;
  const int runs_per_chunk = interleaved ? 1 : P;
  const size_t runs = g0s.size() * size_t(runs_per_chunk);
  std::vector<float> mel(size_t(frames) * kMels * runs);
  for (size_t b = 0; b < g0s.size(); ++b)
    for (int p = 0; p < runs_per_chunk; ++p)
      gather(chunk_start(g0s[b], context) + pass_offsets_[size_t(p)], frames,
             mel.data() + (b * size_t(runs_per_chunk) + size_t(p)) * size_t(frames) * kMels);
  net_.column_features(mel.data(), int(runs), frames, feats, cols, interleaved ? 2 : 1);
  if (interleaved) cols /= 2;
  // Chunk b's pass p, column k.
  auto column = [&](size_t b, int p, int k) {
    const size_t at = interleaved ? size_t(2 * k + p) : size_t(p) * size_t(cols) + size_t(k);
    return feats.data() + (b * size_t(P) * size_t(cols) + at) * dim;
  };
  // Average each kept column with its neighbours, but only with columns that lie inside the
  // file: a column of padding would pull the first and last cells towards "silence". Rows come
  // out in grid order: cell by cell, each cell's passes in turn.
  const int half = cfg_.pool_columns / 2;
  std::vector<float> pooled(inputs * size_t(core) * dim, 0.0f);
  std::vector<float> unscaled;     // the scaled rows' features before scaling
  std::vector<size_t> scaled_rows;  // ... and their indices in `pooled`
  for (size_t b = 0; b < g0s.size(); ++b) {
    const long first_grid = g0s[b] - context;  // grid cell of column 0
    for (int c = 0; c < core; ++c) {
      for (int p = 0; p < P; ++p) {
        float* out = pooled.data() + ((b * size_t(core) + size_t(c)) * size_t(P) + size_t(p)) * dim;
        int used = 0;
        for (int k = context + c - half; k <= context + c + half; ++k) {
          const long g = first_grid + k;
          const bool inside = k >= 0 && k < cols && g >= 0 && (grid_total_ < 0 || g < grid_total_);
          if (!inside && k != context + c) continue;
          const float* f = column(b, p, k);
          for (size_t d = 0; d < dim; ++d) out[d] += f[d];
          ++used;
        }
        for (size_t d = 0; d < dim; ++d) out[d] /= float(used);
        if (const float k = norm_limit_factor(out, dim, cfg_.column_norm_max); k < 1.0f) {
          unscaled.insert(unscaled.end(), out, out + dim);
          scaled_rows.push_back(size_t(out - pooled.data()) / dim);
          for (size_t d = 0; d < dim; ++d) out[d] *= k;
        }
      }
    }
  }
  const size_t n = inputs * size_t(core);
  std::vector<float> logits(n * size_t(classes_));
  net_.classify(pooled.data(), int(n), logits.data());
  if (!scaled_rows.empty()) {
    const long first_row = long(this->frames());
    std::vector<float> z(scaled_rows.size() * size_t(classes_));
    net_.classify(unscaled.data(), int(scaled_rows.size()), z.data());
    std::vector<uint8_t> row(static_cast<size_t>(classes_));
    for (size_t i = 0; i < scaled_rows.size(); ++i) {
      for (size_t c = 0; c < size_t(classes_); ++c)
        row[c] = uint8_t(std::lround(255.0f / (1.0f + std::exp(-z[i * size_t(classes_) + c]))));
      unscaled_.add(first_row + long(scaled_rows[i]), row.data());
    }
  }
  append(logits);
  if (keep_embeddings_) embeddings_.insert(embeddings_.end(), pooled.begin(), pooled.end());
}

void FrameScorer::run_windows(const std::vector<long>& starts) {
  const int w = std::max(int(kCol), int(std::lround(cfg_.window_s * 100.0)));
  std::vector<float> mel(size_t(w) * kMels * starts.size());
  for (size_t b = 0; b < starts.size(); ++b) gather(starts[b], w, mel.data() + b * size_t(w) * kMels);
  std::vector<float> logits(starts.size() * size_t(classes_));
  net_.clip(mel.data(), int(starts.size()), w, logits.data(), nullptr);
  append(logits);
}

void FrameScorer::run_ready(bool final) {
  const int batch = batch_;
  if (cfg_.method == "windows") {
    const int w = std::max(int(kCol), int(std::lround(cfg_.window_s * 100.0)));
    auto start_of = [&](long f) { return long(std::lround((double(f) + 0.5) * cfg_.hop_s * 100.0 - w / 2.0)); };
    for (;;) {
      std::vector<long> starts;
      long f = next_grid_;
      while (int(starts.size()) < batch && (final ? f < grid_total_ : start_of(f) + w <= mel_total_))
        starts.push_back(start_of(f++));
      if (starts.empty() || (!final && int(starts.size()) < batch)) break;
      run_windows(starts);
      next_grid_ = f;
    }
    const long keep = start_of(next_grid_);
    while (mel_start_ < keep && !mel_.empty()) {
      mel_.erase(mel_.begin(), mel_.begin() + kMels);
      ++mel_start_;
    }
    return;
  }

  const int core = std::max(1, int(std::lround(cfg_.chunk_s / kColumnSeconds)));
  const int context = int(std::lround(cfg_.context_s / kColumnSeconds));
  // Chunk with core [g0, g0 + n) starts at mel frame 32 (g0 - context) + 16, so that its
  // column c is centred on mel frame 32 (g0 - context + c) + 16, the middle of grid cell
  // g0 - context + c; each pass shifts that by its offset.
  auto start_of = [&](long g0) { return chunk_start(g0, context); };
  const long first_offset = pass_offsets_.front(), last_offset = pass_offsets_.back();
  for (;;) {
    std::vector<long> g0s;
    long g = next_grid_;
    const int input_columns = core + 2 * context;
    while (int(g0s.size()) < batch) {
      const bool full_known =
          final ? g + core <= grid_total_ : start_of(g) + last_offset + kCol * input_columns <= mel_total_;
      if (!full_known) break;
      g0s.push_back(g);
      g += core;
    }
    if (!g0s.empty() && (final || int(g0s.size()) == batch)) {
      run_chunks(g0s, core, input_columns);
      next_grid_ = g;
      continue;
    }
    if (final && next_grid_ < grid_total_) {  // the shorter last chunk
      const int n = int(grid_total_ - next_grid_);
      run_chunks({next_grid_}, n, n + 2 * context);
      next_grid_ = grid_total_;
    }
    break;
  }
  const long keep = start_of(next_grid_) + first_offset;
  if (keep > mel_start_) {
    const long drop = std::min<long>(keep - mel_start_, long(mel_.size() / kMels));
    mel_.erase(mel_.begin(), mel_.begin() + drop * kMels);
    mel_start_ += drop;
  }
}

}  // namespace earmark::model
