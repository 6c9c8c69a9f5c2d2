// model: the label list of the network (AudioSet's class_labels_indices.csv: index,mid,display_name).
#pragma once

#include <string>
#include <vector>

#include "earmark/earmark.hpp"

namespace earmark::model {

// Parses class_labels_indices.csv (RFC 4180 quoting); throws earmark::Error naming the file and
// line of a malformed row. Indices must run 0..n-1 in order.
std::vector<LabelInfo> read_labels(const std::string& path);

// Splits one CSV line into fields (double-quote quoting, "" for a quote inside quotes).
std::vector<std::string> split_csv_line(const std::string& line);

}  // namespace earmark::model
