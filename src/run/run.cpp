// run: a whole detection run (inputs -> detect -> review -> outputs -> report), streamed file
// by file in input order, with a progress file so that a stopped run can be resumed.
#include "earmark/run.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "decode/decoder.hpp"
#include "detect/naive.hpp"
#include "detect/review.hpp"
#include "eval/tsv.hpp"
#include "model/labels.hpp"
#include "model/network.hpp"
#include "model/registry.hpp"
#include "report/report.hpp"
#include "report/writers.hpp"
#include "util/file.hpp"
#include "util/sha256.hpp"
#include "util/memory.hpp"
#include "util/time.hpp"

namespace earmark {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr const char* kProgressFile = "run.progress.jsonl";

report::RunInfo to_run_info(const RunMetadata& m) {
  report::RunInfo info;
  info.model_name = m.model_name;
  info.checkpoint_path = m.checkpoint_path;
  info.checkpoint_sha256 = m.checkpoint_sha256;
  info.labels_path = m.labels_path;
  info.config_yaml = m.config_yaml;
  info.started_at = m.started_at;
  info.wall_s = m.wall_s;
  info.inputs = m.inputs;
  info.label_count = m.label_count;
  info.torch_version = m.torch_version;
  info.calibration = m.calibration;
  return info;
}

report::ReportConfig report_config(const ReportOptions& o, const EventsConfig* events) {
  report::ReportConfig rc;
  rc.pictures.top_classes = o.top_classes;
  rc.max_picture_files = o.picture_files;
  rc.picture_inputs = o.pictures_for;
  rc.page_files = o.page_files;
  if (events) rc.review = detect::ReviewConfig::from(*events);
  else rc.run_review = false;  // thresholds unknown: no review rather than one against the defaults
  return rc;
}

// A result without its frame scores and spectrogram, as JSON (a line of the progress file).
json light_json(const FileResult& r) {
  // Everything but the grids: copying a long file's score grid here (142 MB for 3 hours) was
  // the run's peak memory.
  FileResult light;
  light.path = r.path;
  light.info = r.info;
  light.events = r.events;
  light.quality = r.quality;
  light.anomalies = r.anomalies;
  light.warnings = r.warnings;
  light.timings = r.timings;
  light.error = r.error;
  std::ostringstream os;
  report::write_json(os, {std::move(light)}, false);
  return json::parse(os.str())["files"][0];
}
FileResult from_light_json(const json& j) {
  std::istringstream is(json{{"files", json::array({j})}}.dump());
  return report::read_json(is, kProgressFile).at(0);
}

}  // namespace

// ---------------------------------------------------------------- inputs, metadata, review

std::vector<std::string> expand_inputs(const std::vector<std::string>& paths, std::vector<std::string>& errors) {
  std::vector<std::string> files;
  std::set<std::string> seen;
  auto add = [&](const fs::path& p) {
    const std::string s = p.lexically_normal().string();
    if (seen.insert(s).second) files.push_back(s);
  };
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec) && decode::has_audio_extension(it->path().string())) found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());
      if (found.empty())
        errors.push_back(p + ": no audio files in this folder (looked for .wav, .flac, .ogg, .opus, .mp3, .m4a, ...)");
      for (const auto& f : found) add(f);
    } else {
      add(p);  // a missing or odd file gets its own error from the decoder
    }
  }
  return files;
}

std::vector<LabelInfo> model_labels(const ModelConfig& m) { return model::read_labels(model::resolve_model(m).labels); }

RunMetadata describe_run(const Detector& det, const std::vector<std::string>& inputs) {
  RunMetadata m;
  m.model_name = det.config().model.name;
  m.checkpoint_path = det.checkpoint_path();
  m.checkpoint_sha256 = det.checkpoint_sha256();
  m.labels_path = det.labels_path();
  m.config_yaml = det.config().to_yaml();
  m.inputs = inputs;
  m.label_count = det.labels().size();
  m.torch_version = std::string(model::torch_version()) + " (" + (det.backend() == "xnnpack" ? "XNNPACK" : "oneDNN") +
                    " convolutions)";
  m.calibration = det.calibration();
  return m;
}

