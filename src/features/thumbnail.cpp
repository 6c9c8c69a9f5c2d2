#include "features/thumbnail.hpp"

#include "features/logmel.hpp"

namespace earmark::features {

SpectrogramThumbnail::SpectrogramThumbnail(int max_columns)
    : max_columns_(std::max(2, max_columns)), acc_(kNumMels, 0.0) {}

void SpectrogramThumbnail::close_column() {
  std::vector<float> col(kNumMels);
  for (int m = 0; m < kNumMels; ++m) col[size_t(m)] = float(acc_[size_t(m)] / double(in_column_));
  columns_.push_back(std::move(col));
  std::fill(acc_.begin(), acc_.end(), 0.0);
  in_column_ = 0;
  if (int(columns_.size()) >= max_columns_) {
    std::vector<std::vector<float>> merged;
    for (size_t i = 0; i + 1 < columns_.size(); i += 2) {
      std::vector<float> c(kNumMels);
      for (int m = 0; m < kNumMels; ++m) c[size_t(m)] = 0.5f * (columns_[i][size_t(m)] + columns_[i + 1][size_t(m)]);
      merged.push_back(std::move(c));
    }
    columns_ = std::move(merged);
    frames_per_column_ *= 2;
  }
}

void SpectrogramThumbnail::push(std::span<const float> frames, size_t n) {
  for (size_t t = 0; t < n; ++t) {
    for (int m = 0; m < kNumMels; ++m) acc_[size_t(m)] += frames[t * kNumMels + size_t(m)];
    if (++in_column_ == frames_per_column_) close_column();
  }
}

Spectrogram SpectrogramThumbnail::finish() const {
  Spectrogram s;
  s.bins = kNumMels;
  auto cols = columns_;
  if (in_column_ > 0) {  // the partial last column
    std::vector<float> col(kNumMels);
    for (int m = 0; m < kNumMels; ++m) col[size_t(m)] = float(acc_[size_t(m)] / double(in_column_));
    cols.push_back(std::move(col));
  }
  s.columns = int(cols.size());
  s.seconds_per_column = double(frames_per_column_) * kHopLength / 32000.0;
  s.values.resize(size_t(s.bins) * cols.size());
  for (size_t c = 0; c < cols.size(); ++c)
    for (int m = 0; m < kNumMels; ++m) s.values[size_t(m) * cols.size() + c] = cols[c][size_t(m)];
  return s;
}

}  // namespace earmark::features
