// Signal quality analysis: one streaming pass over mono float audio that measures levels,
// loudness, noise and defects, and turns what looks wrong into anomalies a person can read.
//
//   QualityAnalyzer qa;                      // QualityConfig{} and 32 kHz by default
//   while (reader.read(block, 32000)) { qa.push(block); block.clear(); }
//   QualityReport r = qa.finish();           // r.anomalies, to_json(r), to_markdown(r)
//
// Cost: a few operations per sample plus one 2048-point FFT per 50 ms frame and one
// 32768-point FFT per 0.5 s. Memory: fixed buffers (about 0.5 MB) plus, per second of audio,
// 20 frame levels and 10 loudness sub-blocks (about 120 bytes/s, 0.4 MB per hour), kept so
// that percentiles, gating and pause detection are exact rather than approximated.
//
// Levels are in dB relative to digital full scale: 20*log10(value) for peaks and RMS (so a
// full-scale sine has an RMS of -3.01 dBFS). A level that cannot be measured (digital
// silence, nothing above the loudness gate) is reported as kUnmeasurableDb.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "earmark/earmark.hpp"

namespace earmark::condition {

inline constexpr double kUnmeasurableDb = -150.0;

struct QualityConfig {
  // Analysis frame for levels, noise floor, SNR, pauses and noise colour.
  double frame_s = 0.05;

  // Clipping: samples with |x| >= clip_level in runs of at least clip_min_run samples
  // (a lone sample at full scale is usually a normalised peak, not clipping; a run of three
  // cannot come from an unclipped waveform above ~700 Hz, and clipped audio has long runs).
  double clip_level = 0.999;
  int clip_min_run = 3;
  // Clipped runs closer than this are reported as one region.
  double clip_merge_gap_s = 1.0;
  // Clipping is an "error" (rather than a "warning") when this fraction of all samples clip.
  double clip_error_fraction = 1e-3;

  // Digital silence: runs of |x| <= silence_level lasting at least silence_min_s.
  // Default: two 16-bit steps (2/32768), so dithered zeros count as silence.
  double silence_level = 2.0 / 32768.0;
  double silence_min_s = 0.5;

  // Dropouts: runs at digital zero (|x| <= silence_level) from dropout_min_s up to
  // silence_min_s, with audio at or above dropout_context_dbfs (RMS over dropout_context_s)
  // right before and right after: the signal is there, then suddenly gone.
  double dropout_min_s = 0.002;
  double dropout_context_s = 0.02;
  double dropout_context_dbfs = -50.0;

  // Noise floor: this percentile of the frame RMS levels (frames of digital silence excluded).
  double noise_floor_percentile = 10.0;
  // Signal level: this percentile of the frame RMS levels. SNR estimate = signal level minus
  // noise floor, in dB: how far the loud parts stand above the background.
  double signal_percentile = 95.0;

  // Long pause: frames within pause_margin_db of the noise floor for at least long_pause_min_s
  // (louder blips up to pause_bridge_s long do not end a pause). Only sought when the SNR
  // estimate is at least pause_min_snr_db: in steady sound (music, a noisy street) nearly
  // every frame is "near the floor" and a pause means nothing.
  double pause_margin_db = 6.0;
  double long_pause_min_s = 3.0;
  double pause_bridge_s = 0.2;
  double pause_min_snr_db = 10.0;

  // low_level when the peak is below low_level_peak_dbfs or the loudness below
  // low_level_lufs.
  double low_level_peak_dbfs = -30.0;
  double low_level_lufs = -50.0;

  // heavy_noise when the SNR estimate is below this. The estimate cannot tell noise from
  // steady sound: dense music or ambience with little level variation reads as noisy too
  // (the message says so).
  double heavy_noise_snr_db = 10.0;

  // dc_offset when |mean| is at least this (0.01 = -40 dBFS).
  double dc_offset_max = 0.01;

  // Hum: mains harmonics (50 or 60 Hz and up to hum_harmonics multiples) that stand out of
  // the long-term spectrum (about 1 Hz resolution). Reported when the most prominent
  // harmonic stands hum_min_prominence_db above its neighbourhood and the hum's total
  // level is at least hum_min_level_dbfs.
  int hum_harmonics = 8;
  double hum_min_prominence_db = 15.0;
  double hum_min_level_dbfs = -70.0;