void review_result(FileResult& r, const EventsConfig& events) {
  if (!r.ok()) return;
  auto found = detect::review_detections(r, detect::ReviewConfig::from(events));
  r.anomalies.insert(r.anomalies.end(), found.begin(), found.end());
}

// ---------------------------------------------------------------- RunWriter

struct RunWriter::Impl {
  std::string out_dir;
  Config config;
  report::OutputStream outputs;
  std::optional<report::ReportStream> report;
  std::vector<std::string> written;

  Impl(const std::string& out, const Config& cfg, size_t total, const ReportOptions& ro,
       const report::OutputPositions* out_at = nullptr, const report::ReportPositions* report_at = nullptr,
       const std::vector<std::string>& kept = {})
      : out_dir(out), config(cfg), outputs(out, cfg.output, out_at, kept) {
    if (ro.enabled) report.emplace(out, total, report_config(ro, &cfg.events), report_at);
  }

  // Writes one reviewed result (outputs, then the report's section).
  void add(const FileResult& r) {
    auto more = outputs.add(r);
    if (written.size() < 1000) written.insert(written.end(), more.begin(), more.end());
    if (report) report->add(r);
  }

  std::vector<std::string> finish(const RunMetadata& m) {
    std::vector<std::string> all = outputs.run_files();
    all.insert(all.end(), written.begin(), written.end());
    if (report) {
      auto more = report->finish(to_run_info(m));
      all.insert(all.end(), more.begin(), more.end());
    } else {
      const std::string p = (fs::path(out_dir) / "run.json").string();
      report::write_run_info(p, to_run_info(m));
      all.push_back(p);
    }
    return all;
  }
};

RunWriter::RunWriter(const std::string& out_dir, const Config& config, size_t total_files, const ReportOptions& ro)
    : impl_(std::make_unique<Impl>(out_dir, config, total_files, ro)) {}
RunWriter::~RunWriter() = default;

void RunWriter::add(FileResult r) {
  const bool reviewed = std::any_of(r.anomalies.begin(), r.anomalies.end(), [](const Anomaly& a) {
    return a.kind == "low_confidence" || a.kind == "flicker" || a.kind == "overlap" || a.kind == "background_only" ||
           a.kind == "unknown_sound";
  });
  if (!reviewed) review_result(r, impl_->config.events);
  impl_->add(r);
}

std::vector<std::string> RunWriter::finish(const RunMetadata& m) { return impl_->finish(m); }

// ---------------------------------------------------------------- the progress file

namespace {

// <out>/run.progress.jsonl: a first line naming the run (configuration, inputs), then one line
// per finished file in input order with where each output stood after it, then "finished".
// Each line is one write(2) with O_APPEND, so a killed run leaves whole lines (and at most one
// torn last line, which is ignored).
class ProgressFile {
 public:
  explicit ProgressFile(fs::path p) : path_(std::move(p)) {}
  ~ProgressFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  // The lines of an earlier run (a torn last line dropped); empty if there is none.
  std::vector<json> read() const {
    std::vector<json> lines;
    std::ifstream f(path_, std::ios::binary);
    std::string line;
    while (std::getline(f, line)) {
      if (f.eof()) break;  // no newline: torn by a kill
      try {
        lines.push_back(json::parse(line));
      } catch (const json::exception&) {
        break;
      }
    }
    return lines;
  }

