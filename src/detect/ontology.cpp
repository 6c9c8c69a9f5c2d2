// detect: the AudioSet ontology (see ontology.hpp).
#include "detect/ontology.hpp"

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "earmark/earmark.hpp"

namespace earmark::detect {

Ontology Ontology::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    throw Error(path + ": cannot read the AudioSet ontology; run 'scripts/fetch-models' (it fetches ontology.json) "
                       "or set events.ontology to the file's path");
  std::ostringstream text;
  text << f.rdbuf();
  return parse(text.str(), path);
}

Ontology Ontology::parse(const std::string& text, const std::string& source) {
  const std::string hint = " (expected the AudioSet ontology.json: a list of {id, name, child_ids, restrictions}; "
                           "run 'scripts/fetch-models' for a verified copy)";
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what() + hint);
  }
  if (!doc.is_array()) throw Error(source + ": the top level is not a list" + hint);

  Ontology o;
  o.source_ = source;
  std::vector<std::vector<std::string>> child_ids(doc.size());
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& c = doc[i];
    const std::string where = source + ": class " + std::to_string(i + 1);
    if (!c.is_object()) throw Error(where + " is not an object" + hint);
    auto text_field = [&](const char* key) {
      const auto it = c.find(key);
      if (it == c.end() || !it->is_string() || it->get<std::string>().empty())
        throw Error(where + " has no '" + key + "' string" + hint);
      return it->get<std::string>();
    };
    Node n;
    n.id = text_field("id");
    n.name = text_field("name");
    if (const auto it = c.find("child_ids"); it != c.end()) {
      if (!it->is_array()) throw Error(where + " ('" + n.name + "'): child_ids is not a list" + hint);
      for (const auto& k : *it) {
        if (!k.is_string()) throw Error(where + " ('" + n.name + "'): child_ids holds a non-string" + hint);
        child_ids[i].push_back(k.get<std::string>());
      }
    }
    if (const auto it = c.find("restrictions"); it != c.end() && it->is_array())
      for (const auto& r : *it) {
        if (!r.is_string()) continue;
        if (r == "abstract") n.abstract = true;
        if (r == "blacklist") n.blacklisted = true;
      }
    if (!o.by_id_.emplace(n.id, int(i)).second)
      throw Error(where + ": id " + n.id + " ('" + n.name + "') appears twice" + hint);
    o.by_name_.emplace(n.name, int(i));  // the first class of a name wins (AudioSet's names are unique)
    o.nodes_.push_back(std::move(n));
  }
  for (size_t i = 0; i < o.nodes_.size(); ++i)
    for (const auto& k : child_ids[i]) {
      const int c = o.find_id(k);
      if (c < 0)
        throw Error(source + ": '" + o.nodes_[i].name + "' lists child " + k + ", which is not a class of the file" + hint);
      auto& ch = o.nodes_[i].children;
      if (std::find(ch.begin(), ch.end(), c) != ch.end()) continue;
      ch.push_back(c);
      o.nodes_[size_t(c)].parents.push_back(int(i));
    }

  // Depth (longest path from a root) by a depth-first walk that also finds cycles.
  const size_t N = o.nodes_.size();
  std::vector<int> state(N, 0);  // 0 unvisited, 1 on the stack, 2 done
  std::function<void(int)> visit = [&](int i) {
    state[size_t(i)] = 1;
    int d = 0;
    for (int p : o.nodes_[size_t(i)].parents) {
      if (state[size_t(p)] == 1)
        throw Error(source + ": the classes form a cycle through '" + o.nodes_[size_t(p)].name + "' and '" +
                    o.nodes_[size_t(i)].name + "'; the ontology must be a hierarchy" + hint);
      if (state[size_t(p)] == 0) visit(p);
      d = std::max(d, o.nodes_[size_t(p)].depth + 1);
    }
    o.nodes_[size_t(i)].depth = d;
    state[size_t(i)] = 2;
  };
  for (size_t i = 0; i < N; ++i)
    if (state[i] == 0) visit(int(i));

  o.ancestors_.resize(N);
  for (size_t i = 0; i < N; ++i) {
    std::vector<int> stack = o.nodes_[i].parents;
    std::vector<bool> seen(N, false);
    while (!stack.empty()) {
      const int p = stack.back();
      stack.pop_back();
      if (seen[size_t(p)]) continue;
      seen[size_t(p)] = true;
      o.ancestors_[i].push_back(p);
      for (int q : o.nodes_[size_t(p)].parents) stack.push_back(q);
    }
    std::sort(o.ancestors_[i].begin(), o.ancestors_[i].end());
  }
  return o;
}

int Ontology::find_id(const std::string& id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? -1 : it->second;
}

int Ontology::find_name(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

bool Ontology::is_ancestor(int ancestor, int of) const {
  const auto& a = ancestors_[size_t(of)];
  return std::binary_search(a.begin(), a.end(), ancestor);
}

}  // namespace earmark::detect
