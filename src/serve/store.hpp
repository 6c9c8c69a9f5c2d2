// serve/store: the shared folder (a volume in a cluster) where uploads, per-file results and
// reports of jobs live. Every role reads and writes it; nothing else holds job state, so a
// job's state is derived from which files exist (see docs/architecture.md):
//
//   <root>/jobs/<id>/job.json               written once by the gateway (files, options)
//   <root>/jobs/<id>/input/<n>-<name>       the uploaded audio, n = file index from 0
//   <root>/jobs/<id>/started/<n>            a worker took file n (holds the worker's name)
//   <root>/jobs/<id>/results/<n>.json       file n's result (events.json shape, one file, with
//                                           frame scores and spectrogram); replaced, never
//                                           appended, so a retried message leaves one result
//   <root>/jobs/<id>/out/                   events.csv/json/tsv, labels, report.html/md (reporter)
//   <root>/jobs/<id>/done.json              {"state": "done"|"failed", ...}: the job is over
//
// Every file is written to a temporary name and renamed into place, so readers on other
// processes (or machines sharing the volume) never see half a file.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "earmark/earmark.hpp"

namespace earmark::serve {

struct JobFile {
  int index = 0;
  std::string name;    // sanitised upload name
  std::string stored;  // path relative to the job folder (input/<n>-<name>)
  size_t bytes = 0;
};

struct Job {
  std::string id;
  std::string created_at;  // ISO 8601 UTC
  bool report = true;      // false for synchronous /v1/detect jobs
  std::vector<JobFile> files;
};

enum class JobState { queued, running, reporting, done, failed };
const char* to_string(JobState s);

struct Upload {
  std::string name;     // sanitised
  std::string content;  // bytes
};

class Store {
 public:
  // Creates <root>/jobs if needed; throws earmark::Error if the folder cannot be made.
  explicit Store(std::string root);
  const std::string& root() const { return root_; }
  bool writable() const;

  // New job with a fresh random id; writes the uploads and job.json.
  Job create_job(const std::vector<Upload>& uploads, bool report);
  std::optional<Job> read_job(const std::string& id) const;
  std::vector<std::string> list_jobs() const;
  std::string job_dir(const std::string& id) const;

  void mark_started(const std::string& id, int index, const std::string& worker);
  bool started(const std::string& id, int index) const;
  void write_result(const std::string& id, int index, const FileResult& r);
  bool has_result(const std::string& id, int index) const;
  // The stored result (with frame scores when written with them); nullopt if absent/unreadable.
  std::optional<FileResult> read_result(const std::string& id, int index) const;
  std::string result_path(const std::string& id, int index) const;
  size_t result_count(const Job& job) const;

  void write_done(const std::string& id, JobState state, const std::string& error = {});
  JobState state(const Job& job) const;
  // {"id", "state", "created_at", "progress": {"files", "done", "fraction"}, "files": [...],
  //  "error"?, "links"?}: the body of GET /v1/jobs/{id}.
  nlohmann::json status(const Job& job) const;

  // Output file of the job (out/<name>) if it exists and `name` is a plain file name.
  std::optional<std::string> output_path(const std::string& id, const std::string& name) const;

 private:
  std::string root_;
};

// A job id is 16 lower-case hex digits.
bool valid_job_id(const std::string& id);
// Upload names: the base name only; characters outside [A-Za-z0-9._-] become '_', at most 100
// characters, never starting with '.'; empty -> "upload". Throws earmark::Error for a name that
// is a path (has '/' or '\\', or is '.' / '..'): callers answer 400 bad_filename.
std::string sanitise_upload_name(const std::string& name);
// Writes `content` to `path` through a temporary file and rename (atomic on one filesystem).
void write_file_atomic(const std::string& path, const std::string& content);
std::string utc_now_iso();

}  // namespace earmark::serve
