// Detector: the pipeline decode -> features -> model -> detect for one file, streaming in
// blocks so that memory stays bounded whatever the file's length.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <condition_variable>
#include <deque>
#include <exception>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "condition/quality.hpp"
#include "decode/decoder.hpp"
#include "detect/background.hpp"
#include "detect/boundaries.hpp"
#include "detect/bursts.hpp"
#include "detect/calibration.hpp"
#include "detect/events.hpp"
#include "detect/ontology.hpp"
#include "detect/rollup.hpp"
#include "earmark/earmark.hpp"
#include "model/head.hpp"
#include "model/labels.hpp"
#include "model/network.hpp"
#include "model/registry.hpp"
#include "model/scorer.hpp"
#include "run/front_half.hpp"
#include "util/sha256.hpp"

namespace earmark {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void fill_quality(const condition::QualityReport& q, FileResult& r) {
  r.quality.measured = true;
  r.quality.peak_dbfs = q.peak_dbfs;
  r.quality.rms_dbfs = q.rms_dbfs;
  r.quality.loudness_lufs = q.loudness_lufs;
  r.quality.dc_offset = q.dc_offset;
  r.quality.noise_floor_dbfs = q.noise_floor_dbfs;
  r.quality.snr_db = q.snr_db;
  r.quality.noise_colour = condition::to_string(q.noise_colour);
  r.quality.hum_hz = q.hum_detected ? q.hum_frequency_hz : 0.0;
  r.quality.clipped_samples = size_t(std::max<int64_t>(0, q.clipped_samples));
  for (const auto& a : q.anomalies)
    r.anomalies.push_back(Anomaly{condition::to_string(a.kind), condition::to_string(a.severity), a.start_s, a.end_s,
                                  a.message});
}

// Decoded audio is handed on in blocks of this many samples (10 s): big enough to amortise
// the per-call costs, small enough that an hour-long file never sits in memory.
constexpr size_t kBlockSamples = size_t(kSampleRate) * 10;
// With the front half on its own thread, smaller blocks let the network start sooner.
constexpr size_t kPipelinedBlockSamples = size_t(kSampleRate) * 2;

std::string describe_conditioning(const ConditionConfig& c) {
  std::string s;
  auto add = [&](const std::string& step) { s += (s.empty() ? "" : ", ") + step; };
  if (c.dc_remove.enabled) add("DC removal");
  if (c.highpass.enabled) add("high-pass " + std::to_string(int(c.highpass.cutoff_hz)) + " Hz");
  if (c.denoise.enabled) add("spectral denoising");
  if (c.normalize.mode != "off") add(c.normalize.mode + " normalisation");
  return s;
}

}  // namespace

// What the events stage reads besides a file's score grid (Detector::detect_file with `keep`).
struct Detector::EventInputs {
  EventInputs(detect::BandEnvelope e, model::FrameScorer::Unscaled u, double d)
      : envelope(std::move(e)), unscaled(std::move(u)), duration_s(d) {}
  detect::BandEnvelope envelope;
  model::FrameScorer::Unscaled unscaled;
  double duration_s;
};

struct Detector::Impl {
  Config config;
  model::ResolvedModel resolved;
  std::vector<LabelInfo> labels;
  std::string sha256;
  std::unique_ptr<model::Network> net;
  std::vector<model::Head> heads;  // custom classes (model.heads), scored after the AudioSet ones
  size_t audioset_classes = 0;     // AudioSet columns kept in the score grid (0 with head_only)
  // Two or more threads: the front half of the pipeline gets its own thread, the network the rest.
  bool pipelined = false;
  // events.rollup: the AudioSet ontology and the roll-up over this grid's labels (null: all labels).
  std::unique_ptr<detect::Ontology> ontology;
  std::unique_ptr<detect::Rollup> rollup;
  // events.calibration: per-class thresholds (already in config.events.per_class) and the
  // confidence map; null when off.
  std::optional<detect::Calibration> calibration;
  std::string calibration_summary;

