// features: a bounded-size log-mel picture of a whole file, built while streaming (for reports).
#pragma once

#include <span>
#include <vector>

#include "earmark/earmark.hpp"

namespace earmark::features {

class SpectrogramThumbnail {
 public:
  // Columns stay between max_columns/2 and max_columns, whatever the length: when the picture
  // reaches max_columns, neighbouring columns are averaged in pairs and later ones pool twice
  // as many frames.
  explicit SpectrogramThumbnail(int max_columns = 1600);
  // Frames, frame-major (n x 128).
  void push(std::span<const float> frames, size_t n);
  Spectrogram finish() const;

 private:
  void close_column();
  int max_columns_;
  size_t frames_per_column_ = 1;
  size_t in_column_ = 0;
  std::vector<double> acc_;                 // 128 running sums for the open column
  std::vector<std::vector<float>> columns_;  // each 128 values
};

}  // namespace earmark::features
