#include "serve/store.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "report/writers.hpp"
#include "serve/s3.hpp"
#include "util/time.hpp"

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
  if (out.size() > 100) out = out.substr(out.size() - 100);  // keep the extension; cut first, so the
  // dots the cut may leave in front are stripped below
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
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

// ------------------------------------------------------------------ blobs: a folder

Blobs::LocalFile::~LocalFile() {
  if (temporary && !path.empty()) {
    std::error_code ec;
    fs::remove(path, ec);
  }
}

Blobs::LocalFile Blobs::local_file(const std::string& key, const std::string& scratch) const {
  auto bytes = get(key);
  if (!bytes) throw Error(describe() + ": '" + key + "' is not in the store");
  std::error_code ec;
  fs::create_directories(scratch, ec);
  const std::string path = (fs::path(scratch) / (random_id() + "-" + fs::path(key).filename().string())).string();
  LocalFile f(path, true);
  write_file_atomic(path, *bytes);
  return f;
}

void Blobs::put_file(const std::string& key, const std::string& path) {
  // A bucket takes a PUT of the whole object: the bytes pass through memory once, bounded by
  // the upload limit (--max-upload-mb).
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(path + ": the staged file is gone");
  put(key, slurp(path));
}

namespace {

bool temporary_name(const std::string& name) { return name.find(".tmp-") != std::string::npos; }

class FolderBlobs final : public Blobs {
 public:
  explicit FolderBlobs(std::string root) : root_(std::move(root)) {
    std::error_code ec;
    fs::create_directories(fs::path(root_) / "jobs", ec);
    if (ec || !fs::is_directory(fs::path(root_) / "jobs"))
      throw Error(root_ + ": cannot create the store folder (" + (ec ? ec.message() : std::string("not a folder")) +
                  "); pass a writable --store DIR or set EARMARK_STORE");
  }
  void put(const std::string& key, const std::string& bytes) override {
    const fs::path p = path(key);
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    write_file_atomic(p.string(), bytes);
  }
  std::optional<std::string> get(const std::string& key) const override {
    std::error_code ec;
    if (!fs::is_regular_file(path(key), ec)) return std::nullopt;
    return slurp(path(key));
  }
  bool exists(const std::string& key) const override {
    std::error_code ec;
    return fs::exists(path(key), ec);
  }
  std::optional<size_t> size(const std::string& key) const override {
    std::error_code ec;
    if (!fs::is_regular_file(path(key), ec)) return std::nullopt;
    const auto n = fs::file_size(path(key), ec);
    if (ec) return std::nullopt;
    return size_t(n);
  }
  void read(const std::string& key, size_t offset, size_t length, std::string& into) const override {
    std::FILE* f = std::fopen(path(key).c_str(), "rb");
    if (!f) throw Error(path(key).string() + ": cannot be read (" + std::strerror(errno) + ")");
    into.resize(length);
    size_t got = 0;
    if (::fseeko(f, off_t(offset), SEEK_SET) == 0) got = std::fread(into.data(), 1, length, f);
    std::fclose(f);
    into.resize(got);
  }
  void put_file(const std::string& key, const std::string& from) override {
    const fs::path p = path(key);
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    static std::atomic<unsigned> counter{0};
    const fs::path tmp = p.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(tmp, p, ec);
    if (ec) {
      std::error_code ignore;
      fs::remove(tmp, ignore);
      throw Error(p.string() + ": cannot store the upload (" + ec.message() + "); is the store folder writable and not full?");
    }
  }
  std::vector<std::string> list(const std::string& prefix) const override {
    std::vector<std::string> keys;
    std::error_code ec;
    const fs::path base = path(prefix);
    if (!fs::is_directory(base, ec)) return keys;
    for (auto it = fs::recursive_directory_iterator(base, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file(ec) && !temporary_name(it->path().filename().string()))
        keys.push_back(fs::relative(it->path(), root_, ec).generic_string());
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  std::vector<std::string> list_folders(const std::string& prefix) const override {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(path(prefix), ec))
      if (e.is_directory(ec)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  void remove_all(const std::string& prefix) override {
    std::error_code ec;
    fs::remove_all(path(prefix), ec);
    if (ec) throw Error(path(prefix).string() + ": cannot remove: " + ec.message());
  }
  void check_writable() const override {
    if (::access((fs::path(root_) / "jobs").c_str(), W_OK) != 0)
      throw Error(root_ + "/jobs: not writable by this process (" + std::strerror(errno) + ")");
  }
  std::string describe() const override { return root_; }
  LocalFile local_file(const std::string& key, const std::string&) const override {
    if (!fs::is_regular_file(path(key))) throw Error(describe() + ": '" + key + "' is not in the store");
    return LocalFile(path(key).string(), false);
  }

 private:
  fs::path path(const std::string& key) const { return fs::path(root_) / key; }
  std::string root_;
};

// ------------------------------------------------------------------ blobs: an S3 bucket

class BucketBlobs final : public Blobs {
 public:
  explicit BucketBlobs(S3Settings s) : s3_(std::move(s)) {}
  void put(const std::string& key, const std::string& bytes) override { s3_.put(key, bytes); }
  std::optional<std::string> get(const std::string& key) const override { return s3_.get(key); }
  bool exists(const std::string& key) const override { return s3_.exists(key); }
  std::optional<size_t> size(const std::string& key) const override { return s3_.size(key); }
  void read(const std::string& key, size_t offset, size_t length, std::string& into) const override {
    into = s3_.get_range(key, offset, length);
  }
  std::vector<std::string> list(const std::string& prefix) const override {
    std::vector<std::string> keys;
    for (auto& o : s3_.list(prefix)) keys.push_back(std::move(o.key));
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  std::vector<std::string> list_folders(const std::string& prefix) const override {
    auto names = s3_.list_folders(prefix);
    std::sort(names.begin(), names.end());
    return names;
  }
  void remove_all(const std::string& prefix) override {
    for (const auto& o : s3_.list(prefix)) s3_.remove(o.key);
  }
  void check_writable() const override {
    // Readiness probes call this every few seconds: one listing per 5 s at most.
    std::lock_guard lock(m_);
    const auto now = std::chrono::steady_clock::now();
    if (now - checked_at_ < std::chrono::seconds(5) && checked_error_.empty()) return;
    try {
      s3_.check();
      checked_error_.clear();
    } catch (const Error& e) {
      checked_error_ = e.what();
    }
    checked_at_ = now;
    if (!checked_error_.empty()) throw Error(checked_error_);
  }
  std::string describe() const override { return s3_.settings().describe(); }
  bool remote() const override { return true; }

 private:
  mutable S3Client s3_;  // thread-safe: each request takes a connection of its own
  mutable std::mutex m_;
  mutable std::chrono::steady_clock::time_point checked_at_{};
  mutable std::string checked_error_;
};

std::string job_key(const std::string& id) { return "jobs/" + id + "/"; }

}  // namespace

std::unique_ptr<Blobs> open_blobs(const std::string& spec) {
  if (spec.empty()) throw Error("no store given: pass --store DIR or --store s3://BUCKET/PREFIX (or set EARMARK_STORE)");
  if (is_s3_url(spec)) {
    S3Settings s;
    s.where = parse_s3_url(spec);
    s.resolve_from_environment();
    return open_bucket(std::move(s));
  }
  if (spec.find("://") != std::string::npos)
    throw Error("store '" + spec + "': only folders and s3://BUCKET/PREFIX are supported");
  return std::make_unique<FolderBlobs>(spec);
}

std::unique_ptr<Blobs> open_bucket(S3Settings settings) { return std::make_unique<BucketBlobs>(std::move(settings)); }

// ------------------------------------------------------------------ store

bool valid_output_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name.back() == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    const size_t end = std::min(name.find('/', start), name.size());
    const std::string part = name.substr(start, end - start);
    if (part.empty() || part.front() == '.') return false;
    for (unsigned char c : part)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
            c == '_'))
        return false;
    start = end + 1;
  }
  return true;
}