  // An event's confidence is its label's peak score; where the network's columns were scaled
  // down (frames.column_norm_max: a loud sound) the peak is taken from the unscaled scores,
  // which is what the network says of the sound as it is. Events are still found, named and
  // kept on the scaled grid.
  void unscaled_confidence(std::vector<Event>& events, const model::FrameScorer::Unscaled& rows, double hop_s) const {
    std::unordered_map<std::string, size_t> column;
    for (size_t c = 0; c < audioset_classes; ++c) column.emplace(labels[c].name, c);
    auto peak = [&](const std::string& label, double onset, double offset, float current) {
      const auto it = column.find(label);
      if (it == column.end() || !(hop_s > 0)) return current;
      const long r0 = long(std::floor(onset / hop_s)), r1 = long(std::ceil(offset / hop_s)) - 1;
      for (size_t k = rows.first_at_or_after(r0); k < rows.size() && rows.row(k) <= r1; ++k)
        if (it->second < rows.classes()) current = std::max(current, float(rows.score(k, it->second)) / 255.0f);
      return current;
    };
    for (auto& e : events) {
      if (e.kind != EventKind::event) continue;
      e.confidence = peak(e.label, e.onset, e.offset, e.confidence);
      for (auto& a : e.also) a.confidence = peak(a.label, e.onset, e.offset, a.confidence);
      std::stable_sort(e.also.begin(), e.also.end(),
                       [](const RolledLabel& a, const RolledLabel& b) { return a.confidence > b.confidence; });
    }
  }

  // The events of a file from its score grid: events -> backgrounds -> boundaries -> one name
  // per sound -> bursts -> calibrated confidence, under `ev` (config.events, or a variant of it
  // that earmark tune tries).
  std::vector<Event> find_events(const EventsConfig& ev, const FrameScores& scores, const detect::BandEnvelope* envelope,
                                 double duration_s, FrameScores* detection_scores,
                                 const model::FrameScorer::Unscaled* unscaled = nullptr) const {
    std::vector<Event> all = detect::mark_backgrounds(detect::find_events(scores, ev, duration_s),
                                                      detect::BackgroundParams::from(ev), &scores);
    std::vector<Event> events, backgrounds;
    detect::split_kinds(all, events, backgrounds);
    if (ev.refine && envelope) {
      events = detect::refine_boundaries(events, *envelope, detect::BoundaryParams::from(ev), duration_s);
      // What does not stand out of the background in its own bands is the background flickering,
      // unless the class itself fills the context (music all through a clip has nothing else to
      // stand out from): then the contrast says nothing.
      if (ev.min_salience_db > 0) {
        const auto bg = detect::BackgroundParams::from(ev);
        std::erase_if(events, [&](const Event& e) {
          return double(e.salience_db) < ev.min_salience_db &&
                 detect::presence_around(scores, e, bg, detect::BoundaryParams{}.context_s) < 0.5;
        });
      }
    }
    if (detection_scores) *detection_scores = detect::detection_scores(scores, ev, ev.refine ? envelope : nullptr, duration_s);
    if (rollup) {
      events = rollup->apply(events);
      backgrounds = rollup->apply(backgrounds);
      detect::absorb_related(
          events, backgrounds, [&](const std::string& a, const std::string& b) { return rollup->related(a, b); },
          detect::BackgroundParams::from(ev), &scores);
    } else {
      detect::absorb_related(
          events, backgrounds, [](const std::string& a, const std::string& b) { return a == b; },
          detect::BackgroundParams::from(ev), &scores);
    }
    const auto bursts = detect::BurstParams::from(ev);
    if (rollup && ev.refine && ev.same_sound_s > 0)  // one name per sound; --all-labels keeps every name
      events = detect::merge_coincident(events, bursts, ev.same_sound_s, ev.rollup_ratio, [&](const std::string& l) {
        return rollup ? rollup->depth(l) : 0;
      });
    if (rollup) events = detect::suppress_bursts(events, bursts);  // --all-labels: every label's own events
    events.insert(events.end(), backgrounds.begin(), backgrounds.end());
    std::sort(events.begin(), events.end(), detect::reported_order);
    if (unscaled && !unscaled->empty()) unscaled_confidence(events, *unscaled, scores.hop_s);
    if (calibration && calibration->has_confidence)
      for (auto& e : events) {
        e.confidence = calibration->confidence(e.label, e.score);
        for (auto& a : e.also) a.confidence = calibration->confidence(a.label, a.confidence);
      }
    return events;
  }

