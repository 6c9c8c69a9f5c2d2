// report: event lists written as CSV, JSON, Audacity labels and DCASE TSV.
#include "report/writers.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/text.hpp"

namespace earmark::report {

namespace fs = std::filesystem;
// Written with keys in a reading order (path, ok, error, info, events), not sorted.
using json = nlohmann::ordered_json;

namespace {

// to_chars ignores the locale, so a German or French locale never turns 1.250 into 1,250.
std::string fixed3(double v) {
  if (std::abs(v) < 0.0005) v = 0.0;  // no "-0.000"
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 3);
  return std::string(buf, r.ptr);
}

// The shortest decimal that reads back as the same float, as a double, so that the JSON shows
// 0.7 rather than 0.699999988079071 and still parses back to the exact float.
double float_for_json(float v) {
  if (!std::isfinite(v)) return double(v);  // nlohmann writes null
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  double d = 0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

double ms(double seconds) { return std::round(seconds * 1000.0) / 1000.0; }

// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) {
    if (ch == '"') q += '"';
    q += ch;
  }
  return q + "\"";
}

// Tab-separated formats have no quoting; a tab or line break would shift the columns.
std::string tsv_field(std::string s) {
  std::replace_if(s.begin(), s.end(), [](char ch) { return ch == '\t' || ch == '\n' || ch == '\r'; }, ' ');
  return s;
}

std::string base_name(const std::string& path) { return fs::path(path).filename().string(); }

json file_json(const FileResult& r, bool frame_scores) {
  json f;
  f["path"] = r.path;
  f["ok"] = r.ok();
  f["error"] = r.ok() ? json(nullptr) : json(r.error);
  f["info"] = {{"container", r.info.container},
               {"codec", r.info.codec},
               {"source_rate", r.info.source_rate},
               {"source_channels", r.info.source_channels},
               {"duration_s", ms(r.info.duration_s)}};
  json events = json::array();
  for (const auto& e : r.events) {
    json also = json::array();  // labels rolled up into this one (events.rollup), most confident first
    for (const auto& a : e.also) also.push_back({{"label", a.label}, {"confidence", float_for_json(a.confidence)}});
    events.push_back({{"onset", ms(e.onset)},
                      {"offset", ms(e.offset)},
                      {"label", e.label},
                      {"confidence", float_for_json(e.confidence)},
                      {"score", float_for_json(e.score)},
                      {"salience_db", float_for_json(e.salience_db)},
                      {"kind", kind_name(e.kind)},
                      {"also", std::move(also)}});
  }
  f["events"] = std::move(events);
  if (frame_scores && r.ok()) {
    const auto& s = r.scores;
    json values = json::array();
    const size_t L = s.labels.size();
    for (size_t fr = 0; fr < size_t(std::max(s.frames, 0)) && (fr + 1) * L <= s.values.size(); ++fr) {
      json row = json::array();
      for (size_t c = 0; c < L; ++c) row.push_back(float_for_json(s.values.printable(fr * L + c)));
      values.push_back(std::move(row));
    }
    f["frame_scores"] = {{"hop_s", s.hop_s}, {"labels", s.labels}, {"values", std::move(values)}};
  }
  if (r.quality.measured) {
    const auto& q = r.quality;
    f["quality"] = {{"peak_dbfs", q.peak_dbfs},
                    {"rms_dbfs", q.rms_dbfs},
                    {"loudness_lufs", q.loudness_lufs},
                    {"dc_offset", q.dc_offset},
                    {"noise_floor_dbfs", q.noise_floor_dbfs},
                    {"snr_db", q.snr_db},
                    {"noise_colour", q.noise_colour},
                    {"hum_hz", q.hum_hz},
                    {"clipped_samples", q.clipped_samples},
                    {"conditioning", q.conditioning}};
  }
  if (!r.anomalies.empty()) {
    json list = json::array();
    for (const auto& a : r.anomalies)
      list.push_back({{"kind", a.kind},
                      {"severity", a.severity},
                      {"start_s", ms(a.start_s)},
                      {"end_s", ms(a.end_s)},
                      {"message", a.message}});
    f["anomalies"] = std::move(list);
  }
  if (!r.warnings.empty()) f["warnings"] = r.warnings;
  const auto& sp = r.spectrogram;
  if (frame_scores && r.ok() && sp.bins > 0 && sp.columns > 0 && sp.values.size() >= size_t(sp.bins) * size_t(sp.columns)) {
    // 8 bits per value (a picture needs no more) keeps a long file's spectrogram to a few
    // hundred kB instead of megabytes of decimals.
    float lo = INFINITY, hi = -INFINITY;
    const size_t n = size_t(sp.bins) * size_t(sp.columns);
    for (size_t k = 0; k < n; ++k)
      if (std::isfinite(sp.values[k])) {
        lo = std::min(lo, sp.values[k]);
        hi = std::max(hi, sp.values[k]);
      }
    if (!(lo <= hi)) lo = hi = 0;
    std::string q(n, '\0');
    for (size_t k = 0; k < n; ++k) {
      const float v = sp.values[k];
      const double t = hi > lo && std::isfinite(v) ? (v - lo) / double(hi - lo) : 0.0;
      q[k] = static_cast<char>(static_cast<unsigned char>(std::lround(std::clamp(t, 0.0, 1.0) * 255.0)));
    }
    f["spectrogram"] = {{"bins", sp.bins},
                        {"columns", sp.columns},
                        {"seconds_per_column", sp.seconds_per_column},
                        {"min", float_for_json(lo)},
                        {"max", float_for_json(hi)},
                        {"encoding", "u8_base64"},
                        {"data", base64(q)}};
  }
  return f;
}

