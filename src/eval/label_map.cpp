#include "eval/label_map.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <istream>
#include <iterator>
#include <set>
#include <sstream>

#include "eval/text.hpp"
#include "util/file.hpp"

namespace earmark::eval {

std::vector<CsvRow> parse_csv(std::istream& in, const std::string& source) {
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<CsvRow> rows;
  CsvRow row;
  std::string field;
  bool in_quotes = false, field_started = false, row_has_content = false;
  int line = 1;
  row.line = 1;
  auto end_field = [&] {
    row.fields.push_back(field);
    field.clear();
    field_started = false;
  };
  auto end_row = [&] {
    end_field();
    if (row_has_content) rows.push_back(row);
    row = CsvRow{};
    row_has_content = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      in_quotes = true;
      field_started = true;
      row_has_content = true;
    } else if (c == ',') {
      end_field();
      row_has_content = true;
    } else if (c == '\n') {
      end_row();
      ++line;
      row.line = line;
    } else if (c == '\r') {
      // CRLF line ends
    } else {
      field += c;
      if (c != ' ' && c != '\t') field_started = row_has_content = true;
    }
  }
  if (in_quotes) throw Error(fmt::format("{}:{}: a quoted field is never closed; add the closing \"", source, line));
  if (field_started || !row.fields.empty() || row_has_content) end_row();
  for (auto& r : rows)
    for (auto& f : r.fields) f = std::string(trim(f));
  return rows;
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

// Adds each ';'-separated name of `list`; throws on an empty list.
void add_list(LabelMap& m, const std::string& cls, const std::string& list, const std::string& where) {
  if (cls.empty()) throw Error(where + ": empty dataset class name");
  int n = 0;
  for (const auto& part : split(list, ';')) {
    const std::string name(trim(part));
    if (name.empty()) continue;
    m.add(cls, name);
    ++n;
  }
  if (n == 0) throw Error(where + ": class '" + cls + "' maps to no AudioSet label; give at least one");
}

}  // namespace

void LabelMap::add(const std::string& dataset_label, const std::string& audioset_label) {
  auto [it, inserted] = to_audioset_.try_emplace(dataset_label);
  if (inserted) classes_.push_back(dataset_label);
  if (std::find(it->second.begin(), it->second.end(), audioset_label) == it->second.end())
    it->second.push_back(audioset_label);
}

LabelMap LabelMap::parse_csv(std::istream& in, const std::string& source) {
  LabelMap m;
  m.source_ = source;
  const auto rows = eval::parse_csv(in, source);
  if (rows.empty()) throw Error(source + ": empty label map; expected rows dataset_label,audioset_label");
  size_t first = 0, c_class = 0, c_as = 1;
  bool fixed_width = true;
  {
    std::vector<std::string> h;
    for (const auto& f : rows[0].fields) h.push_back(lower(f));
    auto col = [&](const char* name) { return size_t(std::find(h.begin(), h.end(), name) - h.begin()); };
    if (col("class") < h.size() && col("audioset_labels") < h.size()) {
      // events.csv layout: named columns among others.
      c_class = col("class"), c_as = col("audioset_labels");
      first = 1;
      fixed_width = false;
    } else if (h.size() == 2 && (h[0] == "dataset_label" || h[0] == "class") &&
               (h[1] == "audioset_label" || h[1] == "audioset_labels")) {
      first = 1;
    }
  }
  const size_t n_cols = rows[0].fields.size();
  for (size_t r = first; r < rows.size(); ++r) {
    const auto& row = rows[r];
    const std::string where = fmt::format("{}:{}", source, row.line);
    if (fixed_width && row.fields.size() != 2)
      throw Error(fmt::format("{}: {} fields, expected 2 (dataset_label,audioset_label); quote names that contain "
                              "commas",
                              where, row.fields.size()));
    if (!fixed_width && row.fields.size() != n_cols)
      throw Error(fmt::format("{}: {} fields, the header has {}", where, row.fields.size(), n_cols));
    add_list(m, row.fields[c_class], row.fields[c_as], where);
  }
  if (m.empty()) throw Error(source + ": the label map has no rows");
  return m;
}

LabelMap LabelMap::parse_yaml(const std::string& text, const std::string& source) {
  LabelMap m;
  m.source_ = source;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("{}:{}: not valid YAML: {}", source, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap() || root.size() == 0)
    throw Error(source + ": a label map is a YAML mapping dataset_class: [AudioSet label, ...]");
  for (const auto& kv : root) {
    const std::string cls = kv.first.as<std::string>();
    const std::string where = fmt::format("{}:{}", source, kv.first.Mark().line + 1);
    const YAML::Node& v = kv.second;
    if (v.IsScalar()) {
      add_list(m, cls, v.as<std::string>(), where);
    } else if (v.IsSequence() && v.size() > 0) {
      for (const auto& item : v) {
        if (!item.IsScalar()) throw Error(where + ": class '" + cls + "': list items must be AudioSet label names");
        add_list(m, cls, item.as<std::string>(), where);
      }
    } else {
      throw Error(where + ": class '" + cls + "' needs an AudioSet label name or a list of them");
    }
  }
  return m;
}

