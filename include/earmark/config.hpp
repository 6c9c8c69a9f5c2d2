// Earmark configuration: plain structs with defaults, validated in one place, printable.
//
// Every field can be set from a YAML or JSON file (same key names, nested by section) and
// the CLI overrides the most common ones. `Config::validate()` is the single place that
// checks values; it throws earmark::Error with a message naming the key and the fix.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace earmark {

// Which network to run and where its weights are.
struct ModelConfig {
  // A published model name (mn04_as, mn05_as, mn10_as, mn20_as, mn40_as_ext, ...) or a path to
  // a checkpoint file (.pt state_dict as published upstream).
  std::string name = "mn04_as";
  // Folder that holds the checkpoints; empty: $EARMARK_MODELS, then ~/.cache/earmark/models.
  std::string models_dir;
  // Threads per file; 0: the number of cores (at most 8). With 2 or more, decoding,
  // conditioning and features run on one thread while the network uses the others.
  int threads = 0;
  // Chunks (or windows) are batched through the network this many at a time.
  int batch = 4;
  // LibTorch kernels for the convolutions: "auto" (XNNPACK where this LibTorch has it, else
  // oneDNN), "xnnpack" or "onednn". Same scores either way (parity-tested); auto is the fastest.
  std::string backend = "auto";
  // A file's score grid and 10 ms band envelope beyond this many seconds of audio go to a
  // temporary file (TMPDIR, deleted when done) and are read back through a cache of a few MB, so
  // memory stays flat however long the recording (the grid alone is 24 MB per hour); 0: always
  // in memory.
  double spill_after_s = 1200;
  // Custom-class heads (folders written by `earmark train`, see docs/custom-classes.md): their
  // classes are scored on the network's frame embeddings and added to the AudioSet classes.
  // Each must have been trained on this checkpoint with these frames settings.
  std::vector<std::string> heads;
  // Report only the heads' classes (no AudioSet classes). Needs at least one head.
  bool head_only = false;
  // Use each head's suggested per-class on-threshold (chosen on its held-out clips at training)
  // for classes that events.per_class does not set.
  bool head_thresholds = true;
};

// How the frame-level score grid is made over long audio.
struct FramesConfig {
  // "columns": the network runs on short chunks and each time column of its last feature map
  //            is classified (0.32 s grid); chunks overlap by `context_s` on each side.
  // "windows": the network classifies overlapping fixed windows (hop = grid step).
  std::string method = "columns";
  // columns: length of the part of each chunk that is kept, and the context added on each side.
  // Chunks much longer than ~4 s make single columns holding a loud transient (a door slam)
  // light up hundreds of classes: the squeeze-excitation gains are set by the whole chunk,
  // so a short chunk keeps each column close to what the classifier saw in training.
  double chunk_s = 3.2;
  double context_s = 0.32;
  // columns: how many feature columns (each 0.32 s) are averaged before classifying one column.
  int pool_columns = 3;
  // columns: largest L2 norm of a (pooled) column's feature vector before it is classified;
  // longer vectors are scaled down to it (0: off). The classifier was trained on features
  // averaged over whole 10 s clips, whose norm stays within about 4-5.5 on real recordings;
  // a single column holding a loud sound can reach 20, and the classifier, nearly linear in
  // its input's scale, then drives hundreds of unrelated classes to 1.0 (a cow's moo came out
  // as Crying, Yip, Whistling, Traffic noise, ...). Scaling keeps the column's direction (what
  // it sounds like) and brings its size back into the range the classifier knows.
  double column_norm_max = 5.0;
  // columns: passes over the input, each shifted by 0.32 s / passes, interleaved into one grid
  // of 0.32 s / passes (1, 2, 4 or 8; each pass costs one network run). Same network, same
  // short chunks, so the scores keep their calibration on a finer grid.
  int passes = 2;
  // With passes: 2, the layers before the network's last stride along time run once for both
  // passes (Network::column_features with two phases): about 1.3 network runs instead of 2.
  // false: two separate runs, the second on the input shifted by half a column.
  bool shared_passes = true;
  // windows: window length and hop.
  double window_s = 2.0;
  double hop_s = 0.32;
  // Inputs shorter than this are padded (by repetition) so the network sees enough context.
  double min_input_s = 1.0;
};

// Per-class detection thresholds; negative means "use the default".
struct ClassThreshold {
  double on = -1.0;
  double off = -1.0;
  double median_s = -1.0;
  double min_duration_s = -1.0;
};