  // Runs the front half (condition + features + network, run::FrontHalf) and events over a
  // source of samples; `next` appends the next block (returns false at the end). One block is
  // read ahead so that the last one is known as such. With pipelining, decode/condition/features
  // run on a second thread and hand mel frames to the network through a small bounded queue, so
  // the two halves (each about half of the work) overlap.
  // `expected_s`: the input's length if known beforehand (a container's estimate; 0: unknown),
  // so that the per-file grids are allocated once rather than grown by doubling (which holds up
  // to three times a long file's grid at the moment it grows).
  template <typename Next>
  FileResult run(const std::string& name, Next&& next, Timings& t, bool pipelined, double expected_s = 0,
                 std::shared_ptr<const Detector::EventInputs>* keep = nullptr) const {
    FileResult r;
    r.path = name;
    run::FrontHalf half(config, *net, !heads.empty(), true);
    // The AudioSet classes alone: the scorer keeps the scores in a compact grid (half floats:
    // the grid as it is reported), not the logits; with heads the logits are combined with theirs.
    const bool scores_only = heads.empty() && audioset_classes == size_t(net->info().num_classes);
    if (scores_only) half.keep_scores_only();
    half.expect_seconds(expected_s);
    const model::FrameScorer& scorer = half.scorer();

    // The front half: one block in, the mel frames it completes out. Returns false at the end.
    std::vector<float> block, ahead;
    bool more = true, started = false;
    auto front = [&](std::vector<float>& frames) {
      auto t0 = Clock::now();
      if (!started) {
        more = next(block);
        started = true;
      } else {
        block.swap(ahead);
      }
      ahead.clear();
      if (more) more = next(ahead);
      const bool last = !more && ahead.empty();
      t.decode_s += since(t0);
      half.front(block, last, frames, &t);
      return !last;
    };
    auto back = [&](const std::vector<float>& frames, bool more_blocks) { half.back(frames, !more_blocks, &t); };

    if (!pipelined) {
      std::vector<float> frames;
      for (bool go = true; go;) {
        frames.clear();
        go = front(frames);
        back(frames, go);
      }
    } else {
      struct Item {
        std::vector<float> frames;
        bool more;
      };
      std::mutex m;
      std::condition_variable cv;
      std::deque<Item> queue;
      std::exception_ptr error;
      bool stop = false;
      constexpr size_t kMaxQueued = 4;
      std::thread producer([&] {
        try {
          for (bool go = true; go;) {
            Item item;
            go = front(item.frames);
            item.more = go;
            std::unique_lock lock(m);
            cv.wait(lock, [&] { return queue.size() < kMaxQueued || stop; });
            if (stop) return;
            queue.push_back(std::move(item));
            cv.notify_all();
          }
        } catch (...) {
          std::lock_guard lock(m);
          error = std::current_exception();
          cv.notify_all();
        }
      });
      try {
        for (bool go = true; go;) {
          Item item;
          {
            std::unique_lock lock(m);
            cv.wait(lock, [&] { return !queue.empty() || error; });
            if (queue.empty()) break;  // the producer failed
            item = std::move(queue.front());
            queue.pop_front();
            cv.notify_all();
          }
          go = item.more;
          back(item.frames, go);
        }
      } catch (...) {
        {
          std::lock_guard lock(m);
          stop = true;
          cv.notify_all();
        }
        producer.join();
        throw;
      }
      producer.join();
      if (error) std::rethrow_exception(error);
    }

    auto t0 = Clock::now();
    fill_quality(half.quality(), r);
    r.quality.conditioning = config.condition.any_enabled() ? describe_conditioning(config.condition) : "off";
    r.spectrogram = half.thumbnail();
    t.condition_s += since(t0);
    t0 = Clock::now();
    r.info.duration_s = double(half.samples()) / kSampleRate;
    FrameScores raw;
    raw.hop_s = scorer.hop_s();
    raw.frames = scorer.frames();
    raw.labels.reserve(labels.size());
    for (const auto& l : labels) raw.labels.push_back(l.name);
    const size_t width = labels.size(), frames = size_t(raw.frames);
    const size_t net_classes = size_t(net->info().num_classes);
    auto sigmoid = [](float z) { return 1.0f / (1.0f + std::exp(-z)); };
    if (scores_only && width == net_classes) {
      // The scorer's compact scores are the grid (527 x 2 bytes per 0.16 s: 24 MB per hour), held once.
      raw.values = half.take_scores();
    } else {
      raw.values.resize(frames * width);
      for (size_t f = 0; f < frames; ++f)
        for (size_t c = 0; c < audioset_classes; ++c) raw.values.set(f * width + c, sigmoid(scorer.logits()[f * net_classes + c]));
    }
    size_t column = audioset_classes;
    std::vector<float> head_logits;
    for (const auto& h : heads) {
      const size_t k = h.classes.size();
      head_logits.resize(frames * k);
      h.logits(scorer.embeddings().data(), frames, head_logits.data());
      if (h.exclusive)  // only the best class of the head per frame
        for (size_t f = 0; f < frames; ++f) {
          float* row = head_logits.data() + f * k;
          const size_t best = size_t(std::max_element(row, row + k) - row);
          for (size_t c = 0; c < k; ++c)
            if (c != best) row[c] = -1e4f;
        }
      for (size_t f = 0; f < frames; ++f)
        for (size_t c = 0; c < k; ++c) raw.values.set(f * width + column + c, sigmoid(head_logits[f * k + c]));
      column += k;
    }
    const auto unscaled = half.take_unscaled();
    half.release_scorer();  // the scores are in `raw` now: one copy of a long file's grid less
    r.scores = detect::apply_label_config(std::move(raw), config.events);
    r.events = find_events(config.events, r.scores, &half.envelope(), r.info.duration_s,
                           config.output.detection_scores ? &r.detection_scores : nullptr, &unscaled);
    if (keep) *keep = std::make_shared<const Detector::EventInputs>(half.take_envelope(), unscaled, r.info.duration_s);
    t.events_s += since(t0);
    return r;
  }
};