Store::Store(const std::string& spec) : blobs_(open_blobs(spec)) {}
Store::Store(std::unique_ptr<Blobs> blobs) : blobs_(std::move(blobs)) {}

bool Store::writable() const {
  try {
    blobs_->check_writable();
    return true;
  } catch (const Error&) {
    return false;
  }
}

Job Store::create_job(const std::vector<Upload>& uploads, bool report) {
  Job job;
  job.id = random_id();
  job.created_at = util::utc_now_iso();
  job.report = report;
  const std::string dir = job_key(job.id);
  json files = json::array();
  for (size_t i = 0; i < uploads.size(); ++i) {
    JobFile f;
    f.index = int(i);
    f.name = uploads[i].name;
    f.stored = "input/" + std::to_string(i) + "-" + f.name;
    f.bytes = uploads[i].bytes;
    blobs_->put_file(dir + f.stored, uploads[i].path);
    files.push_back({{"index", f.index}, {"name", f.name}, {"stored", f.stored}, {"bytes", f.bytes}});
    job.files.push_back(std::move(f));
  }
  const json j = {{"v", 1}, {"id", job.id}, {"created_at", job.created_at}, {"report", report}, {"files", files}};
  blobs_->put(dir + "job.json", j.dump(2) + "\n");
  return job;
}