// Portable file-name stem: characters that Windows or shells choke on become '_'.
std::string safe_stem(const std::string& path) {
  std::string s = fs::path(path).stem().string();
  for (auto& ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || std::strchr("<>:\"/\\|?*", ch) != nullptr) ch = '_';
  }
  if (s.empty() || s == "." || s == "..") s = "file";
  return s;
}

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// One file's rows of events.csv / events.tsv (header excluded).
std::string csv_rows(const FileResult& r) {
  std::string out;
  if (!r.ok()) return out;
  const std::string file = csv_field(r.path);
  for (const auto& e : r.events)
    out += file + ',' + fixed3(e.onset) + ',' + fixed3(e.offset) + ',' + csv_field(e.label) + ',' +
           fixed3(e.confidence) + ',' + kind_name(e.kind) + '\n';
  return out;
}
std::string tsv_rows(const FileResult& r) {
  std::string out;
  if (!r.ok()) return out;
  const std::string file = tsv_field(base_name(r.path));
  for (const auto& e : r.events)
    out += file + '\t' + fixed3(e.onset) + '\t' + fixed3(e.offset) + '\t' + tsv_field(e.label) + '\t' +
           kind_name(e.kind) + '\n';
  return out;
}
// `kind`: event, or background (a steady sound reported once for its stretch; detect/background.hpp).
constexpr const char* kCsvHeader = "file,onset,offset,label,confidence,kind\n";
constexpr const char* kTsvHeader = "filename\tonset\toffset\tevent_label\tkind\n";

// events.json is written record by record: a head, the records with a separator between them,
// and a tail that closes the document. Indented (as nlohmann's dump(2) would write the whole
// document) unless frame scores make it large.
struct JsonLayout {
  std::string head, separator, tail;
  bool indent;
  explicit JsonLayout(bool frame_scores) : indent(!frame_scores) {
    const std::string v = json(version()).dump();
    if (indent) {
      head = "{\n  \"earmark_version\": " + v + ",\n  \"files\": [\n";
      separator = ",\n";
      tail = "\n  ]\n}\n";
    } else {
      head = "{\"earmark_version\":" + v + ",\"files\":[";
      separator = ",";
      tail = "]}\n";
    }
  }
  std::string record(const FileResult& r) const {
    // Paths are bytes on Linux and need not be UTF-8; replace bad bytes rather than throw.
    const std::string text = file_json(r, !indent).dump(indent ? 2 : -1, ' ', false, json::error_handler_t::replace);
    if (!indent) return text;
    std::string out = "    ";
    for (char ch : text) {
      out += ch;
      if (ch == '\n') out += "    ";
    }
    return out;
  }
};

}  // namespace

