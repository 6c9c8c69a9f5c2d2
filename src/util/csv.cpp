// util: CSV reading.
#include "util/csv.hpp"

#include <fstream>
#include <sstream>

#include "earmark/earmark.hpp"
#include "util/file.hpp"

namespace earmark::util {

std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& origin) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  size_t line = 1, quote_line = 0;
  auto end_field = [&] {
    row.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  auto end_row = [&] {
    // A blank line is no row at all rather than one empty field.
    if (!(row.empty() && !field_started && field.empty())) {
      end_field();
      rows.push_back(std::move(row));
    }
    row.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    switch (c) {
      case '"':
        quoted = true;
        field_started = true;
        quote_line = line;
        break;
      case ',': end_field(); field_started = true; break;
      case '\r': break;
      case '\n': end_row(); ++line; break;
      default: field += c; field_started = true;
    }
  }
  if (quoted) throw Error(origin + ": line " + std::to_string(quote_line) + ": quote is never closed");
  end_row();
  return rows;
}

std::vector<std::map<std::string, std::string>> read_csv_table(const std::string& path) {
  const auto rows = parse_csv(read_file_bounded(path, kMaxTableBytes, "table"), path);
  if (rows.empty()) throw Error(path + ": empty table; expected a header line");
  std::vector<std::map<std::string, std::string>> out;
  const auto& header = rows[0];
  for (size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() != header.size())
      throw Error(path + ": row " + std::to_string(r + 1) + " has " + std::to_string(rows[r].size()) +
                  " fields, the header has " + std::to_string(header.size()));
    std::map<std::string, std::string> m;
    for (size_t c = 0; c < header.size(); ++c) m[header[c]] = rows[r][c];
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace earmark::util
