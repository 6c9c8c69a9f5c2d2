// Earmark: find sound events in recordings.
//
//   earmark::Detector det(earmark::Config{});
//   earmark::FileResult r = det.detect_file("kitchen.flac");
//   for (const auto& e : r.events) std::cout << e.onset << " " << e.label << "\n";
//
// The pipeline is decode -> condition -> features -> model -> detect -> report; each stage
// lives in its own folder under src/. This header is the whole public API of libearmark.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "earmark/config.hpp"

namespace earmark::util {
class Spill16;
}

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

// A label that was rolled up into an event's reported label (events.rollup): an ontology
// ancestor (Animal for Dog), or a related label of the same sound that was weaker or more generic.
struct RolledLabel {
  std::string label;
  float confidence = 0;  // that label's own event confidence
};

// What a detection is: a sound that stands out (an event), or a steady sound under everything
// else (noise, hum, rain, a TV or music bed) reported once for the stretch it lasts.
enum class EventKind { event, background };
// "event" or "background", as written in every output.
const char* kind_name(EventKind kind);
// The kind of a name written by kind_name; throws earmark::Error for any other name.
EventKind kind_from_name(const std::string& name);

struct Event {
  double onset = 0;   // seconds from the start of the file
  double offset = 0;  // seconds
  std::string label;  // AudioSet display name, group name or custom class
  int class_index = -1;  // index in the score grid's label list
  // How likely the detection is right (docs/false-alarms.md): the peak score mapped through the
  // confidence calibration; without one, the peak score itself.
  float confidence = 0;
  float score = 0;  // peak smoothed network score inside the event
  // How far the sound stands out of the background in its own bands (dB over what the background
  // alone reaches there; detect/boundaries.hpp); NaN where boundaries were not refined.
  float salience_db = NAN;
  EventKind kind = EventKind::event;
  std::vector<RolledLabel> also;  // labels rolled up into this one, most confident first (docs/labels.md)
};

// IEEE 754 half-precision (binary16) encoding of a float, rounded to nearest, ties to even;
// NaN stays NaN, too large values become infinities.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

// The values of a score grid: floats, or (compact()) half floats. A detector's grid is compact:
// 2 bytes per value, so a long file's 527-class grid takes 24 MB per hour instead of 47, with 11
// significant bits (a score of 0.3 kept to within 0.0001, 0.95 to within 0.0003). Grids read
// from files or built by hand keep floats, so that evaluation is exact. Values are read by value
// and written through `set` or `v[i] = x`.
class ScoreValues {
 public:
  class Ref {  // v[i] = x
   public:
    Ref(ScoreValues& v, size_t i) : v_(v), i_(i) {}
    Ref& operator=(float x) {
      v_.set(i_, x);
      return *this;
    }
    Ref& operator=(const Ref& o) { return *this = float(o); }
    operator float() const { return static_cast<const ScoreValues&>(v_)[i_]; }

   private:
    ScoreValues& v_;
    size_t i_;
  };
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = float;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = float;
    const_iterator() = default;
    const_iterator(const ScoreValues* v, size_t i) : v_(v), i_(i) {}
    float operator*() const { return (*v_)[i_]; }
    const_iterator& operator++() { ++i_; return *this; }
    const_iterator operator++(int) { auto t = *this; ++i_; return t; }
    difference_type operator-(const const_iterator& o) const { return difference_type(i_) - difference_type(o.i_); }
    bool operator==(const const_iterator& o) const { return i_ == o.i_; }

   private:
    const ScoreValues* v_ = nullptr;
    size_t i_ = 0;
  };

  ScoreValues();
  ScoreValues(std::initializer_list<float> v);
  ScoreValues(std::vector<float> v);
  ScoreValues(const ScoreValues& o);
  ScoreValues(ScoreValues&& o) noexcept;
  ScoreValues& operator=(const ScoreValues& o);
  ScoreValues& operator=(ScoreValues&& o) noexcept;
  ~ScoreValues();
  // An empty compact grid (half floats).
  static ScoreValues make_compact() {
    ScoreValues v;
    v.compact_ = true;
    return v;
  }
  bool compact() const { return compact_; }
  // A compact grid only: once it holds more than `after_values` values, it moves to a temporary
  // file and grows there (util/spill.hpp: rows of `width` values in blocks, read back through a
  // cache of a few MB), so a long recording's grid does not grow memory with its length.
  void spill_beyond(size_t width, size_t after_values);
  bool spilled() const;
  size_t size() const { return compact_ ? (spill_ ? spilled_size() : h_.size()) : f_.size(); }
  bool empty() const { return size() == 0; }
  float operator[](size_t i) const { return compact_ ? half_to_float(half(i)) : f_[i]; }
  // Value i for writing out: in a compact grid, the shortest decimal (at most 6 digits) stored as
  // the same half (0.1, not 0.0999756), so what is written reads back as the same grid.
  float printable(size_t i) const;
  Ref operator[](size_t i) { return Ref(*this, i); }
  void set(size_t i, float v) {
    if (!compact_)
      f_[i] = v;
    else if (spill_)
      spilled_set(i, float_to_half(v));
    else
      h_[i] = float_to_half(v);
  }
  void assign(size_t n, float v) {
    clear();
    resize(n, v);
  }
  void resize(size_t n, float v = 0.0f);
  void reserve(size_t n);
  void clear();
  void push_back(float v) {
    if (!compact_)
      f_.push_back(v);
    else if (spill_)
      spilled_push(float_to_half(v));
    else
      h_.push_back(float_to_half(v));
  }
  void pop_back() { resize(size() - 1); }
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size()); }
  friend bool operator==(const ScoreValues& a, const ScoreValues& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      const float x = a[i], y = b[i];
      if (!(x == y || (std::isnan(x) && std::isnan(y)))) return false;
    }
    return true;
  }
  friend bool operator==(const ScoreValues& a, const std::vector<float>& b) { return a == ScoreValues(b); }

 private:
  uint16_t half(size_t i) const { return spill_ ? spilled_get(i) : h_[i]; }
  uint16_t spilled_get(size_t i) const;
  void spilled_set(size_t i, uint16_t h);
  void spilled_push(uint16_t h);
  size_t spilled_size() const;

  bool compact_ = false;
  std::vector<float> f_;
  std::vector<uint16_t> h_;               // compact, unless spill_beyond was called
  std::unique_ptr<util::Spill16> spill_;  // compact after spill_beyond: in memory up to its limit, then on disk
};