std::optional<Job> Store::read_job(const std::string& id) const {
  if (!valid_job_id(id)) return std::nullopt;
  const auto text = blobs_->get(job_key(id) + "job.json");
  if (!text || text->empty()) return std::nullopt;
  try {
    const json j = json::parse(*text);
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
  for (auto& name : blobs_->list_folders("jobs/"))
    if (valid_job_id(name)) ids.push_back(std::move(name));
  return ids;
}

void Store::remove_job(const std::string& id) {
  if (valid_job_id(id)) blobs_->remove_all(job_key(id));
}

std::optional<std::string> Store::input(const Job& job, int index) const {
  if (index < 0 || index >= int(job.files.size())) return std::nullopt;
  return blobs_->get(job_key(job.id) + job.files[size_t(index)].stored);
}

std::string Store::input_key(const Job& job, int index) const {
  if (index < 0 || index >= int(job.files.size())) throw Error("job " + job.id + " has no file " + std::to_string(index));
  return job_key(job.id) + job.files[size_t(index)].stored;
}

std::string Store::result_key(const std::string& id, int index) const {
  return job_key(id) + "results/" + std::to_string(index) + ".json";
}

std::optional<std::string> Store::output_key(const std::string& id, const std::string& name) const {
  if (!valid_job_id(id) || !valid_output_name(name)) return std::nullopt;
  return job_key(id) + "out/" + name;
}

Blobs::LocalFile Store::local_input(const Job& job, int index, const std::string& scratch) const {
  if (index < 0 || index >= int(job.files.size()))
    throw Error("job " + job.id + " has no file " + std::to_string(index));
  return blobs_->local_file(job_key(job.id) + job.files[size_t(index)].stored, scratch);
}

void Store::mark_started(const std::string& id, int index, const std::string& worker) {
  blobs_->put(job_key(id) + "started/" + std::to_string(index), worker + "\n");
}

bool Store::started(const std::string& id, int index) const {
  return blobs_->exists(job_key(id) + "started/" + std::to_string(index));
}

std::string Store::started_by(const std::string& id, int index) const {
  auto s = blobs_->get(job_key(id) + "started/" + std::to_string(index));
  if (!s) return {};
  while (!s->empty() && (s->back() == '\n' || s->back() == '\r')) s->pop_back();
  return *s;
}

namespace {

// What a status call shows of a file: small whatever the length of the recording.
json summary_of(const FileResult& r) {
  json j = {{"v", 1}, {"state", r.ok() ? "done" : "failed"}};
  if (r.ok()) {
    j["duration_s"] = r.info.duration_s;
    json ev = json::array();
    for (const auto& e : r.events)
      ev.push_back({{"onset", e.onset}, {"offset", e.offset}, {"label", e.label}, {"confidence", e.confidence},
                    {"kind", kind_name(e.kind)}});
    j["events"] = ev;
    if (!r.warnings.empty()) j["warnings"] = r.warnings;
  } else {
    j["error"] = r.error;
  }
  return j;
}

}  // namespace

void Store::write_result(const std::string& id, int index, const FileResult& r) {
  blobs_->put(job_key(id) + "summary/" + std::to_string(index) + ".json", summary_of(r).dump() + "\n");
  std::ostringstream s;
  report::write_json(s, {r}, true);
  blobs_->put(job_key(id) + "results/" + std::to_string(index) + ".json", s.str());
}

bool Store::has_result(const std::string& id, int index) const {
  return blobs_->exists(job_key(id) + "results/" + std::to_string(index) + ".json");
}

std::optional<std::string> Store::result_json(const std::string& id, int index) const {
  return blobs_->get(job_key(id) + "results/" + std::to_string(index) + ".json");
}

std::optional<FileResult> Store::read_result(const std::string& id, int index) const {
  const auto text = result_json(id, index);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  try {
    auto v = report::read_json(in, job_key(id) + "results/" + std::to_string(index) + ".json");
    if (v.size() != 1) return std::nullopt;
    return std::move(v[0]);
  } catch (const Error&) {
    return std::nullopt;
  }
}

size_t Store::result_count(const Job& job) const {
  // One listing instead of one lookup per file (a round trip each in S3).
  const auto keys = blobs_->list(job_key(job.id) + "results/");
  const std::set<std::string> have(keys.begin(), keys.end());
  size_t n = 0;
  for (const auto& f : job.files) n += have.count(job_key(job.id) + "results/" + std::to_string(f.index) + ".json");
  return n;
}

void Store::put_outputs(const std::string& id, const std::string& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string rel = fs::relative(it->path(), dir, ec).generic_string();
    blobs_->put(job_key(id) + "out/" + rel, slurp(it->path()));
  }
  if (ec) throw Error(dir + ": cannot read the report folder: " + ec.message());
}

