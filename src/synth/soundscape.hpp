// synth: long soundscapes with known ground truth, for evaluation. Real event clips
// (sounds/events.csv) are placed with random pauses over a real background
// (sounds/backgrounds.csv), optionally with a TV-like bed and coloured noise, each event at a
// random SNR; the result is written as a 32 kHz mono WAV, a DCASE TSV and a JSON manifest.
//
// Levels. Everything that is not an event is the "bed": background + TV bed + noise.
//   - The background is looped (50 ms crossfade at the seam) from a random start.
//   - tv.level_db: the TV bed's RMS relative to the background's RMS.
//   - noise.snr_db: the background's RMS over the noise's RMS (negative: the noise is louder).
//     With no background, the noise (or else the TV bed) sets the reference level itself.
//   - events.snr_db [lo, hi]: each event's SNR is drawn uniformly in this range and means
//     20*log10(RMS(event clip) / RMS(bed)), where RMS(bed) is taken
//       local  (default): over the event's own span [onset, offset) of the bed, floored at
//                         20 dB below the bed's overall RMS (a near-silent span would
//                         otherwise ask for a deafening event), or
//       global:           over the whole bed.
//     Events never count towards another event's reference.
//   - peak_dbfs: finally the whole mix is scaled so its peak is exactly this level (e.g. -1, or
//     -40 for a very quiet recording), so the output never clips.
// Timing. The first onset comes after a pause; after each event the next one starts a pause
// later, pause = min_gap_s + exponential(mean_gap_s - min_gap_s) (so the mean pause is
// mean_gap_s), or, with probability overlap_prob, it starts inside the previous event (at 10-90
// % of its length). Generation stops at the first event that would not end inside the file.
// Classes are drawn uniformly among the allowed ones, then a clip uniformly within the class.
//
// Reproducibility: a given spec, seed and sounds folder give the same bytes run after run. The
// random draws are our own on top of std::mt19937_64 (std distributions differ between
// standard libraries); across machines the output can still differ in the last bits where
// FFmpeg/soxr pick CPU-specific code paths. Separate random streams (derived from the seed)
// drive the background, TV bed, noise and events, so changing only event settings leaves the
// bed unchanged. Memory: the mix is built in memory (4 bytes x rate x duration).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "util/wav.hpp"

namespace earmark::synth {

struct EventsSpec {
  double mean_gap_s = 20.0;  // mean pause between the end of an event and the next onset
  double min_gap_s = 1.0;    // shortest pause
  double snr_min_db = -5.0;
  double snr_max_db = 15.0;
  std::string snr_reference = "local";  // "local" or "global" (see above)
  double overlap_prob = 0.0;            // chance that an event starts inside the previous one
  std::vector<std::string> classes;     // allowed classes (events.csv `class`); empty: all
  // Allowed clips, as in events.csv's `file` column or just the file name; empty: all.
  std::vector<std::string> clips;
  std::string clips_file;  // a text file with more allowed clips, one per line ('#' comments)
  int max_events = 0;      // 0: no limit
};

struct BackgroundSpec {
  // "random" (among `kinds`), "none", or a backgrounds.csv entry: its file, file name or stem
  // ("backgrounds/rain.flac", "rain.flac", "rain").
  std::string file = "random";
  std::vector<std::string> kinds = {"ambience", "household"};
};

struct TvSpec {
  std::string file = "none";  // "none", "random" (a tv-kind background) or an entry as above
  double level_db = -15.0;    // TV RMS relative to the background RMS
};

struct NoiseSpec {
  std::string color = "none";  // none, white, pink, brown
  double snr_db = 10.0;        // background RMS over noise RMS, dB
};

struct SoundscapeSpec {
  uint64_t seed = 1;
  std::string name = "soundscape";  // output base name; with count > 1: NAME-000, NAME-001...
  int count = 1;                    // soundscapes to make; file i uses seed + i
  double duration_s = 600.0;
  int sample_rate = 32000;
  util::WavFormat format = util::WavFormat::pcm16;
  double peak_dbfs = -1.0;
  // What the reference events (TSV) mark: "audible" (default): the stretches where each placed
  // clip can be heard over the bed (synth/audible.hpp: leading/trailing silence, pauses between
  // bursts and masked tails are not the event; three barks are three events); "clip": each
  // clip's whole file span. The manifest always has both.
  std::string annotation = "audible";
  // Folder with events.csv, backgrounds.csv and the clips; relative paths in a spec file are
  // taken from the spec file's folder.
  std::string sounds_dir;
  EventsSpec events;
  BackgroundSpec background;
  TvSpec tv;
  NoiseSpec noise;