  // Opens for appending, keeping the first `keep` lines (0: a fresh file).
  void open(const std::vector<json>& keep) {
    std::string text;
    for (const auto& l : keep) text += l.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    const fs::path tmp = path_.string() + ".part";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << text;
      f.flush();
      if (!f) throw Error(tmp.string() + ": cannot write (" + std::strerror(errno) + "); check the output folder");
    }
    std::error_code ec;
    fs::rename(tmp, path_, ec);
    if (ec) throw Error(path_.string() + ": cannot write (" + ec.message() + "); check the output folder");
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) throw Error(path_.string() + ": cannot write (" + std::strerror(errno) + "); check the output folder");
  }

  void append(const json& line) {
    const std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    const ssize_t n = ::write(fd_, text.data(), text.size());
    if (n != ssize_t(text.size()))
      throw Error(path_.string() + ": writing failed (" + std::strerror(errno) + "); check free space");
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

std::string inputs_digest(const std::vector<std::string>& files) {
  util::Sha256 h;
  for (const auto& f : files) h.update(f + '\n');
  return h.hex();
}

// <out>/<stem>.scores.tsv, the table `earmark eval --scores` reads (PSDS needs the scores).
void write_scores(const std::string& out_dir, const FileResult& r) {
  const std::string path = (fs::path(out_dir) / eval::scores_file_name(r.path)).string();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  // The whole detector's scores where they were made (output.detection_scores), else the network's grid.
  if (f) eval::write_scores_tsv(f, r.detection_scores.frames > 0 ? r.detection_scores : r.scores);
  if (!f) throw Error(path + ": cannot write the score table; check that the folder is writable and has space");
}

}  // namespace

// run_detect drives a RunWriter's parts itself (a resumed run starts them part-way).
struct RunAccess {
  using Impl = RunWriter::Impl;
};

// ---------------------------------------------------------------- run_detect

