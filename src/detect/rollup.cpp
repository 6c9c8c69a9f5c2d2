// detect: one name per sound (see rollup.hpp).
#include "detect/rollup.hpp"

#include "detect/events.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>
#include <map>
#include <tuple>
#include <unordered_map>

namespace earmark::detect {

namespace {

constexpr double kTimeEps = 1e-6;

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool intersects(const std::vector<int>& a, const std::vector<int>& b) {  // both sorted
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    if (a[i] == b[j]) return true;
    if (a[i] < b[j]) ++i;
    else ++j;
  }
  return false;
}

std::vector<int> sorted_unique(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

Rollup::Rollup(const Ontology& ontology, const std::vector<std::string>& grid_labels,
               const std::vector<LabelInfo>& model_labels, const EventsConfig& events, RollupOptions options)
    : ontology_(&ontology), options_(options), labels_(grid_labels), concepts_(grid_labels.size()) {
  // Model label name -> ontology class, through the mid (case-insensitive like the events config).
  std::unordered_map<std::string, int> node_of;
  for (const auto& l : model_labels) {
    const int n = ontology.find_id(l.mid);
    if (n >= 0) node_of.emplace(lower(l.name), n);
  }
  std::map<std::string, std::vector<std::string>> groups;  // lower(name) -> members
  for (const auto& [g, members] : events.groups) {
    auto& m = groups[lower(g)];
    m = members;
    m.push_back(g);  // a group named like a label includes it (apply_label_config)
  }
  for (size_t c = 0; c < labels_.size(); ++c) {
    Concept& k = concepts_[c];
    if (const auto g = groups.find(lower(labels_[c])); g != groups.end()) {
      k.pinned = true;
      std::vector<int> common;  // classes at or above every member
      bool first = true;
      for (const auto& m : g->second) {
        const auto it = node_of.find(lower(m));
        if (it == node_of.end()) continue;
        k.self.push_back(it->second);
        std::vector<int> up = ontology.ancestors(it->second);
        up.push_back(it->second);
        up = sorted_unique(std::move(up));
        if (first) common = std::move(up);
        else {
          std::vector<int> both;
          std::set_intersection(common.begin(), common.end(), up.begin(), up.end(), std::back_inserter(both));
          common = std::move(both);
        }
        first = false;
      }
      k.self = sorted_unique(std::move(k.self));
      for (int n : common)
        if (!std::binary_search(k.self.begin(), k.self.end(), n)) k.ancestors.push_back(n);
      for (int n : k.self) k.depth = std::max(k.depth, ontology.node(n).depth);
      k.known = !k.self.empty();
      continue;
    }
    const auto it = node_of.find(lower(labels_[c]));
    if (it == node_of.end()) continue;
    k.known = true;
    k.self = {it->second};
    k.ancestors = ontology.ancestors(it->second);
    k.depth = ontology.node(it->second).depth;
  }
}

int Rollup::column(const std::string& label) const {
  for (size_t c = 0; c < labels_.size(); ++c)
    if (labels_[c] == label) return int(c);
  return -1;
}

Rollup::Relation Rollup::relation(int a, int b) const {
  if (a == b || a < 0 || b < 0 || size_t(a) >= concepts_.size() || size_t(b) >= concepts_.size()) return Relation::none;
  const Concept& x = concepts_[size_t(a)];
  const Concept& y = concepts_[size_t(b)];
  if (!x.known || !y.known) return Relation::none;
  if (intersects(y.self, x.ancestors)) return Relation::ancestor;
  if (intersects(x.self, y.ancestors)) return Relation::descendant;
  // Co-parents: the ontology has a class that is a kind of both (Howl under Dog and Canidae).
  for (int s : x.self)
    for (int t : y.self) {
      const auto& cs = ontology_->node(s).children;
      for (int k : ontology_->node(t).children)
        if (std::find(cs.begin(), cs.end(), k) != cs.end()) return Relation::cousin;
    }
  return Relation::none;
}

int Rollup::depth(const std::string& label) const {
  const int c = column(label);
  return c >= 0 && concepts_[size_t(c)].known ? concepts_[size_t(c)].depth : 0;
}

bool Rollup::related(const std::string& a, const std::string& b) const {
  if (a == b) return true;
  const int x = column(a), y = column(b);
  return relation(x, y) != Relation::none || !shared_parents(x, y).empty();
}

std::vector<int> Rollup::shared_parents(int a, int b) const {
  std::vector<int> out;
  if (a == b || a < 0 || b < 0 || size_t(a) >= concepts_.size() || size_t(b) >= concepts_.size()) return out;
  for (int s : concepts_[size_t(a)].self)
    for (int t : concepts_[size_t(b)].self) {
      const auto& ps = ontology_->node(s).parents;
      for (int p : ontology_->node(t).parents) {
        const auto& pn = ontology_->node(p);
        // Below the roots (Animal's children are different animals) and a real class, not a grouping.
        if (pn.depth >= 1 && !pn.abstract && std::find(ps.begin(), ps.end(), p) != ps.end()) out.push_back(p);
      }
    }
  return sorted_unique(std::move(out));
}

std::vector<Event> Rollup::apply(const std::vector<Event>& events) const {
  const size_t n = events.size();
  std::vector<int> col(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const auto& e = events[i];
    const bool index_ok = e.class_index >= 0 && size_t(e.class_index) < labels_.size() &&
                          labels_[size_t(e.class_index)] == e.label;
    col[i] = index_ok ? e.class_index : column(e.label);
    if (col[i] >= 0 && !concepts_[size_t(col[i])].known) col[i] = -1;
  }
  auto overlap = [&](size_t i, size_t j) {
    return std::min(events[i].offset, events[j].offset) - std::max(events[i].onset, events[j].onset);
  };
  // Pairs of events that overlap in time, found by a sweep over onsets: an hour of audio has
  // thousands of events but only tens at a time, so this stays far from n^2.
  std::vector<size_t> by_onset(n);
  for (size_t i = 0; i < n; ++i) by_onset[i] = i;
  std::sort(by_onset.begin(), by_onset.end(), [&](size_t a, size_t b) { return events[a].onset < events[b].onset; });
  std::vector<std::vector<size_t>> overlapping(n);
  for (size_t a = 0; a < n; ++a) {
    const size_t i = by_onset[a];
    if (col[i] < 0) continue;
    for (size_t b = a + 1; b < n && events[by_onset[b]].onset < events[i].offset - kTimeEps; ++b) {
      const size_t j = by_onset[b];
      if (col[j] < 0 || !(overlap(i, j) > kTimeEps)) continue;
      overlapping[i].push_back(j);
      overlapping[j].push_back(i);
    }
  }
  // Siblings are one sound only where an event of their shared parent overlaps both.
  auto parent_cofires = [&](size_t i, size_t j) {
    const auto parents = shared_parents(col[i], col[j]);
    if (parents.empty()) return false;
    for (size_t k : overlapping[i])
      if (k != j && intersects(concepts_[size_t(col[k])].self, parents) && overlap(k, j) > kTimeEps) return true;
    return false;
  };
  // related[i]: the events that are one sound with event i, and how their labels relate to i's.
  std::vector<std::vector<std::pair<size_t, Relation>>> related(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t j : overlapping[i]) {
      if (j < i) continue;  // each pair once
      Relation r = relation(col[i], col[j]);
      if (r == Relation::none && options_.siblings && parent_cofires(i, j)) r = Relation::cousin;
      if (r == Relation::none) continue;
      if (r == Relation::cousin) {
        const double shorter = std::min(events[i].offset - events[i].onset, events[j].offset - events[j].onset);
        if (overlap(i, j) < options_.min_overlap * shorter - kTimeEps) continue;
      }
      related[i].emplace_back(j, r);
      related[j].emplace_back(i, r == Relation::ancestor     ? Relation::descendant
                                 : r == Relation::descendant ? Relation::ancestor
                                                             : r);
    }
  auto pinned = [&](size_t i) { return col[i] >= 0 && concepts_[size_t(col[i])].pinned; };
  auto depth = [&](size_t i) { return col[i] >= 0 ? concepts_[size_t(col[i])].depth : 0; };

  // A label may name its sound when it is not far below any label it would replace.
  std::vector<bool> eligible(n, true);
  for (size_t i = 0; i < n; ++i) {
    if (pinned(i)) continue;
    for (const auto& [j, r] : related[i])
      if (r != Relation::descendant && double(events[i].confidence) < options_.child_ratio * double(events[j].confidence))
        eligible[i] = false;
  }

  // Greedy: the best free event (a group, then eligible, deepest, most confident, earliest) is
  // reported and absorbs the free events of its sound. The key does not change as events are
  // taken, so one pass in key order is the same as picking the best free event again and again.
  enum State { free_, reported, absorbed };
  std::vector<State> state(n, free_);
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i) {
    if (col[i] < 0) state[i] = reported;  // passed through
    else order.push_back(i);
  }
  auto key = [&](size_t i) {
    return std::make_tuple(pinned(i), bool(eligible[i]), depth(i), events[i].confidence, -events[i].onset);
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) > key(b); });
  for (size_t i : order) {
    if (state[i] != free_) continue;
    state[i] = reported;
    for (const auto& [j, r] : related[i])
      if (state[j] == free_ && !pinned(j)) state[j] = absorbed;
  }

  // Each absorbed event: how many reported events it is one sound with.
  std::vector<int> owners(n, 0);
  for (size_t j = 0; j < n; ++j)
    if (state[j] == absorbed)
      for (const auto& [i, r] : related[j]) owners[j] += state[i] == reported ? 1 : 0;

  std::vector<Event> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (state[i] != reported) continue;
    Event e = events[i];
    e.also.clear();
    std::map<std::string, float> also;
    for (const auto& [j, r] : related[i]) {
      if (state[j] != absorbed) continue;
      auto [it, fresh] = also.emplace(events[j].label, events[j].confidence);
      if (!fresh) it->second = std::max(it->second, events[j].confidence);
      if (options_.extend_span && owners[j] == 1) {
        e.onset = std::min(e.onset, events[j].onset);
        e.offset = std::max(e.offset, events[j].offset);
      }
    }
    also.erase(e.label);
    for (const auto& [label, conf] : also) e.also.push_back(RolledLabel{label, conf});
    std::stable_sort(e.also.begin(), e.also.end(),
                     [](const RolledLabel& a, const RolledLabel& b) { return a.confidence > b.confidence; });
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), reported_order);
  return out;
}

}  // namespace earmark::detect
