// report: pictures of one file's detections, drawn with Cairo and encoded as PNG in memory.
//
//   Picture p = timeline_picture(result);      // spectrogram + one lane of event bars per class
//   html += "<img src=\"" + data_uri(p) + "\">";
#pragma once

#include <array>
#include <string>

#include "earmark/earmark.hpp"

namespace earmark::report {

struct PictureConfig {
  int width = 1200;        // pixels
  int max_lanes = 30;      // timeline: classes with events beyond this are summarised in one line
  int top_classes = 10;    // heat-map: this many classes, those with the highest peak score
  void validate() const;   // throws earmark::Error ("pictures.<field>: ...")
};

struct Picture {
  std::string png;  // PNG file bytes; empty when there was nothing to draw
  int width = 0, height = 0;
  bool empty() const { return png.empty(); }
};

// Spectrogram (FileResult::spectrogram, or a note where it is missing) above one lane per
// class with events (bars coloured by class, opacity by confidence), class names on the left,
// time axis in seconds at the bottom. Always returns a picture (an empty or failed file gets
// a short note in it).
Picture timeline_picture(const FileResult& result, const PictureConfig& config = {});

// Scores over time of the top_classes classes with the highest peak score, one row each
// (0 to 1 on the colour ramp, with a colour bar). Empty Picture when the result has no frame
// scores.
Picture score_heatmap(const FileResult& result, const PictureConfig& config = {});
// The `count` classes of a score grid with the highest peak score, best first (ties: model
// order); non-finite scores count as 0. What the heat-map shows. `peaks`, if given, gets every
// class's peak score.
std::vector<size_t> top_classes_by_peak(const FrameScores& scores, size_t count, std::vector<float>* peaks = nullptr);

// "data:image/png;base64,..." for an <img src>.
std::string data_uri(const Picture& picture);

// The perceptual (viridis-like) ramp used for both pictures: t in [0, 1] (clamped; NaN as 0)
// to 8-bit RGB, dark blue-violet through teal and green to yellow, monotonically brighter.
std::array<unsigned char, 3> colour_ramp(double t);

}  // namespace earmark::report