RunSummary run_detect(const Config& config_in, const RunOptions& o) {
  const auto start = Clock::now();
  const std::string started_at = util::utc_now_iso();
  if (o.shard_count == 0 || o.shard_index >= o.shard_count)
    throw Error("shard " + std::to_string(o.shard_index) + "/" + std::to_string(o.shard_count) +
                ": expected INDEX/COUNT with 0 <= INDEX < COUNT");
  Config config = config_in;
  if (o.naive) config.frames = detect::naive_frames_config();

  RunSummary summary;
  std::vector<std::string> input_errors;
  auto files = expand_inputs(o.inputs, input_errors);
  if (o.shard_count > 1) {
    std::vector<std::string> mine;
    for (size_t i = o.shard_index; i < files.size(); i += o.shard_count) mine.push_back(files[i]);
    files = std::move(mine);
  }
  if (o.score_tables) {
    // Score tables are named by the audio's stem (that is how eval finds them): two inputs
    // with one stem would overwrite each other's table.
    std::map<std::string, std::string> by_name;
    for (const auto& f : files)
      if (auto [it, fresh] = by_name.emplace(eval::scores_file_name(f), f); !fresh)
        throw Error("--scores: " + it->second + " and " + f + " would both write " + it->first +
                    " (score tables are named by the file name without folder and extension); rename one or run "
                    "them separately");
  }
  // An input that gave no file (a folder without audio) is a failed result of its own, first.
  std::map<size_t, std::string> failed_inputs;
  {
    std::vector<std::string> items;
    for (const auto& e : input_errors) {
      failed_inputs[items.size()] = e;
      items.push_back(e.substr(0, e.find(": no audio files")));
    }
    items.insert(items.end(), files.begin(), files.end());
    files = std::move(items);
  }

  // Files in parallel, one network thread each, when there are enough files; otherwise the
  // detector's own two-stage pipeline uses the threads within one file.
  const int threads = config.model.threads > 0 ? config.model.threads
                                               : int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  const size_t workers = threads >= 2 && files.size() >= 2 ? std::min<size_t>(size_t(threads), files.size()) : 1;
  Config det_config = config;
  if (workers > 1) det_config.model.threads = 1;
  const Detector det(det_config);
  Config effective = det.config();  // with the heads' thresholds filled in
  effective.model.threads = config.model.threads;
  const std::string config_yaml = effective.to_yaml();

  // The progress file: what an interrupted run finished.
  const fs::path out(o.out_dir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out))
    throw Error(o.out_dir + ": cannot create the output folder (" +
                (ec ? ec.message() : std::string("a file of that name exists")) + "); choose a writable folder");
  ProgressFile progress(out / kProgressFile);
  const json header = {{"earmark_run", 1},
                       {"config", config_yaml},
                       {"inputs", inputs_digest(files)},
                       {"files", files.size()},
                       {"naive", o.naive},
                       {"report", o.report.enabled},
                       {"score_tables", o.score_tables}};
  std::vector<json> kept = {header};
  bool finished = false;
  if (o.resume) {
    auto lines = progress.read();
    if (!lines.empty()) {
      if (lines[0] != header)
        throw Error((out / kProgressFile).string() +
                    ": the stopped run in this folder had other inputs or settings; resume with the same command, "
                    "or run without --resume (or into another folder)");
      for (size_t k = 1; k < lines.size(); ++k) {
        if (lines[k].value("finished", false)) {
          finished = true;
          break;
        }
        if (lines[k].value("n", size_t(0)) != k || k > files.size() || lines[k].value("path", "") != files[k - 1])
          throw Error((out / kProgressFile).string() + ": line " + std::to_string(k + 1) +
                      " does not match the inputs; run without --resume");
        kept.push_back(lines[k]);
      }
    }
  }

  // Outputs and report, cut back to where the progress file says the run stood.
  std::vector<FileResult> resumed;
  std::vector<std::string> kept_paths;
  report::OutputPositions out_at;
  report::ReportPositions report_at;
  for (size_t k = 1; k < kept.size(); ++k) {
    resumed.push_back(from_light_json(kept[k].at("result")));
    kept_paths.push_back(files[k - 1]);
    const auto& p = kept[k].at("positions");
    out_at = {p.at("csv").get<uint64_t>(), p.at("json").get<uint64_t>(), p.at("tsv").get<uint64_t>()};
    report_at = {p.at("html").get<uint64_t>(), p.at("md").get<uint64_t>()};
  }
  summary.resumed = resumed.size();
  for (const auto& r : resumed) {
    ++summary.files;
    summary.events += r.events.size();
    if (!r.ok()) ++summary.failed;
  }
  if (finished) {  // nothing left to do: the finished run's outputs stand as they are
    summary.wall_s = since(start);
    return summary;
  }
  const bool resuming = kept.size() > 1;
  auto impl = std::make_unique<RunAccess::Impl>(o.out_dir, effective, files.size(), o.report,
                                                resuming ? &out_at : nullptr, resuming ? &report_at : nullptr,
                                                kept_paths);
  if (impl->report)
    for (const auto& r : resumed) impl->report->replay(r);
  resumed.clear();
  progress.open(kept);

  // Detection: `workers` threads take files in order; results are committed in input order
  // from this thread, at most `window` files ahead of the last committed one.
  const size_t first = kept.size() - 1;
  const size_t window = workers * 2;
  std::vector<std::optional<FileResult>> slots(window);
  std::mutex m;
  std::condition_variable cv;
  size_t next = first, committed = first;
  bool stop = false;
  auto detect_one = [&](size_t i) {
    if (auto bad = failed_inputs.find(i); bad != failed_inputs.end()) {
      FileResult r;
      r.path = files[i];
      r.error = bad->second;
      return r;
    }
    FileResult r = det.detect_file(files[i]);
    try {
      if (o.naive && r.ok())
        r.events = detect::naive_events(r.scores, det.config().events.threshold_on, r.info.duration_s);
      review_result(r, effective.events);
    } catch (const std::exception& e) {  // a bad file is a failed file, on a worker thread too
      r = FileResult{};
      r.path = files[i];
      r.error = files[i] + ": " + e.what();
    }
    return r;
  };
  auto work = [&] {
    model::Network::prepare_thread();
    for (;;) {
      size_t i;
      {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return stop || next >= files.size() || next < committed + window; });
        if (stop || next >= files.size()) return;
        i = next++;
      }
      FileResult r = detect_one(i);  // never throws for a bad file
      std::lock_guard lock(m);
      slots[i % window] = std::move(r);
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  if (workers > 1)
    for (size_t w = 0; w < workers; ++w) pool.emplace_back(work);
  auto stop_pool = [&] {
    {
      std::lock_guard lock(m);
      stop = true;
      cv.notify_all();
    }
    for (auto& t : pool) t.join();
    pool.clear();
  };

  double audio_s = 0;
  try {
    for (size_t i = first; i < files.size(); ++i) {
      FileResult r;
      if (workers > 1) {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return slots[i % window].has_value(); });
        r = std::move(*slots[i % window]);
        slots[i % window].reset();
      } else {
        r = detect_one(i);
      }
      if (o.score_tables && r.ok()) write_scores(o.out_dir, r);
      impl->add(r);
      json line = {{"n", i + 1}, {"path", files[i]}, {"result", light_json(r)}};
      const auto op = impl->outputs.positions();
      const auto rp = impl->report ? impl->report->positions() : report::ReportPositions{};
      line["positions"] = {{"csv", op.csv}, {"json", op.json}, {"tsv", op.tsv}, {"html", rp.html}, {"md", rp.md}};
      progress.append(line);
      // Freed memory stays resident (earmark::keep_freed_memory, and the fragments between
      // the report's long-lived rows): give it back every few hundred files.
      if ((i + 1) % util::kReleaseEveryFiles == 0) util::release_free_memory();
      {
        std::lock_guard lock(m);
        committed = i + 1;
        cv.notify_all();
      }
      ++summary.files;
      summary.events += r.events.size();
      audio_s += r.info.duration_s;
      if (!r.ok()) ++summary.failed;
      if (o.progress) {
        RunProgress p;
        p.done = i + 1;
        p.total = files.size();
        p.result = &r;
        p.audio_s = audio_s;
        p.wall_s = since(start);
        o.progress(p);
      }
    }
  } catch (...) {
    stop_pool();
    throw;
  }
  stop_pool();

  RunMetadata meta = describe_run(det, o.inputs);
  meta.config_yaml = config_yaml;
  meta.started_at = started_at;
  meta.wall_s = since(start);
  summary.written = impl->finish(meta);
  progress.append(json{{"finished", true}});
  summary.audio_s = audio_s;
  summary.wall_s = since(start);
  return summary;
}