  // Noise colour: slope of the average spectrum of the quietest colour_quiet_fraction of the
  // frames, fitted over third-octave bands from colour_min_hz to colour_max_hz.
  double colour_quiet_fraction = 0.10;
  double colour_min_hz = 100.0;
  double colour_max_hz = 10000.0;
  // Slope limits of the classes, dB/octave: above blue: blue; above white: white;
  // above pink: pink; else brown (white noise is 0, pink -3, brown -6).
  double colour_blue_above = 1.5;
  double colour_white_above = -1.5;
  double colour_pink_above = -4.5;

  // At most this many regions of each kind are listed (all are counted).
  int max_regions = 50;

  // Throws earmark::Error naming the key ("quality.<field>") and what to do.
  void validate() const;
};

enum class AnomalyKind { low_level, clipping, dc_offset, silence, long_pause, heavy_noise, hum, dropout };
enum class Severity { info, warning, error };
const char* to_string(AnomalyKind k);
const char* to_string(Severity s);

struct Anomaly {
  AnomalyKind kind;
  Severity severity;
  double start_s = 0;
  double end_s = 0;
  std::string message;  // one sentence for a person, e.g. "Clipping: 1,234 samples ..."
};

struct TimeRegion {
  double start_s = 0;
  double end_s = 0;
  int64_t samples = 0;  // clipping: clipped samples inside; otherwise the region's length
};

enum class NoiseColour { unknown, white, pink, brown, blue };
const char* to_string(NoiseColour c);

struct QualityReport {
  int sample_rate = kSampleRate;
  int64_t samples = 0;
  double duration_s = 0;

  double peak_dbfs = kUnmeasurableDb;
  double rms_dbfs = kUnmeasurableDb;
  double loudness_lufs = kUnmeasurableDb;  // BS.1770 integrated (gated) loudness
  double dc_offset = 0;                    // mean sample value

  int64_t clipped_samples = 0;
  int64_t clipped_region_count = 0;
  std::vector<TimeRegion> clipped_regions;  // at most max_regions, in time order

  double silence_s = 0;  // total digital silence
  int64_t silence_count = 0;
  std::vector<TimeRegion> silences;

  int64_t dropout_count = 0;
  std::vector<TimeRegion> dropouts;

  double noise_floor_dbfs = kUnmeasurableDb;
  double signal_level_dbfs = kUnmeasurableDb;
  double snr_db = 0;  // signal_level_dbfs - noise_floor_dbfs

  int64_t long_pause_count = 0;
  std::vector<TimeRegion> long_pauses;

  double noise_slope_db_per_octave = 0;
  NoiseColour noise_colour = NoiseColour::unknown;

  bool hum_detected = false;
  double hum_frequency_hz = 0;          // refined fundamental of the stronger mains family
  double hum_level_dbfs = kUnmeasurableDb;  // RMS of the hum harmonics above their neighbourhood
  double hum_prominence_db = 0;         // of the most prominent harmonic over its neighbourhood
  double hum_ratio_db = kUnmeasurableDb;    // hum energy relative to the whole signal

  std::vector<Anomaly> anomalies;  // sorted by start time

  bool has(AnomalyKind k) const;
  std::vector<const Anomaly*> find(AnomalyKind k) const;
};

class QualityAnalyzer {
 public:
  explicit QualityAnalyzer(QualityConfig config = {}, int sample_rate = kSampleRate);
  ~QualityAnalyzer();
  QualityAnalyzer(QualityAnalyzer&&) noexcept;
  QualityAnalyzer& operator=(QualityAnalyzer&&) noexcept;

  // Feeds the next block (any length, including empty). Non-finite samples count as 0 for
  // the statistics (and as a defect nowhere else: the decoder never produces them).
  void push(std::span<const float> samples);
  // Ends the stream and returns the report. The analyzer must not be pushed to afterwards.
  QualityReport finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Convenience: the report of a whole buffer.
QualityReport analyze(std::span<const float> samples, const QualityConfig& config = {},
                      int sample_rate = kSampleRate);

nlohmann::json to_json(const QualityReport& r);
// A short Markdown section: a table of the measurements and the anomalies as a list.
std::string to_markdown(const QualityReport& r, const std::string& title = "Signal quality");

}  // namespace earmark::condition
