#include "model/labels.hpp"

#include <filesystem>
#include <sstream>

#include "util/file.hpp"

namespace earmark::model {

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(cur));
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(std::move(cur));
  return out;
}

std::vector<LabelInfo> read_labels(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw Error(path + ": cannot open the label list (expected class_labels_indices.csv next to the model)");
  std::istringstream in(util::read_file_bounded(path, util::kMaxTableBytes, "label list"));
  std::vector<LabelInfo> labels;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno == 1 && line.rfind("index", 0) == 0) continue;  // header
    if (line.empty() || line == "\r") continue;
    const auto f = split_csv_line(line);
    int idx = -1;
    try {
      idx = f.size() == 3 ? std::stoi(f[0]) : -1;
    } catch (const std::exception&) {
    }
    if (idx != int(labels.size()) || f[2].empty())
      throw Error(path + ":" + std::to_string(lineno) + ": expected 'index,mid,display_name' with index " +
                  std::to_string(labels.size()));
    labels.push_back(LabelInfo{idx, f[1], f[2]});
  }
  if (labels.empty()) throw Error(path + ": the label list is empty");
  return labels;
}

}  // namespace earmark::model