Detector::Detector(Config config) : impl_(std::make_unique<Impl>()) {
  config.validate();
  impl_->config = std::move(config);
  auto& s = *impl_;
  s.resolved = model::resolve_model(s.config.model);
  if (s.resolved.spec && !s.resolved.spec->sha256.empty()) {
    s.sha256 = util::sha256_file(s.resolved.checkpoint);
    if (s.sha256 != s.resolved.spec->sha256)
      throw Error(s.resolved.checkpoint + ": checksum mismatch (sha256 " + s.sha256 + ", expected " +
                  s.resolved.spec->sha256 + "); the download is corrupt or a different file: run scripts/fetch-models " +
                  s.resolved.name + " again");
  } else {
    s.sha256 = util::sha256_file(s.resolved.checkpoint);
  }
  s.labels = model::read_labels(s.resolved.labels);
  const int total_threads = s.config.model.threads > 0
                                ? s.config.model.threads
                                : int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  s.pipelined = total_threads >= 2;
  const auto backend = s.config.model.backend == "xnnpack"  ? model::ConvBackend::xnnpack
                       : s.config.model.backend == "onednn" ? model::ConvBackend::onednn
                                                            : model::ConvBackend::automatic;
  s.net = std::make_unique<model::Network>(s.resolved.checkpoint, s.resolved.spec ? s.resolved.spec->width : 0.0,
                                           s.pipelined ? total_threads - 1 : 1, backend);
  if (s.net->info().num_classes != int(s.labels.size()))
    throw Error(s.resolved.checkpoint + ": the network has " + std::to_string(s.net->info().num_classes) +
                " outputs but " + s.resolved.labels + " lists " + std::to_string(s.labels.size()) + " labels");
  // Custom-class heads: checked against this checkpoint and frames settings, their classes
  // appended to the label list (or replacing it with head_only).
  s.audioset_classes = s.config.model.head_only ? 0 : s.labels.size();
  if (s.config.model.head_only) s.labels.clear();
  for (const auto& dir : s.config.model.heads) {
    model::Head h = model::Head::load(dir);
    h.check_compatible(s.sha256, s.net->info().embedding_dim, s.config.frames);
    for (size_t c = 0; c < h.classes.size(); ++c) {
      const std::string& name = h.classes[c];
      // Label names are matched case-insensitively by the events settings (per_class, allow, ...).
      auto lower = [](std::string x) {
        for (auto& ch : x) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        return x;
      };
      for (const auto& l : s.labels)
        if (lower(l.name) == lower(name))
          throw Error(h.source + ": class '" + name + "' is already a label ('" + l.name + "')" +
                      (l.mid.rfind("head:", 0) == 0 ? " of another head (" + l.mid.substr(5) + ")" : " of the AudioSet model") +
                      "; rename the class (train again with another folder/label name) or use model.head_only");
      s.labels.push_back(LabelInfo{int(s.labels.size()), "head:" + h.source, name});
      if (s.config.model.head_thresholds && c < h.thresholds.size() && h.thresholds[c] >= 0 &&
          !s.config.events.per_class.count(name)) {
        ClassThreshold t;
        t.on = h.thresholds[c];
        t.off = t.on;  // measured: hysteresis below a head's threshold only stretches its events
        s.config.events.per_class[name] = t;
      }
    }
    s.heads.push_back(std::move(h));
  }
  // Check label names used by the configuration now, not at the first file.
  FrameScores probe;
  for (const auto& l : s.labels) probe.labels.push_back(l.name);
  const FrameScores grid = detect::apply_label_config(probe, s.config.events);
  // False-alarm calibration: its thresholds go into events.per_class (so the review, the
  // report and run.json see the thresholds the events were found with).
  const std::string& cal = s.config.events.calibration;
  s.calibration = detect::select_calibration(cal, s.sha256);
  if (s.calibration) {
    if (!s.calibration->checkpoint_sha256.empty() && s.calibration->checkpoint_sha256 != s.sha256)
      throw Error("events.calibration: " + cal + " was made for checkpoint " + s.calibration->checkpoint_sha256.substr(0, 12) +
                  "... (" + s.calibration->model + "), not for " + s.resolved.checkpoint +
                  "; run `earmark calibrate` with this model or set events.calibration: none");
    detect::apply_thresholds(*s.calibration, grid.labels, s.config.events);
    s.calibration_summary = s.calibration->summary();
  }
  if (s.config.events.rollup) {
    const std::string path = model::find_ontology(s.config.model, s.resolved, s.config.events.ontology);
    if (!path.empty()) {
      s.ontology = std::make_unique<detect::Ontology>(detect::Ontology::load(path));
      detect::RollupOptions o;
      o.child_ratio = s.config.events.rollup_ratio;
      s.rollup = std::make_unique<detect::Rollup>(*s.ontology, grid.labels, s.labels, s.config.events, o);
    } else {
      const std::string where = model::models_dir(s.config.model);
      if (s.config.events.require_ontology)
        throw Error("events.require_ontology: the AudioSet ontology.json is neither in " + where +
                    " nor in its sibling folder audioset/; run scripts/fetch-models, set events.ontology to its path, "
                    "or set events.rollup: false to report every label");
      std::cerr << "earmark: warning: the AudioSet ontology.json is neither in " << where
                << " nor in its sibling folder audioset/, so every label is reported on its own (one sound may get "
                   "several names); run scripts/fetch-models to get it or set events.ontology to its path\n";
    }
  }
}

