#include "serve/store.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "report/writers.hpp"

namespace earmark::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return {};
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string random_id() {
  static thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    return (uint64_t(rd()) << 32) ^ rd() ^ uint64_t(::getpid()) ^
           uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  }());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

}  // namespace

const char* to_string(JobState s) {
  switch (s) {
    case JobState::queued: return "queued";
    case JobState::running: return "running";
    case JobState::reporting: return "reporting";
    case JobState::done: return "done";
    case JobState::failed: return "failed";
  }
  return "unknown";
}

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  char when[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return when;
}

bool valid_job_id(const std::string& id) {
  if (id.size() != 16) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string sanitise_upload_name(const std::string& name) {
  if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos || name == "." || name == "..")
    throw Error("file name '" + name + "' looks like a path; send the file's base name only (e.g. 'clip.wav')");
  std::string out;
  for (unsigned char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-' || c == '_';
    out += ok ? char(c) : '_';
  }
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  if (out.size() > 100) out = out.substr(out.size() - 100);  // keep the extension
  if (out.empty()) out = "upload";
  return out;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(content.data(), std::streamsize(content.size()));
    f.flush();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error(path + ": cannot write (is the store folder writable and not full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(path + ": cannot move into place: " + ec.message());
  }
}

Store::Store(std::string root) : root_(std::move(root)) {
  std::error_code ec;
  fs::create_directories(fs::path(root_) / "jobs", ec);
  if (ec || !fs::is_directory(fs::path(root_) / "jobs"))
    throw Error(root_ + ": cannot create the store folder (" + ec.message() +
                "); pass a writable --store DIR or set EARMARK_STORE");
}

bool Store::writable() const { return ::access((fs::path(root_) / "jobs").c_str(), W_OK) == 0; }

std::string Store::job_dir(const std::string& id) const { return (fs::path(root_) / "jobs" / id).string(); }

Job Store::create_job(const std::vector<Upload>& uploads, bool report) {
  Job job;
  job.id = random_id();
  job.created_at = utc_now_iso();
  job.report = report;
  const fs::path dir = job_dir(job.id);
  std::error_code ec;
  fs::create_directories(dir / "input", ec);
  fs::create_directories(dir / "started", ec);
  fs::create_directories(dir / "results", ec);
  if (ec) throw Error(dir.string() + ": cannot create the job folder: " + ec.message());
  json files = json::array();
  for (size_t i = 0; i < uploads.size(); ++i) {
    JobFile f;
    f.index = int(i);
    f.name = uploads[i].name;
    f.stored = "input/" + std::to_string(i) + "-" + f.name;
    f.bytes = uploads[i].content.size();
    write_file_atomic((dir / f.stored).string(), uploads[i].content);
    files.push_back({{"index", f.index}, {"name", f.name}, {"stored", f.stored}, {"bytes", f.bytes}});
    job.files.push_back(std::move(f));
  }
  const json j = {{"v", 1}, {"id", job.id}, {"created_at", job.created_at}, {"report", report}, {"files", files}};
  write_file_atomic((dir / "job.json").string(), j.dump(2) + "\n");
  return job;
}

std::optional<Job> Store::read_job(const std::string& id) const {
  if (!valid_job_id(id)) return std::nullopt;
  const std::string text = slurp(fs::path(job_dir(id)) / "job.json");
  if (text.empty()) return std::nullopt;
  try {
    const json j = json::parse(text);
    Job job;
    job.id = j.at("id").get<std::string>();
    job.created_at = j.value("created_at", "");
    job.report = j.value("report", true);
    for (const auto& f : j.at("files")) {
      JobFile jf;
      jf.index = f.at("index").get<int>();
      jf.name = f.at("name").get<std::string>();
      jf.stored = f.at("stored").get<std::string>();
      jf.bytes = f.value("bytes", size_t(0));
      job.files.push_back(std::move(jf));
    }
    return job;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::vector<std::string> Store::list_jobs() const {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(root_) / "jobs", ec))
    if (valid_job_id(e.path().filename().string())) ids.push_back(e.path().filename().string());
  std::sort(ids.begin(), ids.end());
  return ids;
}

void Store::mark_started(const std::string& id, int index, const std::string& worker) {
  write_file_atomic((fs::path(job_dir(id)) / "started" / std::to_string(index)).string(), worker + "\n");
}

bool Store::started(const std::string& id, int index) const {
  std::error_code ec;
  return fs::exists(fs::path(job_dir(id)) / "started" / std::to_string(index), ec);
}