// Frame scores -> events.
struct EventsConfig {
  double threshold_on = 0.30;   // an event starts where the (smoothed) score rises above this
  double threshold_off = 0.15;  // ... and goes on while the score stays above this (hysteresis)
  double median_s = 0.96;       // median filter length over the score sequence (0: off)
  double min_duration_s = 0.32; // shorter events are dropped
  double merge_gap_s = 0.64;    // same-class events closer than this are merged
  int max_classes_per_frame = 0; // 0: no limit; else only the top-k classes of a frame may be on
  // Boundaries from the signal (detect/boundaries.hpp): each event's onset and offset are moved
  // to where its sound rises out of and sinks back into the background, at 10 ms, searching up
  // to refine_search_s around the score grid's boundary; activity at least refine_threshold_db
  // over the background in the event's own bands; pauses under refine_bridge_s stay inside.
  bool refine = true;
  // ... and an event whose sound stands out of the background in its own bands by less than
  // this (Event::salience_db) is the background's own flicker, not an event (0: keep all).
  double min_salience_db = 6.0;
  double refine_search_s = 1.0;
  double refine_threshold_db = 3.0;
  double refine_bridge_s = 0.25;
  // Backgrounds (detect/background.hpp): a class present for at least background_coverage of a
  // stretch of at least background_min_s (its events chained across gaps under
  // background_bridge_s; present: its score at least background_floor x its off-threshold) is
  // one background segment (kind background), not many events.
  bool background = true;
  double background_min_s = 20.0;
  double background_coverage = 0.5;
  double background_bridge_s = 8.0;
  double background_floor = 0.5;
  // ... or present in at least background_presence of the background_window_s around each moment.
  double background_window_s = 60.0;
  double background_presence = 0.2;
  // False-alarm calibration (docs/false-alarms.md): per-class on-thresholds measured on
  // background-only audio by `earmark calibrate`, and the map from scores to the probability
  // that a detection is right. "" (default): the table built in for the model (if its checkpoint
  // matches); "none": off; else the path of a calibration JSON. per_class entries win over it.
  std::string calibration;
  // One sound, several names (detect/bursts.hpp merge_coincident): refined events of different
  // labels whose onsets and offsets both agree within same_sound_s are one sound (0: off).
  double same_sound_s = 0.05;
  // Label bursts (detect/bursts.hpp): where more than burst_max events of unrelated classes
  // start within burst_window_s, only the burst_max best supported are kept (0: off). Like
  // same_sound_s, part of one name per sound: off with events.rollup false (--all-labels).
  int burst_max = 4;
  double burst_window_s = 0.64;
  std::map<std::string, ClassThreshold> per_class;  // by AudioSet display name (or group name)
  std::vector<std::string> allow;  // if not empty: only these labels (or groups) are reported
  std::vector<std::string> deny;   // these labels are never reported
  // Group several AudioSet labels under one reported name, e.g. "Dog": [Bark, Yip, Howl].
  // A group's score per frame is the maximum of its members' scores.
  std::map<std::string, std::vector<std::string>> groups;
  // One name per sound (docs/labels.md): labels of one sound that are related in the AudioSet
  // ontology (Dog, Animal, Domestic animals, Whimper) are reported as one event under the most
  // specific confident label, the others kept in the JSON's "also". false: every label's own events.
  bool rollup = true;
  // A label names the sound only if its confidence is at least this times that of each related
  // label it would replace (its ancestors, its co-parents): a weak child keeps its confident parent.
  double rollup_ratio = 0.5;
  // Path of the AudioSet ontology.json; empty: looked up in the models folder and its sibling
  // audioset/. Without one, every label is reported (a warning) unless require_ontology is set.
  std::string ontology;
  bool require_ontology = false;
};

// condition: optional steps between decode and features. Defaults follow bench/conditioning
// (noisy, quiet and TV-backed soundscapes, 171 events): loudness normalisation raised every
// metric (event-F1 micro .074 -> .081, PSDS1 .005 -> .016, PSDS2 .064 -> .097) and is on;
// DC removal and high-pass changed nothing beyond noise and the denoiser halved event-F1
// (.074 -> .035), so those are off. docs/conditioning.md has the table.
struct DcRemoveConfig {
  bool enabled = false;
  double cutoff_hz = 5.0;  // -3 dB point; 1 to 40 Hz
};

struct HighpassConfig {
  bool enabled = false;
  double cutoff_hz = 80.0;  // -3 dB point of the Butterworth response; 10 to 2000 Hz
};

