#include "eval/tune.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "detect/events.hpp"

namespace earmark::eval {

namespace {

double or_zero(double v) { return std::isnan(v) ? 0.0 : v; }

// Label names are matched case-insensitively, as find_events does.
bool same_name(std::string a, std::string b) {
  auto low = [](std::string& s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  };
  low(a), low(b);
  return a == b;
}

// Index in [0, bound) from raw 64-bit draws, by rejection so that every index is equally likely.
uint64_t draw_below(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  for (;;) {
    const uint64_t x = rng();
    if (x < limit) return x % bound;
  }
}

// The key of `label` in `per_class`, whatever its case; end() if none.
auto find_class(const std::map<std::string, ClassThreshold>& per_class, const std::string& label) {
  for (auto it = per_class.begin(); it != per_class.end(); ++it)
    if (same_name(it->first, label)) return it;
  return per_class.end();
}

// Event-based F1 of each of `labels` and over all of them (micro; NaN counts as 0: a setting
// that reports nothing has found nothing) for the events of every file under `events`.
struct F1s {
  std::vector<double> per_class;
  double micro = 0;
};
F1s class_f1s(const std::vector<TuneFile>& files, const EventTable& ref, const EventsConfig& events,
              const TuneConfig& config, const std::vector<std::string>& labels, const FindEvents& find) {
  const auto r = event_based(restrict_files(ref, files), detect_all(files, events, find, config.threads),
                             config.event_config, labels);
  F1s out{std::vector<double>(labels.size(), 0.0), or_zero(r.micro.f1)};
  for (const auto& c : r.classes)
    for (size_t k = 0; k < labels.size(); ++k)
      if (c.label == labels[k]) out.per_class[k] = or_zero(c.f1);
  return out;
}

// `cfg` with `label`'s per_class entry (whatever its case) replaced by `s`, or removed (nullptr).
void set_class(EventsConfig& cfg, const std::string& label, const ClassThreshold* s) {
  for (auto it = cfg.per_class.begin(); it != cfg.per_class.end();)
    it = same_name(it->first, label) ? cfg.per_class.erase(it) : std::next(it);
  if (s) cfg.per_class[label] = *s;
}

}  // namespace

std::vector<double> TuneConfig::default_thresholds() {
  std::vector<double> t;
  for (int k = 1; k <= 18; ++k) t.push_back(k * 0.05);
  return t;
}

void TuneConfig::validate() const {
  if (thresholds.empty()) throw Error("tune: give at least one on-threshold to try");
  for (double t : thresholds)
    if (!(t > 0.0 && t <= 1.0))
      throw Error(fmt::format("tune: on-threshold {} must be in (0, 1]", t));
  if (!(off_ratio > 0.0 && off_ratio <= 1.0))
    throw Error(fmt::format("tune: off ratio {} must be in (0, 1] (off = on x ratio)", off_ratio));
  if (median_frames.empty()) throw Error("tune: give at least one median filter length (frames)");
  for (int m : median_frames)
    if (m < 1 || m % 2 == 0 || m > 999)
      throw Error(fmt::format("tune: median filter length {} must be an odd number of frames from 1 to 999", m));
  if (min_events < 1) throw Error(fmt::format("tune: the minimum number of reference events {} must be at least 1", min_events));
  event_config.validate();
}

Split split_files(size_t n, double holdout, uint64_t seed) {
  if (!(holdout >= 0.0 && holdout < 1.0))
    throw Error(fmt::format("tune: held-out share {} must be at least 0 and below 1", holdout));
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[draw_below(rng, i)]);
  size_t k = size_t(std::lround(holdout * double(n)));
  if (holdout > 0 && n >= 2) k = std::max<size_t>(k, 1);
  if (n >= 1) k = std::min(k, n - 1);  // something must be left to tune on
  Split s;
  s.holdout.assign(order.begin(), order.begin() + long(k));
  s.tune.assign(order.begin() + long(k), order.end());
  std::sort(s.holdout.begin(), s.holdout.end());
  std::sort(s.tune.begin(), s.tune.end());
  return s;
}

EventTable restrict_files(const EventTable& ref, const std::vector<TuneFile>& files) {
  EventTable out;
  for (const auto& f : files) {
    out.add_file(f.name);
    for (const auto& e : ref.events(f.name)) out.add(f.name, e);
  }
  return out;
}

