// detect: one name per sound. The network scores a dog as Dog, Animal, Domestic animals, pets,
// "Canidae, dogs, wolves" and Whimper (dog) at once, and each becomes an event; the roll-up
// reports such a sound once, under its most specific confident label, and keeps the labels it
// absorbed in Event::also (with their confidences). docs/labels.md has the rule and its
// measurements.
//
// The rule, on the events of one file (find_events' output):
//  - Two events are the same sound when their labels are related in the AudioSet ontology and
//    they overlap in time:
//      ancestor/descendant (Dog and Bark, Dog and Animal; through any parent of the DAG): any
//      overlap;
//      co-parents of one class (Dog and "Canidae, dogs, wolves" both have Howl and Growling as
//      children; Goat and Sheep both have Bleat) and, with `siblings`, children of one
//      non-abstract parent below the roots whose own event overlaps both (Raindrop and "Rain on
//      surface" while Rain fires; Dog and Cat only while "Domestic animals, pets" fires too):
//      at least `min_overlap` of the shorter event.
//    Unrelated labels never merge, however much they overlap (Speech over a dog stays two).
//  - A label may name the sound when its confidence is at least `child_ratio` times that of
//    every related overlapping label it would replace (its ancestors and cousins): Whimper (dog)
//    at 0.31 does not replace Dog at 0.8.
//  - Greedily, the deepest such label (longest path from an ontology root; then the most
//    confident) is reported and absorbs every free event related to it and overlapping it; then
//    the next free event, until none is left.
//  - The reported span is the chosen event's own, extended by each absorbed event that
//    overlaps no other reported event (a generic label that spans two different sounds, Animal
//    over a bark and a moo, extends neither).
//  - Labels with no ontology class (custom-head classes, labels of a mismatched label list) are
//    passed through unchanged. A label group (events.groups) is a name the user chose: it is
//    always reported, never absorbed, and absorbs the related events of its members (its
//    ancestors are the classes above every member).
#pragma once

#include <string>
#include <vector>

#include "detect/ontology.hpp"
#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

namespace earmark::detect {

struct RollupOptions {
  double child_ratio = 0.5;
  double min_overlap = 0.5;
  bool siblings = true;
  bool extend_span = true;
};

class Rollup {
 public:
  // `grid_labels`: the columns of the score grid the events come from (apply_label_config's
  // output); `model_labels`: the model's labels with their mids (Detector::labels()), by which
  // grid labels are found in the ontology; `events` for the label groups.
  Rollup(const Ontology& ontology, const std::vector<std::string>& grid_labels,
         const std::vector<LabelInfo>& model_labels, const EventsConfig& events, RollupOptions options = {});

  // The events rolled up (sorted by onset, then label, then offset). Throws nothing for any
  // event list: events whose label is not a grid column are passed through.
  std::vector<Event> apply(const std::vector<Event>& events) const;

  enum class Relation { none, ancestor, descendant, cousin };
  // How grid column b relates to column a: b is an ancestor of a (more generic), a descendant
  // (more specific), a cousin (a co-parent of one class), or none. Siblings are decided per
  // file (their parent must fire too), in apply().
  Relation relation(int a, int b) const;
  // Non-abstract ontology classes below the roots that are a parent of both columns (siblings).
  std::vector<int> shared_parents(int a, int b) const;
  // Grid column of a label name (exact), or -1.
  int column(const std::string& label) const;
  // Whether two labels name the same kind of sound: equal, ancestor/descendant, co-parents, or
  // children of one non-abstract parent below the roots (Raindrop and "Rain on surface").
  bool related(const std::string& a, const std::string& b) const;
  // Depth of a label in the ontology (longest path from a root; 0 for unknown labels).
  int depth(const std::string& label) const;

 private:
  struct Concept {
    bool known = false;   // has at least one ontology class
    bool pinned = false;  // a user's label group
    std::vector<int> self;       // its ontology classes (a group: its members'), sorted
    std::vector<int> ancestors;  // classes above it (a group: above every member), sorted
    int depth = 0;
  };
  const Ontology* ontology_;
  RollupOptions options_;
  std::vector<std::string> labels_;
  std::vector<Concept> concepts_;
};

}  // namespace earmark::detect