struct NormalizeConfig {
  std::string mode = "loudness";      // "off" | "peak" | "loudness" (measured: see above)
  double peak_target_dbfs = -1.0;     // peak mode: sample peak after the gain
  double loudness_target_lufs = -23.0;  // loudness mode: BS.1770 integrated loudness after the gain
  // Never amplify by more than this.
  double max_gain_db = 20.0;
  // Never amplify the noise floor (QualityReport::noise_floor_dbfs) above this.
  double max_noise_floor_dbfs = -50.0;
  // Loudness mode: the gain is lowered so that the sample peak stays at or below this.
  double peak_ceiling_dbfs = -1.0;
  // Streaming without a given gain: length of the leading window the gain is measured on.
  double analysis_s = 10.0;
};

struct DenoiseConfig {
  bool enabled = false;
  // STFT: sqrt-Hann analysis and synthesis windows; fft_size / hop must be an integer >= 2
  // (overlap-add is then exact: with unit gains the output equals the input).
  int fft_size = 1024;
  int hop = 256;
  // A frame's level is the mean over its bins of 10 log10(power).
  // First noise profile: per-bin mean power of the quietest quiet_fraction of the frames in
  // the first noise_init_s seconds (adds that much latency; if those are all digital silence
  // it waits up to twice as long, then passes them through and tries again).
  double noise_init_s = 2.0;
  double quiet_fraction = 0.15;
  // Then the profile follows the noise: frames whose level is within update_gate_db of the
  // lowest frame level of the last update_window_s seconds count as noise only and are
  // averaged in with time constant update_time_s.
  double update_window_s = 5.0;
  double update_gate_db = 3.0;
  double update_time_s = 2.0;
  // Gain rule: Wiener gain xi/(1+xi) with the a-priori SNR xi from the decision-directed
  // estimate (weight dd_alpha on the previous frame's clean estimate: the main defence
  // against isolated spectral peaks, "musical noise"), against the noise profile times
  // over_subtraction; never below gain_floor_db (keeps some natural background instead of
  // "underwater" artefacts). Each bin's gain may then rise at once but falls with time
  // constant gain_release_s (0: off), so that sounds are not chopped and the residual noise
  // does not flicker.
  double over_subtraction = 1.5;
  double dd_alpha = 0.98;
  double gain_floor_db = -15.0;
  double gain_release_s = 0.05;
};

struct ConditionConfig {
  DcRemoveConfig dc_remove;
  HighpassConfig highpass;
  DenoiseConfig denoise;
  NormalizeConfig normalize;

  bool any_enabled() const;
  // Throws earmark::Error naming the key ("condition.denoise.hop") and what to do.
  void validate() const;
  // YAML-style listing of every field, for logs and reports.
  std::string to_string() const;
};

// What is written per file and for the whole run.
struct OutputConfig {
  std::vector<std::string> formats = {"csv", "json", "audacity", "tsv"};
  bool frame_scores = false;  // include the score grid in the JSON output
  // Fill FileResult::detection_scores: the whole detector's scores (detect/boundaries.hpp
  // detection_scores), what `earmark eval --scores` should rank for PSDS. Costs 19 extra runs
  // of the event stage per file.
  bool detection_scores = false;
  bool per_file = true;       // write one file per input besides the run-wide files
};

// Every number in every configuration and CLI flag follows one rule: it is finite (NaN and
// infinity are named as such in the error) and inside the range of its key. The ranges live in
// one table per struct in src/config.cpp, which also drives parsing, printing and the
// unknown-key check; the CLI checks the flags that set a key against the same table.

// Throws earmark::Error unless `v` is a finite number inside the range of the configuration
// key `key` ("events.threshold_on"). `name` is what the user wrote (a CLI flag such as
// "--threshold"); empty: the key. Throws std::invalid_argument for a key that is not numeric.
void check_config_number(const std::string& key, double v, const std::string& name = "");
// The range of numeric key `key` in words ("must be a score between 0 and 1").
std::string config_rule(const std::string& key);
// Same rule for numbers outside the configuration (CLI options): finite and lo <= v <= hi;
// `rule` says the range in words for the message.
void check_number(const std::string& name, double v, double lo, double hi, const std::string& rule);

struct Config {
  ModelConfig model;
  ConditionConfig condition;
  FramesConfig frames;
  EventsConfig events;
  OutputConfig output;

  // Throws earmark::Error naming the bad key and what to do.
  void validate() const;
  // YAML (also accepts JSON) text; every key optional.
  static Config from_yaml_text(const std::string& text, const std::string& origin = "config");
  static Config from_file(const std::string& path);
  // Effective configuration as YAML, for logs and reports.
  std::string to_yaml() const;
};

}  // namespace earmark