// ---------------------------------------------------------------- earmark report

size_t report_run(const std::string& run_dir, const std::string& out_dir, const ReportOptions& options) {
  const fs::path dir(run_dir);
  const fs::path events = dir / "events.json";
  std::error_code ec;
  if (!fs::exists(events, ec))
    throw Error(events.string() +
                ": cannot open; give the output folder of 'earmark detect' run with the json format (the default)");
  // Bounded: a FIFO or device named events.json is refused, not read forever.
  std::istringstream f(util::read_file_bounded(events.string(), util::kMaxResultsBytes, "events.json"));
  const auto results = report::read_json(f, events.string());

  report::RunInfo info;
  const fs::path run_json = dir / "run.json";
  if (fs::exists(run_json)) info = report::read_run_info(run_json.string());
  if (info.inputs.empty())
    for (const auto& r : results) info.inputs.push_back(r.path);
  // The run's own thresholds judge the review; a run that did not record them gets none.
  std::optional<Config> recorded;
  if (!info.config_yaml.empty()) recorded = Config::from_yaml_text(info.config_yaml, run_json.string() + " config_yaml");
  const auto rc = report_config(options, recorded ? &recorded->events : nullptr);
  const std::string out = out_dir.empty() ? run_dir : out_dir;
  report::ReportStream report(out, results.size(), rc);
  for (const auto& r : results) report.add(r);
  report.finish(info);
  return results.size();
}

}  // namespace earmark
