// earmark synth: build evaluation soundscapes with known ground truth (see src/synth/).
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "earmark/earmark.hpp"
#include "earmark/synth.hpp"

namespace earmark::cli {

namespace {

struct SynthArgs {
  std::string spec_path, out_dir, sounds, name, format, snr_reference, clips_file, background, tv, noise, annotation;
  uint64_t seed = 0;
  int count = 0, max_events = 0;
  double duration = 0, peak_dbfs = 0, mean_gap = 0, min_gap = 0, overlap = 0, tv_level = 0, noise_snr = 0;
  std::vector<double> snr;
  std::vector<std::string> classes, clips;
};

std::string default_sounds_dir() {
  if (const char* s = std::getenv("EARMARK_SOUNDS"); s && *s) return s;
  if (const char* s = std::getenv("EARMARK_SHARED"); s && *s) return (std::filesystem::path(s) / "sounds").string();
  return "";
}

}  // namespace

void add_synth_command(CLI::App& app) {
  auto a = std::make_shared<SynthArgs>();
  auto* cmd = app.add_subcommand("synth", "build soundscapes with known events (WAV + DCASE TSV + JSON manifest)");
  cmd->footer(
      "Options override the spec file's keys (see include/earmark/synth.hpp for the level model).\n"
      "The sounds folder defaults to $EARMARK_SOUNDS, then $EARMARK_SHARED/sounds.");
  cmd->add_option("--spec", a->spec_path, "YAML/JSON spec file")->check(CLI::ExistingFile);
  cmd->add_option("-o,--out", a->out_dir, "output folder")->required();
  auto* o_sounds = cmd->add_option("--sounds", a->sounds, "folder with events.csv, backgrounds.csv and the clips");
  auto* o_seed = cmd->add_option("--seed", a->seed, "random seed (file i of --count uses seed + i)");
  auto* o_count = cmd->add_option("--count", a->count, "number of soundscapes");
  auto* o_name = cmd->add_option("--name", a->name, "output base name");
  auto* o_dur = cmd->add_option("--duration", a->duration, "length in seconds");
  auto* o_fmt = cmd->add_option("--format", a->format, "WAV samples: s16 or f32");
  auto* o_peak = cmd->add_option("--peak-dbfs", a->peak_dbfs, "peak level of the mix (e.g. -40 for very quiet)");
  auto* o_annotation = cmd->add_option("--annotation", a->annotation,
                                       "reference events: audible (where each sound is heard, default) or clip (whole clip span)");
  auto* o_gap = cmd->add_option("--mean-gap", a->mean_gap, "mean pause between events, seconds");
  auto* o_min_gap = cmd->add_option("--min-gap", a->min_gap, "shortest pause between events, seconds");
  auto* o_snr = cmd->add_option("--snr", a->snr, "event SNR range in dB: LO HI")->expected(2);
  auto* o_ref = cmd->add_option("--snr-reference", a->snr_reference, "local or global");
  auto* o_overlap = cmd->add_option("--overlap", a->overlap, "probability that an event overlaps the previous one");
  auto* o_classes = cmd->add_option("--classes", a->classes, "allowed classes")->delimiter(',');
  auto* o_clips = cmd->add_option("--clips", a->clips, "allowed clips")->delimiter(',');
  auto* o_clips_file = cmd->add_option("--clips-file", a->clips_file, "file listing the allowed clips");
  auto* o_max = cmd->add_option("--max-events", a->max_events, "at most this many events (0: no limit)");
  auto* o_bg = cmd->add_option("--background", a->background, "random, none or a background name");
  auto* o_tv = cmd->add_option("--tv", a->tv, "TV bed: none, random or a name");
  auto* o_tv_level = cmd->add_option("--tv-level", a->tv_level, "TV bed RMS relative to the background, dB");
  auto* o_noise = cmd->add_option("--noise", a->noise, "none, white, pink or brown");
  auto* o_noise_snr = cmd->add_option("--noise-snr", a->noise_snr, "background RMS over noise RMS, dB");

  // The spec's validate() holds the ranges; the flags refuse NaN and infinity by name here.
  for (auto* o : {o_dur, o_peak, o_gap, o_min_gap, o_snr, o_overlap, o_tv_level, o_noise_snr})
    o->check(number_in(-HUGE_VAL, HUGE_VAL, "must be a finite number"));

  cmd->callback([=] {
    synth::SoundscapeSpec s = a->spec_path.empty() ? synth::SoundscapeSpec{} : synth::SoundscapeSpec::from_file(a->spec_path);
    auto given = [](const CLI::Option* o) { return o->count() > 0; };
    if (given(o_sounds)) s.sounds_dir = a->sounds;
    if (s.sounds_dir.empty()) s.sounds_dir = default_sounds_dir();
    if (given(o_seed)) s.seed = a->seed;
    if (given(o_count)) s.count = a->count;
    if (given(o_name)) s.name = a->name;
    if (given(o_dur)) s.duration_s = a->duration;
    if (given(o_fmt)) s.format = parse_wav_format(a->format);
    if (given(o_peak)) s.peak_dbfs = a->peak_dbfs;
    if (given(o_annotation)) s.annotation = a->annotation;
    if (given(o_gap)) s.events.mean_gap_s = a->mean_gap;
    if (given(o_min_gap)) s.events.min_gap_s = a->min_gap;
    if (given(o_snr)) {
      s.events.snr_min_db = a->snr[0];
      s.events.snr_max_db = a->snr[1];
    }
    if (given(o_ref)) s.events.snr_reference = a->snr_reference;
    if (given(o_overlap)) s.events.overlap_prob = a->overlap;
    if (given(o_classes)) s.events.classes = a->classes;
    if (given(o_clips)) s.events.clips = a->clips;
    if (given(o_clips_file)) s.events.clips_file = a->clips_file;
    if (given(o_max)) s.events.max_events = a->max_events;
    if (given(o_bg)) s.background.file = a->background;
    if (given(o_tv)) s.tv.file = a->tv;
    if (given(o_tv_level)) s.tv.level_db = a->tv_level;
    if (given(o_noise)) s.noise.color = a->noise;
    if (given(o_noise_snr)) s.noise.snr_db = a->noise_snr;
    for (const auto& p : synth::synthesize(s, a->out_dir)) std::cout << p << "\n";
  });
}

}  // namespace earmark::cli