OutputNames::OutputNames() : taken_({"events"}) {}

std::string OutputNames::next(const std::string& input_path) {
  const std::string base = safe_stem(input_path);
  std::string stem = base;
  auto taken = [&](const std::string& s) { return std::binary_search(taken_.begin(), taken_.end(), lower(s)); };
  // No stem whose per-file outputs would be a run-wide file (run.wav -> run.json), compared
  // case-insensitively for case-insensitive file systems.
  auto run_wide = [](const std::string& s) {
    for (const auto& suffix : kPerFileSuffixes)
      for (const auto& name : kRunWideFiles)
        if (lower(s + suffix) == name) return true;
    return false;
  };
  for (int k = 2; taken(stem) || run_wide(stem); ++k) stem = base + "-" + std::to_string(k);
  const std::string key = lower(stem);
  taken_.insert(std::upper_bound(taken_.begin(), taken_.end(), key), key);
  return stem;
}

void write_csv(std::ostream& os, const std::vector<FileResult>& results) {
  os << kCsvHeader;
  for (const auto& r : results) os << csv_rows(r);
}

void write_audacity(std::ostream& os, const FileResult& result) {
  if (!result.ok()) return;
  for (const auto& e : result.events)
    os << fixed3(e.onset) << '\t' << fixed3(e.offset) << '\t'
       << tsv_field(e.kind == EventKind::background ? e.label + " (background)" : e.label) << '\n';
}

void write_dcase_tsv(std::ostream& os, const std::vector<FileResult>& results) {
  os << kTsvHeader;
  for (const auto& r : results) os << tsv_rows(r);
}

void write_json(std::ostream& os, const std::vector<FileResult>& results, bool frame_scores) {
  const JsonLayout layout(frame_scores);
  os << layout.head;
  for (size_t i = 0; i < results.size(); ++i) os << (i ? layout.separator : "") << layout.record(results[i]);
  os << layout.tail;
}

namespace {

// An integer field of events.json: absent -> `fallback`; else a JSON integer in [lo, hi].
// nlohmann converts a float (1e21) to int with a cast that is undefined behaviour out of range
// (found by fuzz/fuzz_report), so the type and range are checked first.
long long int_field(const nlohmann::json& j, const char* key, long long lo, long long hi, long long fallback,
                    const std::string& where) {
  if (!j.is_object() || !j.contains(key)) return fallback;
  const auto& v = j[key];
  long long x = 0;
  if (v.is_number_unsigned()) {
    const auto u = v.get<unsigned long long>();
    if (u > static_cast<unsigned long long>(hi)) x = hi + 1;  // out of range below
    else x = static_cast<long long>(u);
  } else if (v.is_number_integer()) {
    x = v.get<long long>();
  } else {
    throw Error(where + ": \"" + key + "\" is not an integer; give a file written by earmark's json output");
  }
  if (x < lo || x > hi)
    throw Error(where + ": \"" + key + "\" = " + std::to_string(x) + " is out of range (" + std::to_string(lo) +
                " to " + std::to_string(hi) + ")");
  return x;
}

}  // namespace