Detector::~Detector() = default;
Detector::Detector(Detector&&) noexcept = default;
Detector& Detector::operator=(Detector&&) noexcept = default;

const Config& Detector::config() const { return impl_->config; }
const std::vector<LabelInfo>& Detector::labels() const { return impl_->labels; }
const std::string& Detector::checkpoint_sha256() const { return impl_->sha256; }
const std::string& Detector::checkpoint_path() const { return impl_->resolved.checkpoint; }
const std::string& Detector::labels_path() const { return impl_->resolved.labels; }
const std::string& Detector::calibration() const { return impl_->calibration_summary; }

const std::string& Detector::backend() const { return impl_->net->info().backend; }

std::vector<Event> Detector::find_events(const FrameScores& scores, const EventInputs& kept, EventsConfig events) const {
  const EventsConfig& own = impl_->config.events;
  if (events.groups != own.groups || events.allow != own.allow || events.deny != own.deny ||
      events.rollup != own.rollup || events.ontology != own.ontology || events.calibration != own.calibration)
    throw Error("find_events: the events settings must keep the detector's groups, allow and deny lists, roll-up and "
                "calibration (they made the file's score grid and the detector); change thresholds, filters and "
                "durations only");
  {
    Config check = impl_->config;
    check.events = events;
    check.validate();
  }
  // As at construction: the calibration table raises the classes it lists, never over a
  // per_class entry of `events`.
  if (impl_->calibration) detect::apply_thresholds(*impl_->calibration, scores.labels, events);
  return impl_->find_events(events, scores, &kept.envelope, kept.duration_s, nullptr, &kept.unscaled);
}

