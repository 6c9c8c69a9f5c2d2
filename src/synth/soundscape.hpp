// synth internals: the sounds folder's tables, rendering and writing one soundscape (the
// specification and synthesize() are public: earmark/synth.hpp, with the level model).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "earmark/synth.hpp"
#include "util/wav.hpp"

namespace earmark::synth {

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

// Noise of unit RMS over `n` samples at `rate`: white (flat), pink (-3 dB/octave from 10 Hz,
// within 0.3 dB up to a fifth of the rate, a little flatter above), brown (-6 dB/octave above
// 20 Hz). Deterministic in `seed`. Throws earmark::Error on an unknown colour.
std::vector<float> make_noise(const std::string& color, size_t n, int rate, uint64_t seed);

}  // namespace earmark::synth