std::optional<std::string> Store::output(const std::string& id, const std::string& name) const {
  if (!valid_job_id(id) || !valid_output_name(name)) return std::nullopt;
  return blobs_->get(job_key(id) + "out/" + name);
}

std::vector<std::string> Store::output_names(const std::string& id) const {
  std::vector<std::string> names;
  const std::string base = job_key(id) + "out/";
  for (const auto& k : blobs_->list(base)) names.push_back(k.substr(base.size()));
  return names;
}

void Store::write_done(const std::string& id, JobState state, const std::string& error) {
  json j = {{"v", 1}, {"state", to_string(state)}, {"finished_at", util::utc_now_iso()}};
  if (!error.empty()) j["error"] = error;
  blobs_->put(job_key(id) + "done.json", j.dump() + "\n");
}

std::optional<JobState> Store::ended(const std::string& id) const {
  const auto done = blobs_->get(job_key(id) + "done.json");
  if (!done || done->empty()) return std::nullopt;
  try {
    return json::parse(*done).value("state", "done") == "failed" ? JobState::failed : JobState::done;
  } catch (const json::exception&) {
    return JobState::failed;
  }
}

bool Store::over(const Job& job) const {
  return ended(job.id) || (!job.report && result_count(job) == job.files.size());
}

JobState Store::state(const Job& job) const {
  if (const auto e = ended(job.id)) return *e;
  const size_t results = result_count(job);
  if (results == job.files.size()) return job.report ? JobState::reporting : JobState::done;
  if (results > 0) return JobState::running;
  if (!blobs_->list(job_key(job.id) + "started/").empty()) return JobState::running;
  return JobState::queued;
}

json Store::status(const Job& job) const {
  const JobState st = state(job);
  json files = json::array();
  size_t done = 0;
  // One listing each for summaries, results and started markers; one small read per summary.
  auto listed = [&](const std::string& folder) {
    const auto keys = blobs_->list(job_key(job.id) + folder);
    return std::set<std::string>(keys.begin(), keys.end());
  };
  const auto summaries = listed("summary/"), results = listed("results/"), started_set = listed("started/");
  for (const auto& f : job.files) {
    json jf = {{"index", f.index}, {"name", f.name}, {"bytes", f.bytes}};
    const std::string n = std::to_string(f.index);
    std::optional<json> sum;
    if (summaries.count(job_key(job.id) + "summary/" + n + ".json")) {
      try {
        sum = json::parse(blobs_->get(job_key(job.id) + "summary/" + n + ".json").value_or(""));
      } catch (const json::exception&) {
      }
    }
    if (!sum && results.count(job_key(job.id) + "results/" + n + ".json")) {
      // Written before summaries existed: made once from the full result, then kept.
      if (auto r = read_result(job.id, f.index)) {
        sum = summary_of(*r);
        blobs_->put(job_key(job.id) + "summary/" + n + ".json", sum->dump() + "\n");
      }
    }
    if (sum && results.count(job_key(job.id) + "results/" + n + ".json")) {
      ++done;
      for (const char* k : {"state", "duration_s", "events", "warnings", "error"})
        if (sum->contains(k)) jf[k] = (*sum)[k];
    } else {
      jf["state"] = started_set.count(job_key(job.id) + "started/" + n) ? "running" : "queued";
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
      const json d = json::parse(blobs_->get(job_key(job.id) + "done.json").value_or("{}"));
      j["finished_at"] = d.value("finished_at", "");
      if (d.contains("error")) j["error"] = d["error"];
    } catch (const json::exception&) {
    }
  }
  if (job.report && st == JobState::done) {
    const std::string base = "/v1/jobs/" + job.id;
    json links = {{"report", base + "/report"}};
    json outs = json::object();
    for (const auto& name : output_names(job.id)) outs[name] = base + "/files/" + name;
    links["files"] = outs;
    j["links"] = links;
  }
  return j;
}

size_t Store::prune(double max_age_s) {
  const double now = double(std::time(nullptr));
  size_t removed = 0;
  for (const auto& id : list_jobs()) {
    const auto done = blobs_->get(job_key(id) + "done.json");
    if (!done) continue;
    std::optional<std::time_t> finished;
    try {
      finished = util::parse_utc_iso(json::parse(*done).value("finished_at", ""));
    } catch (const json::exception&) {
    }
    if (!finished || now - double(*finished) < max_age_s) continue;
    blobs_->remove_all(job_key(id));
    ++removed;
  }
  return removed;
}
}  // namespace earmark::serve