// Scores on a regular time grid: frame f covers [f*hop_s, f*hop_s + hop_s).
struct FrameScores {
  double hop_s = kColumnSeconds;
  int frames = 0;
  std::vector<std::string> labels;  // one per class
  ScoreValues values;               // frames x labels.size(), frame-major
  float at(int frame, int cls) const { return values[size_t(frame) * labels.size() + size_t(cls)]; }
};

struct AudioInfo {
  std::string container;  // e.g. "wav", "flac", "ogg"
  std::string codec;      // e.g. "pcm_s16le", "vorbis"
  int source_rate = 0;
  int source_channels = 0;
  double duration_s = 0;  // of the decoded audio
};

// One problem found in the signal (quality analysis) or in the detections.
struct Anomaly {
  std::string kind;      // low_level, clipping, dc_offset, silence, long_pause, heavy_noise, hum, dropout,
                         // and detection-side: low_confidence, flicker, overlap, background_only, unknown_sound
  std::string severity;  // info, warning, error
  double start_s = 0, end_s = 0;
  std::string message;   // a sentence for a person
};

// Signal quality of a file (condition stage), measured on the decoded 32 kHz mono signal.
struct QualityInfo {
  bool measured = false;
  double peak_dbfs = 0, rms_dbfs = 0, loudness_lufs = 0, dc_offset = 0;
  double noise_floor_dbfs = 0, snr_db = 0;
  std::string noise_colour;  // white, pink, brown, blue or unknown
  double hum_hz = 0;         // 0: none found
  size_t clipped_samples = 0;
  std::string conditioning;  // what the conditioning stage did ("off" or the steps applied)
};

// A small log-mel picture of the whole file for reports: `bins` mel bands (low to high) x
// `columns`, each column the mean of `frames_per_column` 10 ms frames; values are the
// network's normalised log-mel. Bounded size whatever the file's length.
struct Spectrogram {
  int bins = 0;
  int columns = 0;
  double seconds_per_column = 0;
  std::vector<float> values;  // bins x columns, row-major (bin-major)
};

struct Timings {
  double decode_s = 0, condition_s = 0, features_s = 0, network_s = 0, events_s = 0, total_s = 0;
};

struct FileResult {
  std::string path;
  AudioInfo info;
  std::vector<Event> events;
  FrameScores scores;
  // With output.detection_scores: per class and 20 ms step, the highest operating threshold at
  // which the step lies inside a reported (refined) event; what PSDS should rank.
  FrameScores detection_scores;
  QualityInfo quality;
  std::vector<Anomaly> anomalies;  // signal and detection problems, by start time
  Spectrogram spectrogram;
  std::vector<std::string> warnings;  // e.g. decoder warnings (skipped corrupt packets)
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
  // What the events stage reads besides a file's score grid (the band levels of its audio, the
  // unscaled scores of loud columns), kept so that its events can be found again under other
  // events settings without decoding and scoring it again (earmark tune).
  struct EventInputs;
  // detect_file that also keeps the file's EventInputs in `keep` (left empty if the file fails).
  FileResult detect_file(const std::string& path, std::shared_ptr<const EventInputs>* keep) const;
  // The events of a file that detect_file(path, keep) scored (`scores`: its FileResult's),
  // found again by the whole events stage (boundaries, salience, backgrounds, roll-up, bursts,
  // false-alarm calibration) under `events`: this detector's events settings with other
  // thresholds, filters or durations (its groups, allow/deny lists, roll-up and calibration
  // must stay, or earmark::Error is thrown). Safe to call from several threads at once.
  std::vector<Event> find_events(const FrameScores& scores, const EventInputs& kept, EventsConfig events) const;
  // Same for samples already at 32 kHz mono.
  FileResult detect_samples(std::span<const float> samples, const std::string& name = "<memory>") const;

  // The effective configuration (with the per-class thresholds suggested by model.heads filled in).
  const Config& config() const;
  // Columns of the score grid: the model's AudioSet labels (none with model.head_only), then
  // the classes of each model.heads entry (mid "head:<path of its head.json>").
  const std::vector<LabelInfo>& labels() const;
  // sha256 of the loaded checkpoint file.
  const std::string& checkpoint_sha256() const;
  const std::string& checkpoint_path() const;
  // The label list file the model's outputs are named from.
  const std::string& labels_path() const;
  // The false-alarm calibration in use, in one sentence (events.calibration); empty when off.
  const std::string& calibration() const;
  // The LibTorch kernels that run the network's convolutions: "xnnpack" or "onednn" (model.backend).
  const std::string& backend() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace earmark