std::vector<FileResult> read_json(std::istream& is, const std::string& origin) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(is);
  } catch (const nlohmann::json::exception& e) {
    throw Error(origin + ": not valid JSON (" + e.what() + "); give a file written by earmark's json output");
  }
  std::vector<FileResult> out;
  try {
    if (!root.is_object() || !root.contains("files") || !root["files"].is_array())
      throw Error(origin + ": no \"files\" list; give a file written by earmark's json output");
    for (const auto& f : root["files"]) {
      FileResult r;
      r.path = f.at("path").get<std::string>();
      if (f.contains("error") && f["error"].is_string()) r.error = f["error"].get<std::string>();
      if (f.contains("info")) {
        const auto& i = f["info"];
        r.info.container = i.value("container", "");
        r.info.codec = i.value("codec", "");
        r.info.source_rate = int(int_field(i, "source_rate", 0, 1 << 30, 0, origin + ": " + r.path));
        r.info.source_channels = int(int_field(i, "source_channels", 0, 1 << 16, 0, origin + ": " + r.path));
        r.info.duration_s = i.value("duration_s", 0.0);
      }
      for (const auto& e : f.value("events", nlohmann::json::array())) {
        Event ev;
        ev.onset = e.at("onset").get<double>();
        ev.offset = e.at("offset").get<double>();
        ev.label = e.at("label").get<std::string>();
        ev.confidence = e.at("confidence").is_number() ? e["confidence"].get<float>() : NAN;
        // Files written before scores and kinds were: the confidence was the peak score.
        ev.score = e.contains("score") && e["score"].is_number() ? e["score"].get<float>() : ev.confidence;
        ev.salience_db = e.contains("salience_db") && e["salience_db"].is_number() ? e["salience_db"].get<float>() : NAN;
        if (e.contains("kind")) {
          try {
            ev.kind = kind_from_name(e["kind"].get<std::string>());
          } catch (const Error& x) {
            throw Error(origin + ": " + r.path + ": " + x.what());
          }
        }
        for (const auto& a : e.value("also", nlohmann::json::array()))
          ev.also.push_back(RolledLabel{a.at("label").get<std::string>(),
                                        a.at("confidence").is_number() ? a["confidence"].get<float>() : NAN});
        r.events.push_back(std::move(ev));
      }
      if (f.contains("frame_scores")) {
        const auto& s = f["frame_scores"];
        r.scores.hop_s = s.at("hop_s").get<double>();
        r.scores.labels = s.at("labels").get<std::vector<std::string>>();
        for (const auto& row : s.at("values")) {
          if (row.size() != r.scores.labels.size())
            throw Error(origin + ": " + r.path + ": a frame_scores row has " + std::to_string(row.size()) +
                        " values for " + std::to_string(r.scores.labels.size()) + " labels");
          for (const auto& v : row) r.scores.values.push_back(v.is_number() ? v.get<float>() : NAN);
          ++r.scores.frames;
        }
      }
      if (f.contains("quality") && f["quality"].is_object()) {
        const auto& q = f["quality"];
        auto num = [&](const char* k) { return q.contains(k) && q[k].is_number() ? q[k].get<double>() : 0.0; };
        r.quality.measured = true;
        r.quality.peak_dbfs = num("peak_dbfs");
        r.quality.rms_dbfs = num("rms_dbfs");
        r.quality.loudness_lufs = num("loudness_lufs");
        r.quality.dc_offset = num("dc_offset");
        r.quality.noise_floor_dbfs = num("noise_floor_dbfs");
        r.quality.snr_db = num("snr_db");
        r.quality.hum_hz = num("hum_hz");
        r.quality.noise_colour = q.value("noise_colour", "");
        r.quality.clipped_samples =
            size_t(int_field(q, "clipped_samples", 0, std::numeric_limits<long long>::max() - 1, 0, origin + ": " + r.path));
        r.quality.conditioning = q.value("conditioning", "");
      }
      for (const auto& a : f.value("anomalies", nlohmann::json::array())) {
        Anomaly an;
        an.kind = a.value("kind", "");
        an.severity = a.value("severity", "info");
        an.start_s = a.value("start_s", 0.0);
        an.end_s = a.value("end_s", 0.0);
        an.message = a.value("message", "");
        r.anomalies.push_back(std::move(an));
      }
      if (f.contains("warnings")) r.warnings = f["warnings"].get<std::vector<std::string>>();
      if (f.contains("spectrogram")) {
        const auto& sp = f["spectrogram"];
        const int bins = int(int_field(sp, "bins", 1, 1 << 20, 0, origin + ": " + r.path));
        const int columns = int(int_field(sp, "columns", 1, 1 << 30, 0, origin + ": " + r.path));
        std::string q;
        if (sp.value("encoding", "") != "u8_base64" || !base64_decode(sp.at("data").get<std::string>(), q) ||
            bins <= 0 || columns <= 0 || q.size() != size_t(bins) * size_t(columns))
          throw Error(origin + ": " + r.path + ": the spectrogram is not bins x columns bytes in u8_base64");
        const float lo = sp.at("min").get<float>(), hi = sp.at("max").get<float>();
        r.spectrogram.bins = bins;
        r.spectrogram.columns = columns;
        r.spectrogram.seconds_per_column = sp.at("seconds_per_column").get<double>();
        r.spectrogram.values.resize(q.size());
        for (size_t k = 0; k < q.size(); ++k)
          r.spectrogram.values[k] = lo + (hi - lo) * float(static_cast<unsigned char>(q[k])) / 255.0f;
      }
      out.push_back(std::move(r));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(origin + ": unexpected content (" + e.what() + "); give a file written by earmark's json output");
  }
  return out;
}