namespace {
FindEvents grid_events(const std::vector<TuneFile>& files) {
  return [&files](size_t i, const EventsConfig& events) {
    return detect::find_events(files[i].scores, events, files[i].duration_s);
  };
}
}  // namespace

EventTable detect_all(const std::vector<TuneFile>& files, const EventsConfig& events, const FindEvents& find,
                      int threads) {
  const FindEvents f = find ? find : grid_events(files);
  std::vector<std::vector<Event>> found(files.size());
  // Files on `threads` threads (each file is one task; the events stage is const and shares
  // nothing between files); the first error is rethrown here.
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (size_t i; (i = next++) < files.size();) {
      try {
        found[i] = f(i, events);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        next = files.size();
      }
    }
  };
  const size_t n = std::clamp<size_t>(size_t(std::max(threads, 1)), 1, std::max<size_t>(files.size(), 1));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  EventTable out;
  for (size_t i = 0; i < files.size(); ++i) {
    out.add_file(files[i].name);
    for (auto& e : found[i]) out.add(files[i].name, std::move(e));
  }
  return out;
}

TuneResult tune_events(const std::vector<TuneFile>& files, const EventTable& ref, const EventsConfig& base,
                       const TuneConfig& config, const FindEvents& find) {
  config.validate();
  TuneResult result;
  result.events = base;
  if (files.empty()) return result;
  const auto& labels = files[0].scores.labels;
  const double hop = files[0].scores.hop_s;
  for (const auto& f : files) {
    if (f.scores.labels != labels)
      throw Error(f.name + ": its score grid has other classes than " + files[0].name +
                  "'s; tune files scored with one configuration");
    if (std::abs(f.scores.hop_s - hop) > 1e-9)
      throw Error(f.name + ": its score grid has another frame hop than " + files[0].name +
                  "'s; tune files scored with one configuration");
    if (!(std::isfinite(f.duration_s) && f.duration_s >= 0))
      throw Error(f.name + ": the audio length must be a non-negative number of seconds");
  }

  // Reference events per class, and which classes have enough of them to be tuned.
  std::vector<ClassTuning> classes(labels.size());
  std::vector<size_t> tunable;
  for (size_t c = 0; c < labels.size(); ++c) {
    ClassTuning& ct = classes[c];
    ct.label = labels[c];
    for (const auto& f : files)
      for (const auto& e : ref.events(f.name))
        if (e.label == ct.label) ++ct.n_ref;
    if (ct.n_ref >= config.min_events) tunable.push_back(c);
    else
      ct.note = ct.n_ref == 0 ? "no reference events in the tune split"
                              : fmt::format("only {} reference event(s) in the tune split (minimum {})", ct.n_ref,
                                            config.min_events);
  }

  // The base, and each candidate setting given to every tunable class at once: one pass of the
  // whole events stage per candidate, each class judged on its own events.
  const auto base_f1 = class_f1s(files, ref, base, config, labels, find);
  for (size_t c = 0; c < labels.size(); ++c)
    classes[c].f1_base = classes[c].f1_tuned = classes[c].n_ref > 0 ? base_f1.per_class[c] : 0.0;

  std::vector<double> thr = config.thresholds;
  std::sort(thr.begin(), thr.end());
  thr.erase(std::unique(thr.begin(), thr.end()), thr.end());
  std::vector<int> med = config.median_frames;
  std::sort(med.begin(), med.end());
  med.erase(std::unique(med.begin(), med.end()), med.end());
  auto setting = [&](size_t c, size_t m, size_t t) {
    ClassThreshold s;
    s.on = thr[t];
    s.off = thr[t] * config.off_ratio;
    s.median_s = med[m] * hop;
    // Keep a base min_duration_s override of this class.
    if (auto it = find_class(base.per_class, labels[c]); it != base.per_class.end())
      s.min_duration_s = it->second.min_duration_s;
    return s;
  };
  // Passes over the files: the base, pass 1, the start of pass 2 and pass 2 itself.
  const size_t grid = med.size() * thr.size();
  const size_t passes = tunable.empty() ? 2 : 2 + grid + (config.refine ? tunable.size() * (grid + 1) : 0);
  size_t done_passes = 1;  // the base
  auto step = [&] {
    if (config.progress) config.progress(done_passes, passes);
    ++done_passes;
  };
  // f1[m][t][k]: F1 of tunable class k with median_frames[m] and thresholds[t].
  std::vector<std::vector<std::vector<double>>> f1(med.size(), std::vector<std::vector<double>>(thr.size()));
  if (!tunable.empty())
    for (size_t m = 0; m < med.size(); ++m)
      for (size_t t = 0; t < thr.size(); ++t) {
        step();
        EventsConfig cfg = base;
        for (size_t c : tunable) {
          const ClassThreshold s = setting(c, m, t);
          set_class(cfg, labels[c], &s);
        }
        const auto all = class_f1s(files, ref, cfg, config, labels, find);
        for (size_t c : tunable) f1[m][t].push_back(all.per_class[c]);
      }

  // Pass 1: each class's best setting by its own F1 (every tunable class on the same setting).
  std::vector<std::optional<ClassThreshold>> chosen(labels.size());
  std::vector<bool> found_none(labels.size(), false);
  for (size_t k = 0; k < tunable.size(); ++k) {
    const size_t c = tunable[k];
    double best = -1;
    size_t best_m = 0, best_t = 0;
    for (size_t m = 0; m < med.size(); ++m) {
      std::vector<size_t> tied;
      double row_best = -1;
      for (size_t t = 0; t < thr.size(); ++t) {
        const double v = f1[m][t][k];
        // Ties within rounding noise of the F1 arithmetic count as ties.
        if (v > row_best + 1e-12) row_best = v, tied = {t};
        else if (v > row_best - 1e-12) tied.push_back(t);
      }
      // A longer filter must be strictly better to win over a shorter one.
      if (row_best > best + 1e-12) best = row_best, best_m = m, best_t = tied[(tied.size() - 1) / 2];
    }
    if (!(best > 0)) classes[c].note = "no setting found any of its reference events", found_none[c] = true;
    else if (!(best > classes[c].f1_base + 1e-12)) classes[c].note = "no setting beats the base setting";
    else chosen[c] = setting(c, best_m, best_t);
  }
  for (size_t c : tunable)
    if (chosen[c]) set_class(result.events, labels[c], &*chosen[c]);

  // Pass 2 (config.refine): the classes interact in the whole events stage (one name per sound,
  // bursts), so each class in turn tries every setting, and its base one, with the others at
  // theirs; a change is kept only if the event-based F1 over all classes (micro) rises.
  step();
  auto current = class_f1s(files, ref, result.events, config, labels, find);
  if (config.refine)
    for (size_t c : tunable) {
      if (found_none[c]) {
        done_passes += grid + 1;
        continue;
      }
      std::optional<ClassThreshold> best_setting = chosen[c];
      for (size_t m = 0; m < med.size(); ++m)
        for (size_t t = 0; t <= thr.size(); ++t) {  // t == thr.size(): the base setting
          std::optional<ClassThreshold> s;
          if (t < thr.size()) s = setting(c, m, t);
          else if (m > 0) continue;
          else if (auto it = find_class(base.per_class, labels[c]); it != base.per_class.end()) s = it->second;
          step();
          EventsConfig cfg = result.events;
          set_class(cfg, labels[c], s ? &*s : nullptr);
          auto f = class_f1s(files, ref, cfg, config, labels, find);
          // ... and the class itself must not end below its base F1.
          if (f.micro > current.micro + 1e-12 && f.per_class[c] + 1e-12 >= classes[c].f1_base)
            current = std::move(f), best_setting = s, result.events = std::move(cfg);
        }
      chosen[c] = best_setting;
    }
  for (size_t c : tunable) {
    ClassTuning& ct = classes[c];
    const auto b = find_class(base.per_class, labels[c]);
    const bool is_base = !chosen[c] || (b != base.per_class.end() && b->second.on == chosen[c]->on &&
                                        b->second.off == chosen[c]->off && b->second.median_s == chosen[c]->median_s);
    ct.f1_tuned = current.per_class[c];
    if (is_base) {
      if (ct.note.empty()) ct.note = "no setting beats the base setting";
      ct.f1_tuned = ct.f1_base;
      continue;
    }
    ct.note.clear();
    ct.tuned = true;
    ct.setting = *chosen[c];
  }
  result.classes = std::move(classes);
  return result;
}

}  // namespace earmark::eval
