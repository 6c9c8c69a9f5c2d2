// util: RFC 4180 CSV reading (quoted fields with commas, doubled quotes, CRLF), for the data
// set tables (sounds/events.csv, class label lists).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace earmark::util {

// Rows of fields. Throws earmark::Error("<origin>: line N: ...") on an unterminated quote.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& origin = "csv");

// First row as the header; each later row as header -> field. Rows with a different field
// count than the header throw earmark::Error naming the line. Blank lines are skipped.
std::vector<std::map<std::string, std::string>> read_csv_table(const std::string& path);

}  // namespace earmark::util
