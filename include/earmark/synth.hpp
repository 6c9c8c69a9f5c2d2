// earmark/synth.hpp: long soundscapes with known ground truth, for evaluation. Real event clips
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


namespace earmark {

// Sample format of the WAV files earmark writes: 16-bit PCM or 32-bit float.
enum class WavFormat { pcm16, float32 };
// "s16" / "f32" <-> WavFormat; parse throws earmark::Error naming the value.
WavFormat parse_wav_format(const std::string& name);
const char* wav_format_name(WavFormat f);

namespace synth {


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
  WavFormat format = WavFormat::pcm16;
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

// validate + load the sounds folder + render and write spec.count soundscapes: OUT_DIR/NAME.wav,
// NAME.tsv (filename\tonset\toffset\tevent_label, header line) and NAME.json (manifest); with
// count > 1 also OUT_DIR/NAME.tsv with every file's events. Returns the paths written.
std::vector<std::string> synthesize(const SoundscapeSpec& spec, const std::string& out_dir);

}  // namespace synth
}  // namespace earmark