std::string Store::result_path(const std::string& id, int index) const {
  return (fs::path(job_dir(id)) / "results" / (std::to_string(index) + ".json")).string();
}

void Store::write_result(const std::string& id, int index, const FileResult& r) {
  std::ostringstream s;
  report::write_json(s, {r}, true);
  write_file_atomic(result_path(id, index), s.str());
}

bool Store::has_result(const std::string& id, int index) const {
  std::error_code ec;
  return fs::exists(result_path(id, index), ec);
}

std::optional<FileResult> Store::read_result(const std::string& id, int index) const {
  std::ifstream f(result_path(id, index), std::ios::binary);
  if (!f) return std::nullopt;
  try {
    auto v = report::read_json(f, result_path(id, index));
    if (v.size() != 1) return std::nullopt;
    return std::move(v[0]);
  } catch (const Error&) {
    return std::nullopt;
  }
}

size_t Store::result_count(const Job& job) const {
  size_t n = 0;
  for (const auto& f : job.files) n += has_result(job.id, f.index) ? 1 : 0;
  return n;
}

void Store::write_done(const std::string& id, JobState state, const std::string& error) {
  json j = {{"v", 1}, {"state", to_string(state)}, {"finished_at", utc_now_iso()}};
  if (!error.empty()) j["error"] = error;
  write_file_atomic((fs::path(job_dir(id)) / "done.json").string(), j.dump() + "\n");
}

JobState Store::state(const Job& job) const {
  const std::string done = slurp(fs::path(job_dir(job.id)) / "done.json");
  if (!done.empty()) {
    try {
      return json::parse(done).value("state", "done") == "failed" ? JobState::failed : JobState::done;
    } catch (const json::exception&) {
      return JobState::failed;
    }
  }
  const size_t results = result_count(job);
  if (results == job.files.size()) return job.report ? JobState::reporting : JobState::done;
  if (results > 0) return JobState::running;
  for (const auto& f : job.files)
    if (started(job.id, f.index)) return JobState::running;
  return JobState::queued;
}

json Store::status(const Job& job) const {
  const JobState st = state(job);
  json files = json::array();
  size_t done = 0;
  for (const auto& f : job.files) {
    json jf = {{"index", f.index}, {"name", f.name}, {"bytes", f.bytes}};
    if (auto r = read_result(job.id, f.index)) {
      ++done;
      jf["state"] = r->ok() ? "done" : "failed";
      if (r->ok()) {
        jf["duration_s"] = r->info.duration_s;
        json ev = json::array();
        for (const auto& e : r->events)
          ev.push_back({{"onset", e.onset}, {"offset", e.offset}, {"label", e.label}, {"confidence", e.confidence}});
        jf["events"] = ev;
        if (!r->warnings.empty()) jf["warnings"] = r->warnings;
      } else {
        jf["error"] = r->error;
      }
    } else {
      jf["state"] = started(job.id, f.index) ? "running" : "queued";
    }
    files.push_back(std::move(jf));
  }
  const size_t total = job.files.size();
  json j = {{"id", job.id},
            {"state", to_string(st)},
            {"created_at", job.created_at},
            {"progress", {{"files", total}, {"done", done}, {"fraction", total ? double(done) / double(total) : 1.0}}},
            {"files", files}};
  if (st == JobState::done || st == JobState::failed) {
    try {
      const json d = json::parse(slurp(fs::path(job_dir(job.id)) / "done.json"));
      j["finished_at"] = d.value("finished_at", "");
      if (d.contains("error")) j["error"] = d["error"];
    } catch (const json::exception&) {
    }
  }
  if (job.report && st == JobState::done) {
    const std::string base = "/v1/jobs/" + job.id;
    json links = {{"report", base + "/report"}};
    json outs = json::object();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(job_dir(job.id)) / "out", ec))
      if (e.is_regular_file(ec)) outs[e.path().filename().string()] = base + "/files/" + e.path().filename().string();
    links["files"] = outs;
    j["links"] = links;
  }
  return j;
}

std::optional<std::string> Store::output_path(const std::string& id, const std::string& name) const {
  if (!valid_job_id(id) || name.empty() || name.find('/') != std::string::npos ||
      name.find('\\') != std::string::npos || name.front() == '.')
    return std::nullopt;
  const fs::path p = fs::path(job_dir(id)) / "out" / name;
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  return p.string();
}

}  // namespace earmark::serve