namespace {

void check_formats(const OutputConfig& cfg) {
  static const std::vector<std::string> known = {"csv", "json", "audacity", "tsv"};
  for (const auto& f : cfg.formats)
    if (std::find(known.begin(), known.end(), f) == known.end())
      throw Error("output.formats: unknown format '" + f + "' (known: csv, json, audacity, tsv)");
}

[[noreturn]] void fail(const fs::path& p, const char* what, const char* hint) {
  throw Error(p.string() + ": " + what + " (" + std::strerror(errno) + "); " + hint);
}

// The whole of `bytes` at `offset` (pwrite may write less than asked).
void write_at(int fd, const fs::path& p, std::string_view bytes, uint64_t offset) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), off_t(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(p, "writing failed", "check free space");
    bytes.remove_prefix(size_t(n));
    offset += uint64_t(n);
  }
}

// `bytes` as the whole content of `p`, written under a temporary name and renamed, so that the
// file is either the old one or complete.
void write_whole(const fs::path& p, const std::string& bytes) {
  const fs::path tmp = p.string() + ".part";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(p, "cannot write", "check the output folder");
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.flush();
    if (!f) fail(p, "writing failed", "check free space");
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) throw Error(p.string() + ": cannot write (" + ec.message() + "); check the output folder");
}

