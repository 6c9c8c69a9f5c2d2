// detect: frame scores -> events (label config, median filter, hysteresis, merging).
#include "detect/events.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

namespace earmark::detect {

namespace {

// Frame times are frame * hop in double, so 2 * 0.32 may differ from a configured 0.64 in the
// last bit. A microsecond is far below the millisecond precision of every output and far above
// that rounding error.
constexpr double kTimeEps = 1e-6;

// Above this the O(n log w) filter still works, but such a width only comes from a unit mistake
// (e.g. median_s in milliseconds), which deserves an error rather than minutes of work.
constexpr double kMaxMedianFrames = 100000;

// nth_element on a copied window beats the two-set filter for the usual 1-31 frame widths.
constexpr int kSmallWidth = 64;

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

float finite_or_zero(float v) { return std::isfinite(v) ? v : 0.0f; }

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), size_t{0});
  for (size_t i = 0; i < a.size(); ++i) {
    cur[0] = i + 1;
    for (size_t j = 0; j < b.size(); ++j)
      cur[j + 1] = std::min({prev[j + 1] + 1, cur[j] + 1, prev[j] + (a[i] == b[j] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// "did you mean 'A', 'B' or 'C'?" with the (up to) three candidates closest to `name`.
std::string suggestions(const std::string& name, const std::vector<std::string>& candidates) {
  if (candidates.empty()) return "there are no labels to choose from";
  const std::string key = lower(name);
  std::vector<std::pair<size_t, size_t>> by_distance;  // (distance, candidate index)
  for (size_t i = 0; i < candidates.size(); ++i) by_distance.emplace_back(edit_distance(key, lower(candidates[i])), i);
  std::stable_sort(by_distance.begin(), by_distance.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> picked;
  std::set<std::string> seen;
  for (const auto& [d, i] : by_distance) {
    if (picked.size() == 3) break;
    if (seen.insert(lower(candidates[i])).second) picked.push_back(candidates[i]);
  }
  std::string s = "did you mean ";
  for (size_t i = 0; i < picked.size(); ++i) {
    if (i > 0) s += i + 1 == picked.size() ? " or " : ", ";
    s += "'" + picked[i] + "'";
  }
  return s + "?";
}

// Case-insensitive name tables of a label list and the configured groups.
struct NameIndex {
  std::vector<std::string> labels;
  std::unordered_map<std::string, int> label;          // lower(label) -> index (first wins)
  std::vector<std::string> group_names;                // as configured, in map order
  std::unordered_map<std::string, int> group;          // lower(group name) -> index in group_names
  std::vector<std::string> all_names;                  // labels then groups, for suggestions

  NameIndex(const std::vector<std::string>& model_labels, const EventsConfig& cfg) : labels(model_labels) {
    for (size_t i = 0; i < labels.size(); ++i) label.emplace(lower(labels[i]), static_cast<int>(i));
    for (const auto& [g, members] : cfg.groups) {
      if (g.empty()) throw Error("events.groups: a group has an empty name; give each group a name");
      const auto [it, fresh] = group.emplace(lower(g), static_cast<int>(group_names.size()));
      if (!fresh)
        throw Error("events.groups: '" + group_names[size_t(it->second)] + "' and '" + g +
                    "' name the same group (names are case-insensitive); merge them into one");
      group_names.push_back(g);
    }
    all_names = labels;
    all_names.insert(all_names.end(), group_names.begin(), group_names.end());
  }

  int find_label(const std::string& key, const std::string& name) const {
    if (auto it = label.find(lower(name)); it != label.end()) return it->second;
    throw Error(key + ": unknown label '" + name + "'; " + suggestions(name, labels) +
                " (labels are AudioSet display names, matched case-insensitively)");
  }
  // A group if one has this name, else a label; returns {is_group, index}.
  std::pair<bool, int> find_name(const std::string& key, const std::string& name) const {
    if (auto it = group.find(lower(name)); it != group.end()) return {true, it->second};
    if (auto it = label.find(lower(name)); it != label.end()) return {false, it->second};
    throw Error(key + ": unknown label or group '" + name + "'; " + suggestions(name, all_names) +
                " (labels are AudioSet display names, matched case-insensitively, or names from events.groups)");
  }
};

void check_grid(const FrameScores& s) {
  if (s.frames < 0) throw Error("score grid: negative frame count " + std::to_string(s.frames));
  if (s.values.size() != size_t(s.frames) * s.labels.size())
    throw Error("score grid: " + std::to_string(s.values.size()) + " values for " + std::to_string(s.frames) +
                " frames x " + std::to_string(s.labels.size()) + " labels; the grid must be frames x labels");
  if (s.frames > 0 && !(std::isfinite(s.hop_s) && s.hop_s > 0))
    throw Error("score grid: frame hop " + std::to_string(s.hop_s) + " s must be a positive number of seconds");
}

int median_width(double median_s, double hop_s, const std::string& key) {
  if (!(median_s > 0)) return 1;
  const double frames = median_s / hop_s;
  if (!(frames <= kMaxMedianFrames))
    throw Error(key + ": " + std::to_string(median_s) + " s is more than " + std::to_string(int(kMaxMedianFrames)) +
                " frames of " + std::to_string(hop_s) + " s; give the median filter length in seconds");
  int w = static_cast<int>(std::lround(frames));
  if (w < 1) w = 1;
  // An even window has no middle element; growing it keeps at least the requested smoothing.
  if (w % 2 == 0) ++w;
  return w;
}

// Per-class detection parameters after per_class overrides.
struct Track {
  double on, off, min_duration_s;
  int width;
};

}  // namespace

void validate_label_names(const std::vector<std::string>& labels, const EventsConfig& cfg) {
  const NameIndex names(labels, cfg);
  for (const auto& [g, members] : cfg.groups)
    for (const auto& m : members) names.find_label("events.groups." + g, m);
  for (const auto& a : cfg.allow) names.find_name("events.allow", a);
  for (const auto& d : cfg.deny) names.find_name("events.deny", d);
  std::unordered_map<std::string, std::string> per_class_seen;
  for (const auto& [name, t] : cfg.per_class) {
    names.find_name("events.per_class", name);
    const auto [it, fresh] = per_class_seen.emplace(lower(name), name);
    if (!fresh)
      throw Error("events.per_class: '" + it->second + "' and '" + name +
                  "' name the same label (names are case-insensitive); keep one of them");
  }
}

FrameScores apply_label_config(const FrameScores& scores, const EventsConfig& cfg) {
  check_grid(scores);
  validate_label_names(scores.labels, cfg);
  const NameIndex names(scores.labels, cfg);
  const size_t L = scores.labels.size();
  const size_t G = names.group_names.size();

  std::vector<std::vector<int>> group_members(G);
  std::vector<bool> is_member(L, false);
  for (const auto& [g, members] : cfg.groups) {
    const auto gi = size_t(names.group.at(lower(g)));
    auto& ms = group_members[gi];
    if (auto it = names.label.find(lower(g)); it != names.label.end()) ms.push_back(it->second);
    for (const auto& m : members) ms.push_back(names.find_label("events.groups." + g, m));
    std::sort(ms.begin(), ms.end());
    ms.erase(std::unique(ms.begin(), ms.end()), ms.end());
    for (int m : ms) is_member[size_t(m)] = true;
  }
  std::vector<bool> allow_label(L, false), deny_label(L, false), allow_group(G, false), deny_group(G, false);
  for (const auto& a : cfg.allow) {
    const auto [is_group, i] = names.find_name("events.allow", a);
    (is_group ? allow_group : allow_label)[size_t(i)] = true;
  }
  for (const auto& d : cfg.deny) {
    const auto [is_group, i] = names.find_name("events.deny", d);
    (is_group ? deny_group : deny_label)[size_t(i)] = true;
  }
  const bool allow_all = cfg.allow.empty();

  FrameScores out;
  out.hop_s = scores.hop_s;
  out.frames = scores.frames;
  std::vector<std::vector<int>> sources;  // model label indices whose max is each output column
  for (size_t i = 0; i < L; ++i) {
    if (is_member[i] && !allow_label[i]) continue;
    if (!allow_all && !allow_label[i]) continue;
    if (deny_label[i]) continue;
    out.labels.push_back(scores.labels[i]);
    sources.push_back({static_cast<int>(i)});
  }
  for (size_t g = 0; g < G; ++g) {
    if ((!allow_all && !allow_group[g]) || deny_group[g]) continue;
    out.labels.push_back(names.group_names[g]);
    sources.push_back(group_members[g]);
  }

  const size_t C = out.labels.size();
  if (scores.values.compact()) out.values = ScoreValues::make_compact();
  if (scores.values.spilled()) out.values.spill_beyond(C, 0);  // a long file's grid stays on disk
  out.values.resize(size_t(out.frames) * C);
  for (size_t f = 0; f < size_t(out.frames); ++f) {
    const size_t row = f * L;
    for (size_t c = 0; c < C; ++c) {
      float v = -INFINITY;
      for (int m : sources[c]) v = std::max(v, finite_or_zero(scores.values[row + size_t(m)]));
      out.values.set(f * C + c, v);
    }
  }
  return out;
}

FrameScores apply_label_config(FrameScores&& scores, const EventsConfig& cfg) {
  if (!cfg.groups.empty() || !cfg.allow.empty() || !cfg.deny.empty())
    return apply_label_config(static_cast<const FrameScores&>(scores), cfg);
  check_grid(scores);
  validate_label_names(scores.labels, cfg);
  for (size_t i = 0; i < scores.values.size(); ++i)
    if (const float v = scores.values[i]; !std::isfinite(v)) scores.values.set(i, 0.0f);
  return std::move(scores);
}

std::vector<float> median_filter(const std::vector<float>& x, int width) {
  if (width < 1 || width % 2 == 0)
    throw Error("median filter: the width must be an odd number of frames >= 1, not " + std::to_string(width));
  const auto n = static_cast<long>(x.size());
  std::vector<float> out(x.size());
  if (width == 1 || n == 0) {
    std::transform(x.begin(), x.end(), out.begin(), finite_or_zero);
    return out;
  }
  const long half = width / 2;
  auto at = [&](long i) { return finite_or_zero(x[size_t(std::clamp(i, 0L, n - 1))]); };

  if (width <= kSmallWidth) {
    std::vector<float> win(static_cast<size_t>(width));
    for (long i = 0; i < n; ++i) {
      for (long j = 0; j < width; ++j) win[size_t(j)] = at(i - half + j);
      std::nth_element(win.begin(), win.begin() + half, win.end());
      out[size_t(i)] = win[size_t(half)];
    }
    return out;
  }

  // Long windows: `lo` holds the half+1 smallest values of the window, `hi` the rest, so the
  // median is lo's largest; each step moves one value in and one out in O(log width).
  std::multiset<float> lo, hi;
  const auto lo_size = size_t(half) + 1;
  auto insert = [&](float v) {
    if (lo.empty() || v <= *lo.rbegin()) lo.insert(v);
    else hi.insert(v);
  };
  auto erase = [&](float v) {
    // Every value of lo is <= every value of hi, so a value <= max(lo) has an equal copy in lo.
    if (!lo.empty() && v <= *lo.rbegin()) lo.erase(lo.find(v));
    else hi.erase(hi.find(v));
  };
  auto rebalance = [&] {
    while (lo.size() > lo_size) {
      auto it = std::prev(lo.end());
      hi.insert(*it);
      lo.erase(it);
    }
    while (lo.size() < lo_size && !hi.empty()) {
      lo.insert(*hi.begin());
      hi.erase(hi.begin());
    }
  };
  for (long j = -half; j <= half; ++j) insert(at(j));
  rebalance();
  out[0] = *lo.rbegin();
  for (long i = 1; i < n; ++i) {
    erase(at(i - 1 - half));
    insert(at(i + half));
    rebalance();
    out[size_t(i)] = *lo.rbegin();
  }
  return out;
}

std::vector<Event> find_events(const FrameScores& scores, const EventsConfig& cfg, double duration_s) {
  check_grid(scores);
  if (!(std::isfinite(duration_s) && duration_s >= 0))
    throw Error("events: the file duration " + std::to_string(duration_s) + " s must be a non-negative number");
  const int n = scores.frames;
  const size_t C = scores.labels.size();
  if (n == 0 || C == 0) return {};
  const double hop = scores.hop_s;

  const Track base{cfg.threshold_on, cfg.threshold_off, cfg.min_duration_s,
                   median_width(cfg.median_s, hop, "events.median_s")};
  std::vector<Track> tracks(C, base);
  std::unordered_map<std::string, size_t> index;
  for (size_t c = 0; c < C; ++c) index.emplace(lower(scores.labels[c]), c);
  for (const auto& [name, t] : cfg.per_class) {
    const auto it = index.find(lower(name));
    if (it == index.end()) continue;
    Track& k = tracks[it->second];
    if (t.on >= 0) k.on = t.on;
    k.off = t.off >= 0 ? t.off : std::min(cfg.threshold_off, k.on);
    if (t.median_s >= 0) k.width = median_width(t.median_s, hop, "events.per_class." + name + ".median_s");
    if (t.min_duration_s >= 0) k.min_duration_s = t.min_duration_s;
  }

  const size_t k_limit = cfg.max_classes_per_frame > 0 ? size_t(cfg.max_classes_per_frame) : C;
  const bool limited = k_limit < C;

  // The class's scores, smoothed; false (and x left alone) for a class that cannot reach its
  // on-threshold (a median never exceeds the window's maximum), which is most of AudioSet's 527
  // in any one file. With a per-frame class limit every class takes part in the ranking.
  std::vector<float> column(static_cast<size_t>(n));
  auto smoothed = [&](size_t c, std::vector<float>& x) {
    float peak = -INFINITY;
    for (int f = 0; f < n; ++f) {
      column[size_t(f)] = finite_or_zero(scores.at(f, int(c)));
      peak = std::max(peak, column[size_t(f)]);
    }
    if (!limited && !(double(peak) >= tracks[c].on)) return false;
    x = median_filter(column, tracks[c].width);
    return true;
  };

  // With a class limit all smoothed tracks are ranked per frame, so all are kept; without one
  // each class is smoothed and turned into events in turn (a long file's tracks of every
  // class that fires at all would otherwise be held at once: 31 MB for 3 hours).
  std::vector<std::vector<float>> smooth;
  // allowed[f * C + c]: class c is among the top k of frame f (ties go to the lower index).
  std::vector<uint8_t> allowed;
  if (limited) {
    smooth.resize(C);
    for (size_t c = 0; c < C; ++c) smoothed(c, smooth[c]);
    allowed.assign(size_t(n) * C, 0);
    std::vector<size_t> order(C);
    for (int f = 0; f < n; ++f) {
      std::iota(order.begin(), order.end(), size_t{0});
      std::partial_sort(order.begin(), order.begin() + long(k_limit), order.end(), [&](size_t a, size_t b) {
        const float sa = smooth[a][size_t(f)], sb = smooth[b][size_t(f)];
        return sa != sb ? sa > sb : a < b;
      });
      for (size_t r = 0; r < k_limit; ++r) allowed[size_t(f) * C + order[r]] = 1;
    }
  }

  std::vector<Event> events;
  std::vector<float> own;  // the class's smoothed track when tracks are not kept
  for (size_t c = 0; c < C; ++c) {
    if (limited ? smooth[c].empty() : !smoothed(c, own)) continue;
    const auto& x = limited ? smooth[c] : own;
    const Track& t = tracks[c];
    auto eligible = [&](int f) {
      return (!limited || allowed[size_t(f) * C + c]) && double(x[size_t(f)]) >= t.off;
    };

    // Hysteresis: maximal runs of frames >= off that contain at least one frame >= on.
    std::vector<std::pair<int, int>> runs;  // first and last frame, inclusive
    for (int f = 0; f < n;) {
      if (!eligible(f)) {
        ++f;
        continue;
      }
      const int first = f;
      bool fired = false;
      for (; f < n && eligible(f); ++f) fired = fired || double(x[size_t(f)]) >= t.on;
      if (fired) runs.emplace_back(first, f - 1);
    }

    std::vector<std::pair<int, int>> merged;
    for (const auto& r : runs) {
      if (!merged.empty() && double(r.first - merged.back().second - 1) * hop < cfg.merge_gap_s - kTimeEps)
        merged.back().second = r.second;
      else
        merged.push_back(r);
    }

    for (const auto& [first, last] : merged) {
      const double onset = double(first) * hop;
      if (onset > duration_s - kTimeEps) continue;  // grid padding past the end of the audio
      const double offset = std::min(double(last + 1) * hop, duration_s);
      if (offset - onset < t.min_duration_s - kTimeEps) continue;
      Event e;
      e.onset = onset;
      e.offset = offset;
      e.label = scores.labels[c];
      e.class_index = static_cast<int>(c);
      e.confidence = *std::max_element(x.begin() + first, x.begin() + last + 1);
      e.score = e.confidence;
      events.push_back(std::move(e));
    }
  }
  std::sort(events.begin(), events.end(), reported_order);
  return events;
}

bool reported_order(const Event& a, const Event& b) {
  if (a.onset != b.onset) return a.onset < b.onset;
  if (a.label != b.label) return a.label < b.label;
  return a.offset < b.offset;
}

}  // namespace earmark::detect