  // Throws earmark::Error naming the key and the allowed range.
  void validate() const;
  // YAML (or JSON) with the keys above, nested as events/background/tv/noise; every key is
  // optional; unknown keys are errors. `base_dir` resolves relative sounds_dir/clips_file.
  static SoundscapeSpec from_yaml_text(const std::string& text, const std::string& origin = "spec",
                                       const std::string& base_dir = "");
  static SoundscapeSpec from_file(const std::string& path);
  // All parameters as JSON (for the manifest).
  std::string to_json() const;
};

struct Clip {
  std::string file;   // relative to the sounds folder, as listed
  std::string label;  // class
  std::vector<std::string> audioset_labels;
  double duration_s = 0;
};
struct Background {
  std::string file;
  std::string kind;
  double duration_s = 0;
};

// The tables of a sounds folder. Throws earmark::Error if a table is missing or malformed.
struct SoundLibrary {
  std::string dir;
  std::vector<Clip> clips;
  std::vector<Background> backgrounds;
  static SoundLibrary load(const std::string& dir);
};

struct PlacedEvent {
  double onset = 0;   // seconds (sample-exact: onset_sample / rate)
  double offset = 0;
  std::string label;
  std::vector<std::string> audioset_labels;
  std::string clip;
  double snr_db = 0;         // drawn SNR (what the gain realises against the reference)
  double gain_db = 0;        // gain applied to the clip, before the final mix gain
  double reference_db = 0;   // bed RMS used as the reference, dBFS in the final output
  bool overlaps_previous = false;
  // Where the clip is audible (seconds from the file start; see SoundscapeSpec::annotation).
  std::vector<std::pair<double, double>> audible;
};

struct Soundscape {
  uint64_t seed = 0;
  int sample_rate = 0;
  std::vector<float> audio;  // the final mix
  std::vector<float> bed;    // background + TV + noise at the same final gain (if asked for)
  std::vector<PlacedEvent> events;
  double mix_gain_db = 0;  // final scaling applied to everything
  std::string manifest_json;
  std::string annotation = "audible";  // the spec's: what reference_events() marks
  // The reference events as written to the TSV: {onset, offset, label}, by onset.
  struct Reference {
    double onset, offset;
    std::string label;
  };
  std::vector<Reference> reference_events() const;
};

// Renders one soundscape for `seed` (spec.seed is ignored here). Decodes the clips and
// backgrounds it uses through decode::. keep_bed fills Soundscape::bed (tests, analysis).
Soundscape render(const SoundscapeSpec& spec, const SoundLibrary& lib, uint64_t seed, bool keep_bed = false);

// Writes OUT_DIR/NAME.wav, NAME.tsv (filename\tonset\toffset\tevent_label, header line),
// NAME.json (manifest). Creates the folder. Returns the paths written.
std::vector<std::string> write_soundscape(const Soundscape& s, util::WavFormat format, const std::string& out_dir,
                                          const std::string& name);

// validate + load the library + render and write spec.count soundscapes; with count > 1 also
// OUT_DIR/NAME.tsv with every file's events. Returns the paths written.
std::vector<std::string> synthesize(const SoundscapeSpec& spec, const std::string& out_dir);

// Noise of unit RMS over `n` samples at `rate`: white (flat), pink (-3 dB/octave from 10 Hz,
// within 0.3 dB up to a fifth of the rate, a little flatter above), brown (-6 dB/octave above
// 20 Hz). Deterministic in `seed`. Throws earmark::Error on an unknown colour.
std::vector<float> make_noise(const std::string& color, size_t n, int rate, uint64_t seed);

}  // namespace earmark::synth