// A run-wide file that grows at its end (or, for events.json, just before its tail).
struct GrowingFile {
  fs::path path;
  int fd = -1;
  uint64_t end = 0;  // where the next bytes go
  void open(const fs::path& p, const std::string& head, const std::string& tail, const uint64_t* resume_at) {
    path = p;
    fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail(p, "cannot write", "check the output folder");
    if (resume_at) {
      struct stat st {};
      if (::fstat(fd, &st) != 0 || uint64_t(st.st_size) < *resume_at || *resume_at < head.size())
        throw Error(p.string() + ": shorter than the run's progress file records; the folder was changed since the "
                                 "run stopped: run again without --resume (or into another folder)");
      end = *resume_at;
    } else {
      end = 0;
      append(head);
    }
    if (::ftruncate(fd, off_t(end)) != 0) fail(p, "cannot write", "check the output folder");
    if (!tail.empty()) write_at(fd, path, tail, end);
  }
  void append(const std::string& bytes, const std::string& tail = {}) {
    if (bytes.empty()) return;
    write_at(fd, path, bytes + tail, end);  // one write: the file is complete before and after
    end += bytes.size();
  }
  ~GrowingFile() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

struct OutputStream::Impl {
  fs::path dir;
  OutputConfig cfg;
  bool csv = false, json = false, tsv = false, audacity = false;
  JsonLayout layout;
  GrowingFile csv_file, json_file, tsv_file;
  size_t records = 0;
  OutputNames names;
  explicit Impl(const OutputConfig& c) : cfg(c), layout(c.frame_scores) {}
};

OutputStream::OutputStream(const std::string& out_dir, const OutputConfig& cfg, const OutputPositions* resume_at,
                           const std::vector<std::string>& kept_inputs)
    : impl_(std::make_unique<Impl>(cfg)) {
  check_formats(cfg);
  auto& s = *impl_;
  auto wants = [&](const char* f) { return std::find(cfg.formats.begin(), cfg.formats.end(), f) != cfg.formats.end(); };
  s.csv = wants("csv"), s.json = wants("json"), s.tsv = wants("tsv"), s.audacity = wants("audacity");
  s.dir = out_dir;
  std::error_code ec;
  fs::create_directories(s.dir, ec);
  if (ec || !fs::is_directory(s.dir))
    throw Error(out_dir + ": cannot create the output folder (" +
                (ec ? ec.message() : std::string("a file of that name exists")) + "); choose a writable folder");
  for (const auto& p : kept_inputs) s.names.next(p);
  s.records = kept_inputs.size();
  if (s.csv) {
    s.csv_file.open(s.dir / "events.csv", kCsvHeader, "", resume_at ? &resume_at->csv : nullptr);
    run_files_.push_back((s.dir / "events.csv").string());
  }
  if (s.json) {
    s.json_file.open(s.dir / "events.json", s.layout.head, s.layout.tail, resume_at ? &resume_at->json : nullptr);
    run_files_.push_back((s.dir / "events.json").string());
  }
  if (s.tsv) {
    s.tsv_file.open(s.dir / "events.tsv", kTsvHeader, "", resume_at ? &resume_at->tsv : nullptr);
    run_files_.push_back((s.dir / "events.tsv").string());
  }
}

OutputStream::~OutputStream() = default;

OutputPositions OutputStream::positions() const {
  return {impl_->csv_file.end, impl_->json_file.end, impl_->tsv_file.end};
}

std::vector<std::string> OutputStream::add(const FileResult& r) {
  auto& s = *impl_;
  std::vector<std::string> written;
  // Per-file outputs first: once the run-wide files list the file, its own files exist.
  const std::string stem = s.names.next(r.path);
  auto put = [&](const std::string& name, const std::string& bytes) {
    write_whole(s.dir / name, bytes);
    written.push_back((s.dir / name).string());
  };
  if (s.audacity && r.ok()) {
    std::ostringstream os;
    write_audacity(os, r);
    put(stem + ".labels.txt", os.str());
  }
  if (s.cfg.per_file) {
    if (s.csv && r.ok()) put(stem + ".csv", kCsvHeader + csv_rows(r));
    if (s.json) put(stem + ".json", s.layout.head + s.layout.record(r) + s.layout.tail);
  }
  if (s.csv) s.csv_file.append(csv_rows(r));
  if (s.json) s.json_file.append((s.records ? s.layout.separator : std::string()) + s.layout.record(r), s.layout.tail);
  if (s.tsv) s.tsv_file.append(tsv_rows(r));
  ++s.records;
  return written;
}

std::vector<std::string> write_outputs(const std::string& out_dir, const std::vector<FileResult>& results,
                                       const OutputConfig& cfg) {
  OutputStream out(out_dir, cfg);
  std::vector<std::string> written = out.run_files();
  for (const auto& r : results) {
    auto more = out.add(r);
    written.insert(written.end(), more.begin(), more.end());
  }
  return written;
}

}  // namespace earmark::report
