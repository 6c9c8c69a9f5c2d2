// detect: the AudioSet ontology (github.com/audioset/ontology, CC BY-SA 4.0, (c) Google), the
// label hierarchy that the roll-up (detect/rollup.hpp) names events by. It is data, found like
// the models (model::find_ontology) and never part of the repository.
//
// The ontology is a directed acyclic graph, not a tree: 38 classes have two or more parents
// (Bleat under Goat and Sheep, Knock under Door and Generic impact sounds), so "ancestors" here
// means every class reachable upwards through any parent.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace earmark::detect {

class Ontology {
 public:
  struct Node {
    std::string id;    // the AudioSet mid, e.g. "/m/0bt9lr" (class_labels_indices.csv's mid column)
    std::string name;  // display name, e.g. "Dog"
    std::vector<int> children, parents;  // node indices
    bool abstract = false;     // restrictions: "abstract" (a grouping, never a label of a clip)
    bool blacklisted = false;  // restrictions: "blacklist"
    int depth = 0;  // longest path from a root (a class with no parent has depth 0), so that in a
                    // DAG every descendant is deeper than each of its ancestors
  };

  // Reads ontology.json (a JSON array of {id, name, child_ids, restrictions, ...}). Throws
  // earmark::Error naming the file and the problem: unreadable, not JSON, a class without id or
  // name, a repeated id, a child id that is not a class, a cycle.
  static Ontology load(const std::string& path);
  static Ontology parse(const std::string& text, const std::string& source);

  const std::string& source() const { return source_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  size_t size() const { return nodes_.size(); }
  const Node& node(int i) const { return nodes_[size_t(i)]; }
  // Node index of a mid, or -1.
  int find_id(const std::string& id) const;
  // Node index of a display name (exact match), or -1.
  int find_name(const std::string& name) const;
  // Every ancestor of node i (through all parents), sorted by index; not i itself.
  const std::vector<int>& ancestors(int i) const { return ancestors_[size_t(i)]; }
  bool is_ancestor(int ancestor, int of) const;

 private:
  std::string source_;
  std::vector<Node> nodes_;
  std::vector<std::vector<int>> ancestors_;
  std::unordered_map<std::string, int> by_id_, by_name_;
};

}  // namespace earmark::detect
