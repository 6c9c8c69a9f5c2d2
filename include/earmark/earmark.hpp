// Earmark: find sound events in recordings.
//
//   earmark::Detector det(earmark::Config{});
//   earmark::FileResult r = det.detect_file("kitchen.flac");
//   for (const auto& e : r.events) std::cout << e.onset << " " << e.label << "\n";
//
// The pipeline is decode -> condition -> features -> model -> detect -> report; each stage
// lives in its own folder under src/. This header is the whole public API of libearmark.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "earmark/config.hpp"

namespace earmark {

// Every error a user can hit is an earmark::Error whose message says which file (or key)
// and what to do about it.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

const char* version();

// Constants of the reference front end and network.
inline constexpr int kSampleRate = 32000;
inline constexpr int kHop = 320;             // samples per mel frame (10 ms)
inline constexpr int kMelBins = 128;
inline constexpr int kTimeDownsample = 32;   // mel frames per network output column
inline constexpr double kColumnSeconds = kHop * kTimeDownsample / double(kSampleRate);  // 0.32 s

struct Event {
  double onset = 0;   // seconds from the start of the file
  double offset = 0;  // seconds
  std::string label;  // AudioSet display name, group name or custom class
  int class_index = -1;  // index in the score grid's label list
  float confidence = 0;  // peak smoothed score inside the event
};

// Scores on a regular time grid: frame f covers [f*hop_s, f*hop_s + hop_s).
struct FrameScores {
  double hop_s = kColumnSeconds;
  int frames = 0;
  std::vector<std::string> labels;  // one per class
  std::vector<float> values;        // frames x labels.size(), frame-major
  float at(int frame, int cls) const { return values[size_t(frame) * labels.size() + size_t(cls)]; }
};

struct AudioInfo {
  std::string container;  // e.g. "wav", "flac", "ogg"
  std::string codec;      // e.g. "pcm_s16le", "vorbis"
  int source_rate = 0;
  int source_channels = 0;
  double duration_s = 0;  // of the decoded audio
};

struct Timings {
  double decode_s = 0, features_s = 0, network_s = 0, events_s = 0, total_s = 0;
};

struct FileResult {
  std::string path;
  AudioInfo info;
  std::vector<Event> events;
  FrameScores scores;
  Timings timings;
  std::string error;  // empty on success; the file's one-line error otherwise
  bool ok() const { return error.empty(); }
};

// Label list of the model (AudioSet: 527 display names in output order).
struct LabelInfo {
  int index;
  std::string mid;
  std::string name;
};

class Detector {
 public:
  // Loads the network (throws earmark::Error if the model cannot be found or loaded).
  explicit Detector(Config config);
  ~Detector();
  Detector(Detector&&) noexcept;
  Detector& operator=(Detector&&) noexcept;

  // Decodes, scores and post-processes one file. Never throws for a bad file: the result's
  // `error` says what went wrong.
  FileResult detect_file(const std::string& path) const;
  // Same for samples already at 32 kHz mono.
  FileResult detect_samples(std::span<const float> samples, const std::string& name = "<memory>") const;

  const Config& config() const;
  const std::vector<LabelInfo>& labels() const;
  // sha256 of the loaded checkpoint file.
  const std::string& checkpoint_sha256() const;
  const std::string& checkpoint_path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace earmark