LabelMap LabelMap::load(const std::string& path) {
  std::istringstream f(util::read_file_bounded(path, util::kMaxTableBytes, "label map"));
  const std::string ext = lower(path.substr(path.find_last_of('.') == std::string::npos ? path.size()
                                                                                          : path.find_last_of('.')));
  if (ext == ".yaml" || ext == ".yml") return parse_yaml(f.str(), path);
  return parse_csv(f, path);
}

const std::vector<std::string>& LabelMap::audioset_labels(const std::string& dataset_label) const {
  static const std::vector<std::string> kNone;
  auto it = to_audioset_.find(dataset_label);
  return it == to_audioset_.end() ? kNone : it->second;
}

std::vector<std::string> LabelMap::dataset_labels(const std::string& audioset_label) const {
  std::vector<std::string> out;
  for (const auto& c : classes_) {
    const auto& l = to_audioset_.at(c);
    if (std::find(l.begin(), l.end(), audioset_label) != l.end()) out.push_back(c);
  }
  return out;
}

void LabelMap::check_known(const std::vector<std::string>& known, const std::string& known_source) const {
  const std::set<std::string> k(known.begin(), known.end());
  std::vector<std::string> unknown;
  for (const auto& c : classes_)
    for (const auto& a : to_audioset_.at(c))
      if (!k.count(a) && std::find(unknown.begin(), unknown.end(), a) == unknown.end()) unknown.push_back(a);
  if (unknown.empty()) return;
  std::string list;
  for (size_t i = 0; i < unknown.size(); ++i) list += (i ? ", '" : "'") + unknown[i] + "'";
  throw Error(fmt::format("{}: {} AudioSet label(s) not in {}: {}; spell them exactly as the display names in "
                          "AudioSet's class_labels_indices.csv",
                          source_, unknown.size(), known_source, list));
}

FrameScores LabelMap::map_scores(const FrameScores& model) const {
  check_known(model.labels, "the score table's labels");
  const size_t km = model.labels.size();
  if (model.values.size() != size_t(model.frames) * km)
    throw Error("frame scores: values do not match frames x labels; the score grid is inconsistent");
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < km; ++i) index.emplace(model.labels[i], i);
  std::vector<std::vector<size_t>> cols;
  for (const auto& c : classes_) {
    cols.emplace_back();
    for (const auto& a : to_audioset_.at(c)) cols.back().push_back(index.at(a));
  }
  FrameScores out;
  out.hop_s = model.hop_s;
  out.frames = model.frames;
  out.labels = classes_;
  out.values.resize(size_t(model.frames) * classes_.size());
  for (size_t f = 0; f < size_t(model.frames); ++f)
    for (size_t c = 0; c < cols.size(); ++c) {
      float v = model.values[f * km + cols[c][0]];
      for (size_t i : cols[c]) v = std::max(v, model.values[f * km + i]);
      out.values[f * classes_.size() + c] = v;
    }
  return out;
}

std::vector<Event> LabelMap::map_events(const std::vector<Event>& events) const {
  std::map<std::string, int> index;
  for (size_t i = 0; i < classes_.size(); ++i) index.emplace(classes_[i], int(i));
  std::vector<std::vector<Event>> per_class(classes_.size());
  for (const auto& e : events) {
    std::vector<std::string> targets = dataset_labels(e.label);
    if (targets.empty() && index.count(e.label)) targets.push_back(e.label);  // already a dataset class
    for (const auto& c : targets) {
      Event m = e;
      m.label = c;
      m.class_index = index.at(c);
      per_class[size_t(m.class_index)].push_back(std::move(m));
    }
  }
  std::vector<Event> out;
  for (auto& list : per_class) {
    std::stable_sort(list.begin(), list.end(), [](const Event& a, const Event& b) { return a.onset < b.onset; });
    for (auto& e : list) {
      if (!out.empty() && out.back().class_index == e.class_index && e.onset <= out.back().offset) {
        out.back().offset = std::max(out.back().offset, e.offset);
        out.back().confidence = std::max(out.back().confidence, e.confidence);
        out.back().score = std::max(out.back().score, e.score);
      } else {
        out.push_back(std::move(e));
      }
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Event& a, const Event& b) { return a.onset < b.onset; });
  return out;
}

EventTable LabelMap::map_events(const EventTable& table) const {
  EventTable out;
  for (const auto& file : table.files()) {
    out.add_file(file);
    for (auto& e : map_events(table.events(file))) out.add(file, std::move(e));
  }
  return out;
}

std::vector<std::string> read_audioset_label_names(const std::string& path) {
  std::istringstream f(util::read_file_bounded(path, util::kMaxTableBytes, "AudioSet label list"));
  const auto rows = parse_csv(f, path);
  if (rows.empty() || rows[0].fields.size() < 3 || lower(rows[0].fields[2]) != "display_name")
    throw Error(path + ": expected AudioSet's class_labels_indices.csv (index,mid,display_name)");
  std::vector<std::string> names;
  for (size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].fields.size() != 3)
      throw Error(fmt::format("{}:{}: expected 3 fields (index,mid,display_name)", path, rows[r].line));
    names.push_back(rows[r].fields[2]);
  }
  return names;
}

}  // namespace earmark::eval
