// serve/store: where uploads, per-file results and reports of jobs live: a folder (a volume
// shared by the pods in a cluster) or an S3-compatible bucket. Every role reads and writes it;
// nothing else holds job state, so a job's state is derived from which objects exist (see
// docs/architecture.md). Keys, under the folder or the bucket's prefix:
//
//   jobs/<id>/job.json               written once by the gateway, after the inputs (files, options)
//   jobs/<id>/input/<n>-<name>       the uploaded audio, n = file index from 0
//   jobs/<id>/started/<n>            a worker took file n (holds the worker's name)
//   jobs/<id>/summary/<n>.json       file n's state, duration, events, warnings or error (small:
//                                    what a status call reads), written just before the result
//   jobs/<id>/results/<n>.json       file n's result (events.json shape, one file, with frame
//                                    scores and spectrogram); replaced, never appended, so a
//                                    retried message leaves one result
//   jobs/<id>/out/...                events.csv/json/tsv, labels, report.html/md, report/*.png
//   jobs/<id>/done.json              {"state": "done"|"failed", "finished_at"}: the job is over
//
// Every object is written whole: in a folder to a temporary name renamed into place, in S3 by
// one PUT. Readers on other processes or machines never see half an object.
#pragma once

#include <memory>
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
  std::string name;  // sanitised
  std::string path;  // the bytes as received, in a local scratch file
  size_t bytes = 0;
};

// Where the objects live: a folder or a bucket. Keys are relative, '/'-separated.
class Blobs {
 public:
  virtual ~Blobs() = default;
  virtual void put(const std::string& key, const std::string& bytes) = 0;  // whole, replacing
  virtual std::optional<std::string> get(const std::string& key) const = 0;
  virtual bool exists(const std::string& key) const = 0;
  // Size in bytes; nullopt when the key does not exist.
  virtual std::optional<size_t> size(const std::string& key) const = 0;
  // Bytes [offset, offset + length) of an object (fewer at its end) into `into`, whose memory
  // is reused from piece to piece: objects are served in pieces, never read whole into memory.
  virtual void read(const std::string& key, size_t offset, size_t length, std::string& into) const = 0;
  // Stores the local file `path` under `key` (whole, replacing).
  virtual void put_file(const std::string& key, const std::string& path);
  // Keys under `prefix` (recursive), relative to the store.
  virtual std::vector<std::string> list(const std::string& prefix) const = 0;
  // Names of the "folders" right under `prefix` ("jobs/" -> job ids).
  virtual std::vector<std::string> list_folders(const std::string& prefix) const = 0;
  virtual void remove_all(const std::string& prefix) = 0;
  // Throws earmark::Error saying why the store cannot be written (readiness).
  virtual void check_writable() const = 0;
  virtual std::string describe() const = 0;
  // True where a read is a network round trip (a bucket): callers that poll look less often.
  virtual bool remote() const { return false; }
  // A path on this machine to read the object from: the file itself for a folder, else a copy
  // downloaded into `scratch` (removed when the returned object goes).
  struct LocalFile {
    std::string path;
    bool temporary = false;
    LocalFile() = default;
    LocalFile(std::string p, bool t) : path(std::move(p)), temporary(t) {}
    LocalFile(LocalFile&& o) noexcept : path(std::move(o.path)), temporary(o.temporary) { o.temporary = false; }
    LocalFile& operator=(LocalFile&&) = delete;
    ~LocalFile();
  };
  virtual LocalFile local_file(const std::string& key, const std::string& scratch) const;
};

// "s3://bucket/prefix" (S3-compatible; endpoint, region and credentials from the environment,
// see serve/s3.hpp) or a folder path. Throws earmark::Error saying what to fix.
std::unique_ptr<Blobs> open_blobs(const std::string& spec);
struct S3Settings;
std::unique_ptr<Blobs> open_bucket(S3Settings settings);  // settings given whole (tests, tools)

class Store {
 public:
  // Opens the store (see open_blobs); a folder is created if needed.
  explicit Store(const std::string& spec);
  explicit Store(std::unique_ptr<Blobs> blobs);
  const Blobs& blobs() const { return *blobs_; }
  std::string describe() const { return blobs_->describe(); }
  bool writable() const;

  // New job with a fresh random id; writes the uploads, then job.json.
  Job create_job(const std::vector<Upload>& uploads, bool report);
  std::optional<Job> read_job(const std::string& id) const;
  std::vector<std::string> list_jobs() const;
  void remove_job(const std::string& id);

  // Keys of a job's objects, to serve them in pieces (Blobs::size, Blobs::read).
  std::string input_key(const Job& job, int index) const;
  std::string result_key(const std::string& id, int index) const;
  // nullopt for a name that is not a plain relative path (see valid_output_name).
  std::optional<std::string> output_key(const std::string& id, const std::string& name) const;
  // The stored upload's bytes (tools and tests; the service serves it in pieces), or a local
  // file to decode.
  std::optional<std::string> input(const Job& job, int index) const;
  Blobs::LocalFile local_input(const Job& job, int index, const std::string& scratch) const;

  void mark_started(const std::string& id, int index, const std::string& worker);
  bool started(const std::string& id, int index) const;
  std::string started_by(const std::string& id, int index) const;  // "" if not started
  // Writes summary/<n>.json (state, duration, events, warnings or error: what a status call
  // shows), then results/<n>.json (everything, frame scores and spectrogram included).
  void write_result(const std::string& id, int index, const FileResult& r);
  bool has_result(const std::string& id, int index) const;
  // The stored result (with frame scores when written with them); nullopt if absent/unreadable.
  std::optional<FileResult> read_result(const std::string& id, int index) const;
  std::optional<std::string> result_json(const std::string& id, int index) const;
  size_t result_count(const Job& job) const;

  // Copies every file under the local folder `dir` to the job's out/ (the reporter's outputs).
  void put_outputs(const std::string& id, const std::string& dir);
  // Output file of the job (out/<name>, name may be "report/file-0-timeline.png") if it exists
  // and `name` is a plain relative path; nullopt otherwise.
  std::optional<std::string> output(const std::string& id, const std::string& name) const;
  std::vector<std::string> output_names(const std::string& id) const;

  void write_done(const std::string& id, JobState state, const std::string& error = {});
  JobState state(const Job& job) const;
  // done or failed (what state() says), with one read for jobs that have a report.
  bool over(const Job& job) const;
  // {"id", "state", "created_at", "progress": {"files", "done", "fraction"}, "files": [...],
  //  "error"?, "links"?}: the body of GET /v1/jobs/{id}. Read from the small per-file summaries,
  //  never from the full results (a job written before summaries existed gets them once).
  nlohmann::json status(const Job& job) const;
  // Removes jobs that ended (done or failed) more than `max_age_s` ago; returns how many.
  size_t prune(double max_age_s);

 private:
  // done.json's state (done or failed) once the job ended; nullopt before.
  std::optional<JobState> ended(const std::string& id) const;
  std::unique_ptr<Blobs> blobs_;
};

// A job id is 16 lower-case hex digits.
bool valid_job_id(const std::string& id);
// Upload names: the base name only; characters outside [A-Za-z0-9._-] become '_', at most 100
// characters, never starting with '.'; empty -> "upload". Throws earmark::Error for a name that
// is a path (has '/' or '\\', or is '.' / '..'): callers answer 400 bad_filename.
std::string sanitise_upload_name(const std::string& name);
// Job output names: relative paths of [A-Za-z0-9._-] parts, none empty or starting with '.'.
bool valid_output_name(const std::string& name);
// Writes `content` to `path` through a temporary file and rename (atomic on one filesystem).
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace earmark::serve