FileResult Detector::detect_file(const std::string& path) const { return detect_file(path, nullptr); }

FileResult Detector::detect_file(const std::string& path, std::shared_ptr<const EventInputs>* keep) const {
  const auto start = Clock::now();
  Timings t;
  FileResult r;
  try {
    auto t0 = Clock::now();
    decode::AudioReader reader(path, kSampleRate);
    t.decode_s += since(t0);
    const bool pipelined = impl_->pipelined;
    const size_t block = pipelined ? kPipelinedBlockSamples : kBlockSamples;
    r = impl_->run(
        path, [&](std::vector<float>& b) { return reader.read(b, block) > 0; }, t, pipelined, reader.info().duration_s,
        keep);
    const double duration = r.info.duration_s;
    r.info = reader.info();
    r.info.duration_s = duration;
    r.warnings = reader.warnings();
    if (duration == 0) throw Error(path + ": the file has no audio samples");
  } catch (const std::exception& e) {
    r = FileResult{};
    r.path = path;
    // Every message names its file (decoding errors do already; a failure further down, such
    // as a full TMPDIR for a long file's frame data, gets the path in front).
    const std::string msg = e.what();
    r.error = msg.rfind(path, 0) == 0 ? msg : path + ": " + msg;
  }
  t.total_s = since(start);
  r.timings = t;
  return r;
}

FileResult Detector::detect_samples(std::span<const float> samples, const std::string& name) const {
  const auto start = Clock::now();
  Timings t;
  size_t pos = 0;
  FileResult r = impl_->run(
      name,
      [&](std::vector<float>& block) {
        const size_t n = std::min(impl_->pipelined ? kPipelinedBlockSamples : kBlockSamples, samples.size() - pos);
        block.assign(samples.begin() + long(pos), samples.begin() + long(pos + n));
        pos += n;
        return pos < samples.size();
      },
      t, impl_->pipelined, double(samples.size()) / kSampleRate);
  r.info.source_rate = kSampleRate;
  r.info.source_channels = 1;
  t.total_s = since(start);
  r.timings = t;
  return r;
}

}  // namespace earmark
