// report: event lists written as CSV, JSON, Audacity labels and DCASE TSV.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "earmark/earmark.hpp"

namespace earmark::report {

// file,onset,offset,label,confidence   (header line, times with 3 decimals, RFC 4180 quoting)
void write_csv(std::ostream& os, const std::vector<FileResult>& results);
// start\tend\tlabel   (one file's events)
void write_audacity(std::ostream& os, const FileResult& result);
// filename\tonset\toffset\tevent_label   (header line; filename is the file's base name)
void write_dcase_tsv(std::ostream& os, const std::vector<FileResult>& results);
// {"files":[{"path","info","events":[...],"error","frame_scores"?}], ...}
void write_json(std::ostream& os, const std::vector<FileResult>& results, bool frame_scores);

// Writes the requested formats (csv, json, audacity, tsv) for a run into `out_dir`:
// events.csv, events.json, events.tsv and, per file, <name>.labels.txt (+ <name>.csv/.json
// when per_file). Creates the folder. Returns the paths written.
std::vector<std::string> write_outputs(const std::string& out_dir, const std::vector<FileResult>& results,
                                       const OutputConfig& cfg);

}  // namespace earmark::report
