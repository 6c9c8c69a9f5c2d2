#include "serve/server.hpp"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "decode/decoder.hpp"
#include "detect/calibration.hpp"
#include "earmark/earmark.hpp"
#include "earmark/run.hpp"
#include "model/labels.hpp"
#include "model/registry.hpp"
#include "report/writers.hpp"
#include "serve/http_front.hpp"
#include "serve/queue.hpp"
#include "serve/store.hpp"
#include "util/memory.hpp"
#include "util/sha256.hpp"
#include "util/time.hpp"

namespace earmark::serve {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// The pause between two looks at the store while a request waits for a job: `first`
// throughout on a folder; on a bucket, where each look is a request, growing by half each
// time up to 250 ms, so that many waiting clients do not keep the S3 server busy.
class StorePoll {
 public:
  StorePoll(const Store& store, std::chrono::milliseconds first)
      : every_(first), slowest_(store.blobs().remote() ? std::max(first, std::chrono::milliseconds(250)) : first) {}
  void wait(Clock::time_point until) {
    const auto left = std::chrono::duration_cast<Clock::duration>(until - Clock::now());
    if (left > Clock::duration::zero()) std::this_thread::sleep_for(std::min<Clock::duration>(every_, left));
    every_ = std::min(every_ * 3 / 2, slowest_);
  }

 private:
  std::chrono::milliseconds every_, slowest_;
};

// An answer other than 2xx, with a stable machine-readable code.
struct ApiError {
  ApiError(int s, std::string c, std::string m, int retry = 0, std::string j = {})
      : status(s), code(std::move(c)), message(std::move(m)), retry_after(retry), job(std::move(j)) {}
  int status;
  std::string code;
  std::string message;
  int retry_after;
  std::string job;
};

std::string error_body(const std::string& code, const std::string& message, const std::string& job = {}) {
  json e = {{"code", code}, {"message", message}};
  if (!job.empty()) e["job"] = job;
  return json{{"error", e}}.dump() + "\n";
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// What the service sends back is typed from an allowlist, never from what an upload claims to
// be: uploads are served as one of a few audio types (by their extension) or as
// application/octet-stream, so a file named evil.html that carries HTML is never text/html.
std::string audio_content_type(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (ext == ".wav") return "audio/wav";
  if (ext == ".flac") return "audio/flac";
  if (ext == ".ogg" || ext == ".oga" || ext == ".opus") return "audio/ogg";
  if (ext == ".mp3") return "audio/mpeg";
  if (ext == ".m4a" || ext == ".aac") return "audio/mp4";
  if (ext == ".webm") return "audio/webm";
  return "application/octet-stream";
}

// The reporter's outputs (events.csv/json/tsv, labels, report.html/md, report/*.png).
std::string output_content_type(const std::string& name) {
  const std::string ext = fs::path(name).extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".csv") return "text/csv; charset=utf-8";
  if (ext == ".md") return "text/markdown; charset=utf-8";
  if (ext == ".txt" || ext == ".tsv") return "text/plain; charset=utf-8";
  if (ext == ".png") return "image/png";
  return "application/octet-stream";
}

// "attachment" with the name quoted safely (names are [A-Za-z0-9._-] already; anything else
// becomes '_').
std::string attachment(const std::string& name) {
  std::string safe;
  for (unsigned char c : fs::path(name).filename().string())
    safe += (std::isalnum(c) || c == '.' || c == '-' || c == '_') ? char(c) : '_';
  return "attachment; filename=\"" + (safe.empty() ? std::string("download") : safe) + "\"";
}

// Content-Security-Policy of every answer: nothing may run, load or frame it. The web page
// and the report get their own (below).
constexpr const char* kCspNone = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
// The web page: its own script and style sheet, the API (fetch), the uploads it plays, the
// canvas it draws; no inline script or style.
constexpr const char* kCspPage =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
// The report (inline style sheet, pictures as data: URIs): no script at all, sandboxed.
constexpr const char* kCspReport =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'; sandbox";

void set_csp(httplib::Response& res, const char* policy) {
  res.headers.erase("Content-Security-Policy");
  res.set_header("Content-Security-Policy", policy);
}

// Route pattern of a path, for metric labels (bounded set).
std::string route_of(const std::string& method, const std::string& path) {
  if (path == "/" || path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/v1/labels" ||
      path == "/v1/detect" || path == "/v1/jobs")
    return path;
  if (path.rfind("/demo/", 0) == 0) return "/demo/{name}";
  if (path.rfind("/v1/jobs/", 0) == 0) {
    const std::string rest = path.substr(9);
    const auto slash = rest.find('/');
    if (slash == std::string::npos) return "/v1/jobs/{id}";
    const std::string tail = rest.substr(slash + 1);
    for (const char* t : {"report", "files", "results", "audio"})
      if (tail == t || tail.rfind(std::string(t) + "/", 0) == 0)
        return std::string("/v1/jobs/{id}/") + t + (tail == t ? "" : "/{name}");
  }
  return "other";
}

std::string hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "host";
  return buf;
}

thread_local Clock::time_point t_request_start;

// Keeps a message's lease alive while a long task runs.
class LeaseKeeper {
 public:
  LeaseKeeper(Queue& q, const Message& m, std::string consumer, std::chrono::milliseconds every)
      : thread_([this, &q, m, consumer, every] {
          std::unique_lock lock(m_);
          while (!cv_.wait_for(lock, every, [this] { return done_; })) {
            lock.unlock();
            try {
              q.extend(m, consumer);
            } catch (const Error&) {
              // The queue is unreachable: the lease may lapse and another worker may redo the
              // file; results are idempotent, so that only costs time.
            }
            lock.lock();
          }
        }) {}
  ~LeaseKeeper() {
    {
      std::lock_guard lock(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

// ------------------------------------------------------------------------- config

void ServeConfig::resolve() {
  auto env = [](const char* n) -> std::string {
    const char* v = std::getenv(n);
    return v ? v : "";
  };
  if (store.empty()) store = env("EARMARK_STORE");
  if (store.empty()) store = "earmark-store";
  if (queue.empty()) queue = env("EARMARK_QUEUE");
  if (queue.empty()) queue = "memory";
  if (models_dir.empty()) models_dir = env("EARMARK_MODELS");
  if (scratch.empty()) scratch = env("EARMARK_SCRATCH");
  if (scratch.empty()) scratch = (fs::temp_directory_path() / "earmark-scratch").string();
  if (workers <= 0) workers = int(std::max(1u, std::thread::hardware_concurrency() / 2));
  if (max_inflight <= 0) max_inflight = std::max(1, http_threads - 4);
}

void ServeConfig::validate() const {
  static const std::set<std::string> roles = {"all", "gateway", "worker", "reporter"};
  if (!roles.count(role)) throw Error("--role '" + role + "': use all, gateway, worker or reporter");
  if (port < 0 || port > 65535) throw Error("--port " + std::to_string(port) + ": use 0-65535");
  if (!(max_upload_mb > 0)) throw Error("--max-upload-mb must be more than 0");
  if (workers < 1 || workers > 256) throw Error("--workers " + std::to_string(workers) + ": use 1-256");
  if (lease_s < 1) throw Error("lease must be at least 1 s");
  if (http_threads < 2) throw Error("http threads must be at least 2");
  if (!(keep_hours >= 0)) throw Error("--keep-hours must be 0 (keep jobs forever) or more");
  if (reconcile_s < 0) throw Error("--reconcile-s must be 0 (never) or more seconds");
  if (!(head_timeout_s > 0 && head_timeout_s <= 3600)) throw Error("--head-timeout-s must be more than 0 and at most 3600");
  if (!(min_body_kbps >= 0 && min_body_kbps < 1e6)) throw Error("--min-body-kbps must be 0 (no minimum) or more");
  if (max_connections < http_threads) throw Error("--max-connections must be at least --http-threads");
  if (queue != "memory" && !is_redis_url(queue))
    throw Error("--queue '" + queue + "': use memory or redis://HOST:PORT");
  if (queue == "memory" && role != "all")
    throw Error("--role " + role + " needs a shared queue: pass --queue redis://HOST:PORT (or set EARMARK_QUEUE); "
                "the memory queue only works inside one process (--role all)");
}

// ------------------------------------------------------------------------- service

struct Service::Impl {
  ServeConfig cfg;
  Metrics metrics;
  std::unique_ptr<Store> store;
  std::unique_ptr<Queue> queue;
  FrontServer http;
  std::thread http_thread;
  std::vector<std::thread> workers;
  std::thread reporter;
  std::thread pruner;
  std::thread reconciler;
  // Why this process's last read from the queue failed ("" once one succeeds): readiness.
  std::mutex queue_error_m;
  std::string queue_error;
  std::set<std::string> reconciled_over;
  std::vector<std::pair<std::regex, std::string>> routes;  // pattern, method  // jobs the reconciler saw over (never looked at again)
  std::atomic<bool> stopping{false};   // no new work
  std::atomic<bool> workers_stop{false};
  std::atomic<int> workers_ready{0};
  std::atomic<int> workers_busy{0};
  std::atomic<size_t> files_done{0};  // by this process's workers, for release_free_memory
  std::atomic<int> inflight{0};
  std::string model_error;  // why a worker could not load the model
  std::mutex m;
  std::condition_variable cv;
  bool started = false, stopped = false, finished = false;
  int bound_port = 0;
  std::string consumer_prefix;
  Config det_cfg;
  std::vector<LabelInfo> labels;
  std::string labels_error;
  std::string model_name, checkpoint_path, checkpoint_sha;
  // Jobs this gateway accepted and has not yet seen finish (for the jobs-by-state gauge).
  std::mutex jobs_m;
  std::set<std::string> active_jobs;
  std::map<std::string, double> finished_jobs;  // state -> count

  bool has_gateway() const { return cfg.role == "all" || cfg.role == "gateway"; }
  bool has_workers() const { return cfg.role == "all" || cfg.role == "worker"; }
  bool has_reporter() const { return cfg.role == "all" || cfg.role == "reporter"; }
  std::chrono::milliseconds lease() const { return std::chrono::milliseconds(cfg.lease_s * 1000LL); }

  void count_error(const std::string& code) { metrics.counter_add("earmark_errors_total", {{"code", code}}); }

  void log(const std::string& s) {
    static std::mutex lm;
    std::lock_guard lock(lm);
    std::cerr << "earmark serve [" << cfg.role << "]: " << s << "\n";
  }

  // ---------------------------------------------------------------- setup

  void setup_metrics() {
    metrics.describe("earmark_http_requests_total", "counter", "HTTP requests by route, method and status code.");
    metrics.describe("earmark_http_request_duration_seconds", "histogram", "HTTP request latency by route.");
    metrics.describe("earmark_queue_depth", "gauge", "Messages not yet acknowledged, by stream.");
    metrics.describe("earmark_audio_seconds_total", "counter", "Seconds of audio processed by this process's workers.");
    metrics.describe("earmark_files_processed_total", "counter", "Files processed by workers, by result (ok, error).");
    metrics.describe("earmark_errors_total", "counter", "Errors by stable error code.");
    metrics.describe("earmark_jobs", "gauge", "Jobs accepted by this gateway, by state.");
    metrics.describe("earmark_jobs_submitted_total", "counter", "Jobs accepted by this gateway (sync detects included).");
    metrics.describe("earmark_reports_total", "counter", "Reports written by this process's reporter.");
    metrics.describe("earmark_redelivered_total", "counter",
                     "Messages this process took over from a consumer whose lease ran out.");
    metrics.describe("earmark_ready", "gauge", "1 when /readyz would answer 200.");
    metrics.describe("earmark_jobs_pruned_total", "counter", "Finished jobs removed by this gateway after --keep-hours.");
    metrics.describe("earmark_workers_busy", "gauge", "Worker threads busy with a file.");
    metrics.describe("earmark_http_rejected_total", "counter",
                     "Connections answered by the front door without a handler, by reason (head_timeout, "
                     "head_too_large, busy, too_many_connections).");
    metrics.describe("earmark_http_connections", "gauge", "HTTP connections open now.");
    metrics.describe("earmark_requeued_total", "counter",
                     "Messages the reconciler queued again because the queue had lost them.");
    metrics.describe("earmark_up", "gauge", "1 while the process serves.");
    metrics.gauge_set("earmark_up", {{"role", cfg.role}}, 1);
    // Ensure the counters exist from the start (so rate() works from the first scrape).
    metrics.counter_add("earmark_audio_seconds_total", {}, 0);
    metrics.counter_add("earmark_jobs_submitted_total", {}, 0);
    metrics.on_render([this](Metrics& mt) {
      for (const char* s : {kDetectStream, kReportStream}) {
        try {
          if (queue) mt.gauge_set("earmark_queue_depth", {{"stream", s}}, double(queue->depth(s)));
        } catch (const Error&) {
        }
      }
      mt.gauge_set("earmark_ready", {}, ready() ? 1 : 0);
      mt.gauge_set("earmark_workers_busy", {}, workers_busy.load());
      mt.gauge_set("earmark_http_connections", {}, double(http.open_connections()));
      if (has_gateway()) refresh_job_gauge(mt);
    });
  }

  void refresh_job_gauge(Metrics& mt) {
    std::lock_guard lock(jobs_m);
    std::map<std::string, double> now = {{"queued", 0}, {"running", 0}, {"reporting", 0}};
    for (auto it = active_jobs.begin(); it != active_jobs.end();) {
      auto job = store->read_job(*it);
      const JobState st = job ? store->state(*job) : JobState::failed;
      if (st == JobState::done || st == JobState::failed) {
        finished_jobs[to_string(st)] += 1;
        it = active_jobs.erase(it);
      } else {
        now[to_string(st)] += 1;
        ++it;
      }
    }
    for (const char* s : {"done", "failed"}) now[s] = finished_jobs[s];
    for (const auto& [s, v] : now) mt.gauge_set("earmark_jobs", {{"state", s}}, v);
  }

  void load_labels() {
    try {
      ModelConfig mc = det_cfg.model;
      const auto resolved = model::resolve_model(mc);
      labels = model::read_labels(resolved.labels);
      model_name = resolved.name;
      checkpoint_path = resolved.checkpoint;
    } catch (const Error& e) {
      labels_error = e.what();
    }
  }

  std::string consume_problem() {
    std::lock_guard lock(queue_error_m);
    return queue_error;
  }
  bool ready() { return readiness()["ready"].get<bool>(); }

  // Every check read once, so that the verdict, the checks and the queue's error are one
  // snapshot: the consumer thread sets and clears the error at any moment, and reading it
  // twice gave a 503 whose body said the queue was fine.
  json readiness() {
    const std::string problem = consume_problem();
    const bool store_ok = store && store->writable();
    // The queue as this process uses it: it answers, and (for workers and reporters) reading
    // from it works (a group that cannot be made, a stream of the wrong type... turn it red).
    const bool queue_ok = queue && queue->ping() && problem.empty();
    const int loaded = workers_ready.load();
    const bool models_ok = !has_workers() || loaded >= cfg.workers;
    json checks = json::object();
    checks["store"] = store_ok;
    checks["queue"] = queue_ok;
    if (has_workers()) {
      checks["model"] = models_ok;
      checks["workers_loaded"] = loaded;
    }
    const bool is_stopping = stopping;
    json j = {{"ready", !is_stopping && store_ok && queue_ok && models_ok}, {"role", cfg.role}, {"checks", checks}};
    if (!problem.empty()) j["queue_error"] = problem;
    if (is_stopping) j["reason"] = "shutting down";
    if (!model_error.empty()) j["model_error"] = model_error;
    return j;
  }

  // ---------------------------------------------------------------- HTTP helpers

  void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(2) + "\n", "application/json");
  }

  void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    if (e.retry_after > 0) res.set_header("Retry-After", std::to_string(e.retry_after));
    res.set_content(error_body(e.code, e.message, e.job), "application/json");
  }

  // An answer to a request whose body was not read to its end closes the connection (the
  // rest of the body must not be taken for the next request).
  template <class F>
  httplib::Server::HandlerWithContentReader guarded_reader(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      guarded([&](const httplib::Request& rq, httplib::Response& rs) { f(rq, rs, reader); })(req, res);
      if (res.status >= 300) res.set_header("Connection", "close");
    };
  }

  template <class F>
  httplib::Server::Handler guarded(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const Error& e) {  // the store or queue failed under the request (S3 down, disk full, ...)
        count_error("backend_unavailable");
        send_error(res, {503, "backend_unavailable", e.what(), 5});
      } catch (const std::exception& e) {
        send_error(res, {500, "internal", std::string("internal error: ") + e.what()});
      }
    };
  }

  // The uploads of one request, staged in scratch files (removed with this object).
  struct Staged {
    std::vector<Upload> files;
    Staged() = default;
    Staged(const Staged&) = delete;
    Staged& operator=(const Staged&) = delete;
    ~Staged() {
      for (const auto& f : files) {
        std::error_code ec;
        fs::remove(f.path, ec);
      }
    }
  };

  // Reads the uploads of a request as they arrive, straight into scratch files, whatever the
  // framing (Content-Length or chunked): multipart parts with a filename (or named
  // file/files/audio), or a raw body with an audio/* or application/octet-stream content type
  // (name from ?name=). The bytes are counted while they arrive: past --max-upload-mb the
  // reading stops and the answer is 413, so neither memory nor scratch holds more than that.
  void receive_uploads(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                       size_t max_files, Staged& staged) {
    const size_t max_bytes = size_t(cfg.max_upload_mb * 1024 * 1024);
    size_t total = 0;
    std::optional<ApiError> failure;
    std::ofstream out;
    bool in_file = false;
    auto open = [&](const std::string& raw_name) {
      std::string name;
      try {
        name = sanitise_upload_name(raw_name);
      } catch (const Error& e) {
        failure = ApiError{400, "bad_filename", e.what()};
        return false;
      }
      if (out.is_open()) out.close();
      staged.files.push_back({name, scratch_path(name), 0});
      out.open(staged.files.back().path, std::ios::binary | std::ios::trunc);
      if (!out) {
        failure = ApiError{507, "scratch_unavailable", "cannot stage the upload in " + cfg.scratch + "; is it writable and not full?"};
        return false;
      }
      in_file = true;
      return true;
    };
    auto receive = [&](const char* data, size_t n) {
      total += n;
      if (total > max_bytes) {
        failure = ApiError{413, "payload_too_large",
                           "the upload is larger than the limit of " + fmt_mb(cfg.max_upload_mb) +
                               " MB (--max-upload-mb); split the recording or raise the limit"};
        return false;
      }
      if (!in_file) return true;  // a form field that is not a file: counted, not kept
      out.write(data, std::streamsize(n));
      staged.files.back().bytes += n;
      if (!out) {
        failure = ApiError{507, "scratch_unavailable", "cannot stage the upload in " + cfg.scratch + " (disk full?)"};
        return false;
      }
      return true;
    };
    bool ok = true;
    if (req.is_multipart_form_data()) {
      size_t parts = 0;
      ok = reader(
          [&](const httplib::MultipartFormData& part) {
            if (out.is_open()) out.close();
            in_file = false;
            if (++parts > max_files + 16) {
              failure = ApiError{413, "too_many_files", "too many parts in one request; at most " + std::to_string(max_files) + " files"};
              return false;
            }
            if (part.filename.empty() && part.name != "file" && part.name != "files" && part.name != "audio") return true;
            if (staged.files.size() >= max_files) {
              failure = ApiError{413, "too_many_files", "more than " + std::to_string(max_files) + " files in one request"};
              return false;
            }
            return open(part.filename.empty() ? part.name : part.filename);
          },
          receive);
      if (ok && !failure && staged.files.empty())
        failure = ApiError{400, "no_file",
                           "the multipart body has no file part; send the audio as a part named 'file' with a filename"};
    } else {
      const std::string ct = req.get_header_value("Content-Type");
      const std::string base = ct.substr(0, ct.find(';'));
      if (base.empty())
        throw ApiError{415, "unsupported_media_type",
                       "no Content-Type; send multipart/form-data with a 'file' part, or the raw audio with "
                       "Content-Type audio/* or application/octet-stream"};
      if (base.rfind("audio/", 0) != 0 && base != "application/octet-stream" && base != "video/ogg" &&
          base != "video/webm")
        throw ApiError{415, "unsupported_media_type",
                       "Content-Type '" + base + "' is not audio; send multipart/form-data with a 'file' part, or "
                       "the raw audio with Content-Type audio/* or application/octet-stream"};
      if (open(req.has_param("name") ? req.get_param_value("name") : "upload")) ok = reader(receive);
    }
    if (out.is_open()) out.close();
    if (failure) throw *failure;
    if (!ok) {
      if (res.status == 413)  // a Content-Length over the limit: httplib refused before reading
        throw ApiError{413, "payload_too_large",
                       "the upload is larger than the limit of " + fmt_mb(cfg.max_upload_mb) +
                           " MB (--max-upload-mb); split the recording or raise the limit"};
      throw ApiError{400, "incomplete_upload", "the upload ended before its end (connection closed, malformed or too slow)"};
    }
    for (const auto& f : staged.files)
      if (f.bytes == 0)
        throw ApiError{400, "empty_upload", "'" + f.name + "' is empty (0 bytes); send the audio file's contents"};
  }
  static std::string fmt_mb(double mb) {
    std::ostringstream o;
    o << mb;
    return o.str();
  }

  // Checks that each upload decodes, from its scratch copy, before anything goes into the store.
  // Returns the total duration (container estimate) of the files.
  double probe_uploads(const std::vector<Upload>& uploads) {
    double seconds = 0;
    for (const auto& u : uploads) {
      try {
        decode::AudioReader reader(u.path);
        seconds += std::max(0.0, reader.info().duration_s);
      } catch (const Error& e) {
        std::string why = e.what();
        if (why.rfind(u.path, 0) == 0) why = why.substr(u.path.size());
        if (why.rfind(": ", 0) == 0) why = why.substr(2);
        throw ApiError{422, "not_audio", "'" + u.name + "' cannot be decoded as audio: " + why};
      }
    }
    return seconds;
  }

  // A fresh path in the scratch folder (local disk: staged uploads, S3 downloads, reports).
  std::string scratch_path(const std::string& name) {
    static std::atomic<unsigned> n{0};
    return (fs::path(cfg.scratch) / (std::to_string(::getpid()) + "-" + std::to_string(n++) + "-" + name)).string();
  }

  void admit() {
    if (stopping)
      throw ApiError{503, "shutting_down", "the server is shutting down; retry on another instance", 5};
    if (!queue->ping())
      throw ApiError{503, "queue_unavailable", "the job queue (" + queue->describe() + ") does not answer; retry later", 5};
    size_t depth = 0;
    try {
      depth = queue->depth(kDetectStream);
    } catch (const Error&) {
    }
    if (depth >= cfg.max_queue)
      throw ApiError{503, "queue_full", std::to_string(depth) + " files are waiting; retry later", 5};
  }

  struct InflightSlot {
    std::atomic<int>& n;
    explicit InflightSlot(std::atomic<int>& c, int max) : n(c) {
      if (n.fetch_add(1) >= max) {
        n.fetch_sub(1);
        throw ApiError{429, "too_many_requests",
                       "too many uploads in progress (" + std::to_string(max) + "); retry in a moment", 1};
      }
    }
    ~InflightSlot() { n.fetch_sub(1); }
  };

  Job submit(const std::vector<Upload>& uploads, bool report, double max_seconds) {
    const double seconds = probe_uploads(uploads);
    if (max_seconds > 0 && seconds > max_seconds)
      throw ApiError{413, "too_long_for_sync",
                     "the audio lasts " + std::to_string(int(seconds)) + " s; /v1/detect takes up to " +
                         std::to_string(int(max_seconds)) + " s: submit it to /v1/jobs instead"};
    Job job;
    try {
      job = store->create_job(uploads, report);
    } catch (const Error& e) {
      throw ApiError{507, "store_unavailable", e.what()};
    }
    try {
      for (const auto& f : job.files)
        queue->publish(kDetectStream, json{{"v", 1}, {"job", job.id}, {"file", f.index}}.dump());
    } catch (const Error& e) {
      throw ApiError{503, "queue_unavailable", std::string("cannot queue the job: ") + e.what(), 5, job.id};
    }
    metrics.counter_add("earmark_jobs_submitted_total", {});
    {
      std::lock_guard lock(jobs_m);
      active_jobs.insert(job.id);
    }
    return job;
  }

  // Sends an object of the store in pieces as the client takes them (Range requests get just
  // their part): never the whole object in memory, whatever its size. A bucket is read with
  // ranged GETs.
  void serve_object(httplib::Response& res, const std::string& key, size_t size, const std::string& type) {
    if (size == 0) {
      res.set_content("", type);
      return;
    }
    const size_t piece = store->blobs().remote() ? (size_t(8) << 20) : (size_t(256) << 10);
    auto buffer = std::make_shared<std::string>();  // one piece's memory, reused
    res.set_content_provider(size, type, [this, key, piece, buffer](size_t offset, size_t length, httplib::DataSink& sink) {
      try {
        store->blobs().read(key, offset, std::min(length, piece), *buffer);
        if (buffer->empty()) return false;  // the object shrank or went away under us
        return sink.write(buffer->data(), buffer->size());
      } catch (const std::exception& e) {
        log("serving " + key + ": " + e.what());
        return false;
      }
    });
  }

  Job job_or_throw(const std::string& id) {
    if (!valid_job_id(id))
      throw ApiError{400, "bad_job_id", "'" + id + "' is not a job id (16 hex digits, as returned by POST /v1/jobs)"};
    auto job = store->read_job(id);
    if (!job) throw ApiError{404, "job_not_found", "no job " + id + " (it may have been removed)"};
    return *job;
  }

  int file_index_or_throw(const Job& job, const std::string& s) {
    int idx = -1;
    try {
      size_t used = 0;
      idx = std::stoi(s, &used);
      if (used != s.size()) idx = -1;
    } catch (const std::exception&) {
    }
    if (idx < 0 || idx >= int(job.files.size()))
      throw ApiError{404, "file_not_found", "job " + job.id + " has no file number '" + s + "' (0.." +
                                                std::to_string(int(job.files.size()) - 1) + ")"};
    return idx;
  }

  // ---------------------------------------------------------------- routes

  void setup_http() {
    const size_t max_bytes = size_t(cfg.max_upload_mb * 1024 * 1024);
    http.set_payload_max_length(max_bytes);
    http.set_read_timeout(cfg.read_timeout_s, 0);
    http.set_write_timeout(cfg.read_timeout_s, 0);
    http.set_keep_alive_timeout(5);
    // Every answer, errors included: no MIME sniffing, nothing runs or frames it.
    http.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                              {"Content-Security-Policy", kCspNone},
                              {"Referrer-Policy", "no-referrer"}});
    FrontLimits limits;
    limits.threads = cfg.http_threads;
    limits.head_timeout_s = cfg.head_timeout_s;
    limits.min_body_bytes_s = cfg.min_body_kbps * 1024;
    limits.io_timeout_s = cfg.read_timeout_s;
    limits.max_connections = size_t(cfg.max_connections);
    http.set_limits(limits);
    http.on_reject([this](const std::string& reason) {
      metrics.counter_add("earmark_http_rejected_total", {{"reason", reason}});
    });

    http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      t_request_start = Clock::now();
      // A body framed two ways (two different lengths, or a length and chunks) is how requests
      // are smuggled past proxies: refused, and the connection closed.
      const size_t lengths = req.get_header_value_count("Content-Length");
      bool differ = false;
      for (size_t i = 1; i < lengths; ++i)
        differ |= req.get_header_value("Content-Length", i) != req.get_header_value("Content-Length", 0);
      if (differ || (lengths > 0 && req.has_header("Transfer-Encoding"))) {
        res.status = 400;
        res.set_header("Connection", "close");
        res.set_content(error_body("bad_request", differ ? "the request has two different Content-Length headers"
                                                         : "the request has both Content-Length and Transfer-Encoding"),
                        "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_request_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const std::string route = route_of(req.method, req.path);
      metrics.counter_add("earmark_http_requests_total",
                          {{"route", route}, {"method", req.method}, {"code", std::to_string(res.status)}});
      if (t_request_start != Clock::time_point{}) {
        metrics.observe("earmark_http_request_duration_seconds", {{"route", route}},
                        std::chrono::duration<double>(Clock::now() - t_request_start).count());
        t_request_start = {};
      }
      if (res.status >= 400) {
        std::string code = "http_" + std::to_string(res.status);
        try {
          code = json::parse(res.body).at("error").at("code").get<std::string>();
        } catch (const std::exception&) {
        }
        count_error(code);
      }
    });
    http.set_error_handler([this, max_bytes](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // our own JSON error
      std::string code = "http_" + std::to_string(res.status), msg = "request failed with HTTP status " + std::to_string(res.status);
      if (res.status == 404) {
        // A path that exists for other methods: 405 with the ones it takes.
        std::string allow;
        for (const auto& [pattern, method] : routes)
          if (std::regex_match(req.path, pattern) && allow.find(method) == std::string::npos)
            allow += (allow.empty() ? "" : ", ") + method + (method == "GET" ? ", HEAD" : "");
        if (!allow.empty()) {
          res.status = 405;
          res.set_header("Allow", allow);
        } else {
          code = "not_found", msg = "no such endpoint: " + req.method + " " + req.path + " (see /docs/openapi.yaml)";
        }
      }
      if (res.status == 405) code = "method_not_allowed", msg = req.method + " is not allowed on " + req.path;
      if (res.status == 413)
        code = "payload_too_large",
        msg = "the upload is larger than the limit of " + std::to_string(max_bytes / (1024 * 1024)) +
              " MB (--max-upload-mb); split the recording or raise the limit";
      if (res.status == 400) code = "bad_request", msg = "malformed HTTP request";
      res.set_content(error_body(code, msg), "application/json");
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      res.status = 500;
      res.set_content(error_body("internal", "internal error: " + what), "application/json");
    });

    // Every route, for the Allow header of a 405.
    const auto get = [this](const std::string& pattern, httplib::Server::Handler h) {
      routes.emplace_back(std::regex(pattern), "GET");
      http.Get(pattern, std::move(h));
    };
    const auto post = [this](const std::string& pattern, httplib::Server::HandlerWithContentReader h) {
      routes.emplace_back(std::regex(pattern), "POST");
      http.Post(pattern, std::move(h));
    };
    get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, {{"status", "ok"}, {"role", cfg.role}, {"version", version()}});
    });
    get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      const json r = readiness();
      send_json(res, r["ready"].get<bool>() ? 200 : 503, r);
      if (res.status == 503) res.set_header("Retry-After", "5");
    });
    get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    if (!has_gateway()) return;

    get("/", [](const httplib::Request&, httplib::Response& res) {
      set_csp(res, kCspPage);
      res.set_content(web_page(), "text/html; charset=utf-8");
    });
    get("/app.js", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(web_script(), "text/javascript; charset=utf-8");
    });
    get("/app.css", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(web_style(), "text/css; charset=utf-8");
    });
    if (!cfg.demo_dir.empty()) {
      get(R"(/demo/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
                 const std::string name = req.matches[1];
                 const fs::path p = fs::path(cfg.demo_dir) / name;
                 std::error_code ec;
                 if (name.front() == '.' || !fs::is_regular_file(p, ec))
                   throw ApiError{404, "file_not_found", "no demo file '" + name + "'"};
                 res.set_content(slurp(p.string()), audio_content_type(name));
               }));
    }
    get("/v1/labels", guarded([this](const httplib::Request&, httplib::Response& res) {
               if (labels.empty()) throw ApiError{503, "model_unavailable", "labels not available: " + labels_error, 30};
               json l = json::array();
               for (const auto& x : labels) l.push_back({{"index", x.index}, {"mid", x.mid}, {"name", x.name}});
               send_json(res, 200, {{"model", model_name}, {"count", labels.size()}, {"labels", l}});
             }));
    post("/v1/detect", guarded_reader([this](const httplib::Request& req, httplib::Response& res,
                                                  const httplib::ContentReader& reader) {
                InflightSlot slot(inflight, cfg.max_inflight);
                admit();
                Staged staged;
                receive_uploads(req, res, reader, 1, staged);
                const Job job = submit(staged.files, false, cfg.max_sync_audio_s);
                const auto deadline = Clock::now() + std::chrono::seconds(cfg.sync_timeout_s);
                StorePoll poll(*store, std::chrono::milliseconds(20));
                while (!store->has_result(job.id, 0)) {
                  if (Clock::now() > deadline)
                    throw ApiError{504, "detect_timeout",
                                   "no result within " + std::to_string(cfg.sync_timeout_s) +
                                       " s; the file stays queued: poll GET /v1/jobs/" + job.id,
                                   0, job.id};
                  poll.wait(deadline);
                }
                auto r = store->read_result(job.id, 0);
                if (!r) throw ApiError{500, "internal", "the result of job " + job.id + " cannot be read", 0, job.id};
                if (!r->ok()) throw ApiError{422, "processing_failed", r->error, 0, job.id};
                const bool scores = req.has_param("frame_scores") && req.get_param_value("frame_scores") != "0";
                if (!scores) {
                  r->scores = FrameScores{};
                  r->spectrogram = Spectrogram{};
                }
                std::ostringstream s;
                report::write_json(s, {*r}, scores);
                res.status = 200;
                res.set_header("X-Earmark-Job", job.id);
                res.set_content(s.str(), "application/json");
              }));
    post("/v1/jobs", guarded_reader([this](const httplib::Request& req, httplib::Response& res,
                                                const httplib::ContentReader& reader) {
                InflightSlot slot(inflight, cfg.max_inflight);
                admit();
                Staged staged;
                receive_uploads(req, res, reader, size_t(cfg.max_files), staged);
                const Job job = submit(staged.files, true, 0);
                res.set_header("Location", "/v1/jobs/" + job.id);
                send_json(res, 202, store->status(job));
              }));
    get(R"(/v1/jobs/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
               const Job job = job_or_throw(req.matches[1]);
               // ?wait=S: long poll; answer as soon as the job is over, or after S seconds (max 30).
               double wait_s = 0;
               if (req.has_param("wait")) {
                 try {
                   wait_s = std::clamp(std::stod(req.get_param_value("wait")), 0.0, 30.0);
                 } catch (const std::exception&) {
                   throw ApiError{400, "bad_parameter", "wait must be a number of seconds (0-30)"};
                 }
               }
               const auto until =
                   Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_s));
               StorePoll poll(*store, std::chrono::milliseconds(50));
               while (Clock::now() < until && !stopping && !store->over(job)) poll.wait(until);
               send_json(res, 200, store->status(job));
             }));
    get(R"(/v1/jobs/([^/]+)/report)", guarded([this](const httplib::Request& req, httplib::Response& res) {
               const Job job = job_or_throw(req.matches[1]);
               const std::string key = *store->output_key(job.id, "report.html");
               const auto size = store->blobs().size(key);
               if (!size) {
                 const JobState st = store->state(job);
                 throw ApiError{409, "not_ready",
                                std::string("job ") + job.id + " is " + to_string(st) +
                                    (job.report ? "; the report exists once it is done" : "; it was a /v1/detect job, which has no report"),
                                2, job.id};
               }
               set_csp(res, kCspReport);
               serve_object(res, key, *size, "text/html; charset=utf-8");
             }));
    get(R"(/v1/jobs/([^/]+)/files/(.+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
               const Job job = job_or_throw(req.matches[1]);
               const std::string name = req.matches[2];
               if (!valid_output_name(name))
                 throw ApiError{400, "bad_filename", "'" + name + "' is not a plain file name; ask for e.g. events.csv"};
               const std::string key = *store->output_key(job.id, name);
               const auto size = store->blobs().size(key);
               if (!size) {
                 const JobState st = store->state(job);
                 if (st != JobState::done && st != JobState::failed)
                   throw ApiError{409, "not_ready", "job " + job.id + " is " + to_string(st) + "; files exist once it is done", 2, job.id};
                 throw ApiError{404, "file_not_found", "job " + job.id + " has no output file '" + name + "'", 0, job.id};
               }
               if (fs::path(name).extension() == ".html") set_csp(res, kCspReport);
               serve_object(res, key, *size, output_content_type(name));
               res.set_header("Content-Disposition", attachment(name));
             }));
    get(R"(/v1/jobs/([^/]+)/results/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
               const Job job = job_or_throw(req.matches[1]);
               const int idx = file_index_or_throw(job, req.matches[2]);
               const std::string key = store->result_key(job.id, idx);
               const auto size = store->blobs().size(key);
               if (!size)
                 throw ApiError{409, "not_ready", "file " + std::to_string(idx) + " of job " + job.id + " is not processed yet", 1, job.id};
               serve_object(res, key, *size, "application/json");
               res.set_header("Content-Disposition", attachment(std::to_string(idx) + ".json"));
             }));
    get(R"(/v1/jobs/([^/]+)/audio/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
               const Job job = job_or_throw(req.matches[1]);
               const int idx = file_index_or_throw(job, req.matches[2]);
               const std::string key = store->input_key(job, idx);
               const auto size = store->blobs().size(key);
               if (!size) throw ApiError{404, "file_not_found", "the audio of file " + std::to_string(idx) + " of job " + job.id + " is gone"};
               serve_object(res, key, *size, audio_content_type(job.files[size_t(idx)].name));
               res.set_header("Content-Disposition", attachment(job.files[size_t(idx)].name));
             }));
  }

  // ---------------------------------------------------------------- worker

  void worker_loop(int n) {
    const std::string consumer = consumer_prefix + "-w" + std::to_string(n);
    std::unique_ptr<Detector> det;
    try {
      det = std::make_unique<Detector>(det_cfg);
    } catch (const Error& e) {
      {
        std::lock_guard lock(m);
        model_error = e.what();
      }
      log(std::string("cannot load the model: ") + e.what());
      count_error("model_unavailable");
      return;
    }
    ++workers_ready;
    while (!workers_stop) {
      const std::optional<Message> msg = next_message(kDetectStream, consumer);
      if (!msg) continue;
      ++workers_busy;
      try {
        handle_detect(*msg, *det, consumer);
      } catch (const std::exception& e) {
        count_error("worker_failed");
        log(std::string("message ") + msg->id + ": " + e.what());  // not acked: retried after the lease
      }
      --workers_busy;
    }
  }

  void handle_detect(const Message& msg, const Detector& det, const std::string& consumer) {
    std::string id;
    int index = -1;
    try {
      const json j = json::parse(msg.body);
      if (j.value("v", 0) != 1) throw std::runtime_error("unknown message version");
      id = j.at("job").get<std::string>();
      index = j.at("file").get<int>();
    } catch (const std::exception& e) {
      count_error("bad_message");
      log("dropping malformed detect message " + msg.id + ": " + e.what());
      queue->ack(msg);
      return;
    }
    const auto job = store->read_job(id);
    if (!job || index < 0 || index >= int(job->files.size())) {
      log("dropping detect message " + msg.id + ": job " + id + " file " + std::to_string(index) + " not in the store");
      queue->ack(msg);
      return;
    }
    if (msg.deliveries > 1) metrics.counter_add("earmark_redelivered_total", {{"stream", kDetectStream}});
    if (!store->has_result(id, index)) {  // a retried message whose result exists is not redone
      const JobFile& f = job->files[size_t(index)];
      FileResult r;
      if (msg.deliveries > cfg.max_attempts) {
        r.path = f.name;
        r.error = f.name + ": gave up after " + std::to_string(msg.deliveries - 1) +
                  " attempts (the worker processing it stopped each time: crash, out of memory or killed?)";
      } else {
        store->mark_started(id, index, consumer);
        LeaseKeeper keep(*queue, msg, consumer, std::max(std::chrono::milliseconds(200), lease() / 3));
        const Blobs::LocalFile local = store->local_input(*job, index, cfg.scratch);
        r = det.detect_file(local.path);
        r.path = f.name;
        if (r.ok()) {
          review_result(r, det.config().events);
        } else if (auto pos = r.error.find(local.path); pos != std::string::npos) {
          r.error.replace(pos, local.path.size(), f.name);  // errors name the stored path; users know the upload name
        }
      }
      store->write_result(id, index, r);
      metrics.counter_add("earmark_files_processed_total", {{"result", r.ok() ? "ok" : "error"}});
      // As a long `earmark detect` does: freed memory given back every few hundred files, so
      // that a worker's resident size does not creep with the files it has seen.
      if (++files_done % util::kReleaseEveryFiles == 0) util::release_free_memory();
      if (r.ok()) metrics.counter_add("earmark_audio_seconds_total", {}, r.info.duration_s);
      else count_error("file_failed");
    }
    if (store->result_count(*job) == job->files.size()) {
      if (job->report) queue->publish(kReportStream, json{{"v", 1}, {"job", id}}.dump());
      else store->write_done(id, JobState::done);
    }
    queue->ack(msg);
  }

  // ---------------------------------------------------------------- reporter

  // The next message of `stream` for `consumer`, or nothing after a 0.5 s wait. A queue that
  // cannot be reached is counted, logged and retried after a second (nothing is lost: the
  // messages stay in the queue).
  std::optional<Message> next_message(const std::string& stream, const std::string& consumer) {
    try {
      auto m = queue->consume(stream, consumer, std::chrono::milliseconds(500), lease());
      std::lock_guard lock(queue_error_m);
      queue_error.clear();
      return m;
    } catch (const Error& e) {
      count_error("queue_unavailable");
      log(e.what());
      {
        std::lock_guard lock(queue_error_m);
        queue_error = e.what();
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      return std::nullopt;
    }
  }

  void reporter_loop() {
    const std::string consumer = consumer_prefix + "-r";
    while (!workers_stop) {
      const std::optional<Message> msg = next_message(kReportStream, consumer);
      if (!msg) continue;
      try {
        LeaseKeeper keep(*queue, *msg, consumer, std::max(std::chrono::milliseconds(200), lease() / 3));
        handle_report(*msg);
      } catch (const std::exception& e) {
        count_error("report_failed");
        log(std::string("report message ") + msg->id + ": " + e.what());
        if (msg->deliveries >= cfg.max_attempts) {
          try {
            const std::string id = json::parse(msg->body).at("job").get<std::string>();
            if (valid_job_id(id)) store->write_done(id, JobState::failed, std::string("report failed: ") + e.what());
          } catch (const std::exception&) {
          }
          queue->ack(*msg);
        }
      }
    }
  }

  void handle_report(const Message& msg) {
    std::string id;
    try {
      const json j = json::parse(msg.body);
      if (j.value("v", 0) != 1) throw std::runtime_error("unknown message version");
      id = j.at("job").get<std::string>();
    } catch (const std::exception& e) {
      count_error("bad_message");
      log("dropping malformed report message " + msg.id + ": " + e.what());
      queue->ack(msg);
      return;
    }
    const auto job = store->read_job(id);
    if (!job) {
      queue->ack(msg);
      return;
    }
    const JobState st = store->state(*job);
    if (st == JobState::done || st == JobState::failed || st != JobState::reporting) {
      queue->ack(msg);  // done already (a duplicate message), or not complete (a later message comes)
      return;
    }
    // Written to local scratch, then copied into the store (a folder or a bucket).
    const std::string out = scratch_path("report-" + id);
    struct RemoveAll {
      std::string p;
      ~RemoveAll() {
        std::error_code ec;
        fs::remove_all(p, ec);
      }
    } remove_out{out};
    // The Run layer writes the outputs and the report as results are read (one in memory at a
    // time), reviewing them against the thresholds the workers detected with.
    Config run_cfg = det_cfg;
    run_cfg.output = OutputConfig{};
    run_cfg.output.formats = {"csv", "json", "audacity", "tsv"};
    RunWriter writer(out, run_cfg, job->files.size());
    size_t failed = 0;
    for (const auto& f : job->files) {
      auto r = store->read_result(id, f.index);
      if (!r) throw Error("job " + id + ": result of file " + std::to_string(f.index) + " cannot be read");
      r->path = f.name;
      failed += r->ok() ? 0 : 1;
      writer.add(std::move(*r));
    }
    RunMetadata info;
    info.model_name = model_name.empty() ? det_cfg.model.name : model_name;
    info.checkpoint_path = checkpoint_path;
    info.checkpoint_sha256 = checkpoint_sha;
    try {  // the workers' calibration, as the report should name it
      if (const auto cal = detect::select_calibration(det_cfg.events.calibration, checkpoint_sha)) info.calibration = cal->summary();
    } catch (const std::exception& e) {
      info.calibration = std::string("could not be read here: ") + e.what();
    }
    info.config_yaml = det_cfg.to_yaml();
    info.started_at = job->created_at;
    for (const auto& f : job->files) info.inputs.push_back(f.name);
    info.label_count = labels.size();
    writer.finish(info);
    store->put_outputs(id, out);
    metrics.counter_add("earmark_reports_total", {});
    if (failed == job->files.size() && !job->files.empty())
      store->write_done(id, JobState::failed, "no file could be processed; see each file's error");
    else
      store->write_done(id, JobState::done);
    queue->ack(msg);
  }

  // Retention: jobs that ended more than keep_hours ago are removed (every 10 minutes, and once
  // at the start). Several gateways may do it at once: removing twice is harmless.
  void prune_loop() {
    const auto every = std::chrono::minutes(10);
    auto next = Clock::now();
    while (!workers_stop) {
      if (Clock::now() >= next) {
        try {
          const size_t n = store->prune(cfg.keep_hours * 3600.0);
          if (n > 0) {
            log("removed " + std::to_string(n) + " job(s) that ended more than " + fmt_hours(cfg.keep_hours) + " h ago");
            metrics.counter_add("earmark_jobs_pruned_total", {}, double(n));
          }
        } catch (const Error& e) {
          count_error("prune_failed");
          log(std::string("pruning old jobs: ") + e.what());
        }
        next = Clock::now() + every;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  static std::string fmt_hours(double h) {
    std::ostringstream o;
    o << h;
    return o.str();
  }

  // Work the store says is unfinished and the queue no longer holds (Redis restarted empty,
  // failed over, was flushed or evicted) is queued again, so that no job stays queued or
  // running forever. The queue is read before the store: a message missing from it was acked
  // (after its result was written) or lost, so a file without a result whose message is
  // missing was lost. Jobs younger than a few seconds are left alone (the gateway writes
  // job.json before it queues the files). A duplicate is harmless: results are idempotent.
  void reconcile_loop() {
    auto next = Clock::now() + std::chrono::seconds(cfg.reconcile_s);
    while (!workers_stop) {
      if (Clock::now() >= next) {
        try {
          reconcile();
        } catch (const Error& e) {
          count_error("reconcile_failed");
          log(std::string("reconciling the queue with the store: ") + e.what());
        }
        next = Clock::now() + std::chrono::seconds(cfg.reconcile_s);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  size_t reconcile() {
    constexpr size_t kLimit = 1000000;
    std::set<std::pair<std::string, int>> detect_held;
    std::set<std::string> report_held;
    for (const auto& m : queue->contents(kDetectStream, kLimit)) {
      try {
        const json j = json::parse(m.body);
        detect_held.insert({j.at("job").get<std::string>(), j.at("file").get<int>()});
      } catch (const std::exception&) {
      }
    }
    for (const auto& m : queue->contents(kReportStream, kLimit)) {
      try {
        report_held.insert(json::parse(m.body).at("job").get<std::string>());
      } catch (const std::exception&) {
      }
    }
    const double now = double(std::time(nullptr));
    size_t requeued = 0;
    for (const auto& id : store->list_jobs()) {
      if (workers_stop) break;
      if (reconciled_over.count(id)) continue;
      const auto job = store->read_job(id);
      if (!job) continue;
      if (store->over(*job)) {
        reconciled_over.insert(id);
        continue;
      }
      const auto created = util::parse_utc_iso(job->created_at);
      if (!created || now - double(*created) < 5) continue;
      size_t missing = 0, have = 0;
      for (const auto& f : job->files) {
        if (store->has_result(id, f.index)) {
          ++have;
          continue;
        }
        if (detect_held.count({id, f.index})) continue;
        queue->publish(kDetectStream, json{{"v", 1}, {"job", id}, {"file", f.index}}.dump());
        ++missing;
      }
      if (have == job->files.size()) {
        if (!job->report) store->write_done(id, JobState::done);
        else if (!report_held.count(id)) queue->publish(kReportStream, json{{"v", 1}, {"job", id}}.dump()), ++missing;
      }
      if (missing > 0) {
        log("job " + id + ": queued " + std::to_string(missing) + " lost message(s) again (the queue no longer held them)");
        metrics.counter_add("earmark_requeued_total", {}, double(missing));
        requeued += missing;
      }
    }
    return requeued;
  }

  // Memory queue only: jobs left unfinished by an earlier run are queued again.
  void recover() {
    for (const auto& id : store->list_jobs()) {
      auto job = store->read_job(id);
      if (!job) continue;
      const JobState st = store->state(*job);
      if (st == JobState::done || st == JobState::failed) continue;
      size_t queued = 0;
      for (const auto& f : job->files)
        if (!store->has_result(id, f.index))
          queue->publish(kDetectStream, json{{"v", 1}, {"job", id}, {"file", f.index}}.dump()), ++queued;
      if (queued == 0) {
        if (job->report) queue->publish(kReportStream, json{{"v", 1}, {"job", id}}.dump());
        else store->write_done(id, JobState::done);
      }
      std::lock_guard lock(jobs_m);
      active_jobs.insert(id);
    }
  }
};

Service::Service(ServeConfig cfg) : impl_(std::make_unique<Impl>()) {
  cfg.resolve();
  cfg.validate();
  impl_->cfg = std::move(cfg);
}

Service::~Service() { stop(); }

int Service::start() {
  auto& s = *impl_;
  {
    std::lock_guard lock(s.m);
    if (s.started) return s.bound_port;
  }
  s.det_cfg = s.cfg.config_file.empty() ? Config{} : Config::from_file(s.cfg.config_file);
  if (!s.cfg.models_dir.empty()) s.det_cfg.model.models_dir = s.cfg.models_dir;
  if (s.det_cfg.model.threads <= 0) s.det_cfg.model.threads = 1;  // parallelism comes from the workers
  s.det_cfg.validate();
  s.store = std::make_unique<Store>(s.cfg.store);
  {
    std::error_code ec;
    fs::create_directories(s.cfg.scratch, ec);
    if (ec || ::access(s.cfg.scratch.c_str(), W_OK) != 0)
      throw Error(s.cfg.scratch + ": the scratch folder cannot be written; pass --scratch DIR or set EARMARK_SCRATCH");
  }
  s.queue = make_queue(s.cfg.queue);
  s.consumer_prefix = hostname() + "-" + std::to_string(::getpid());
  s.setup_metrics();
  if (s.has_gateway() || s.has_reporter()) s.load_labels();
  if (s.has_reporter() && !s.checkpoint_path.empty()) {
    try {
      s.checkpoint_sha = util::sha256_file(s.checkpoint_path);
    } catch (const std::exception&) {
    }
  }
  s.setup_http();
  const int port = s.cfg.port == 0 ? s.http.bind_to_any_port(s.cfg.host) : s.cfg.port;
  if (s.cfg.port != 0 && !s.http.bind_to_port(s.cfg.host, s.cfg.port))
    throw Error(s.cfg.host + ":" + std::to_string(s.cfg.port) +
                ": cannot listen (port in use or not allowed); pick another --port or --host");
  if (port <= 0) throw Error(s.cfg.host + ": cannot listen on any port");
  s.http.widen_backlog();
  s.bound_port = port;
  if (s.cfg.queue == "memory") s.recover();
  if (s.has_workers())
    for (int i = 0; i < s.cfg.workers; ++i) s.workers.emplace_back([&s, i] { s.worker_loop(i); });
  if (s.has_reporter()) s.reporter = std::thread([&s] { s.reporter_loop(); });
  if (s.has_gateway() && s.cfg.keep_hours > 0) s.pruner = std::thread([&s] { s.prune_loop(); });
  if (s.has_reporter() && s.cfg.reconcile_s > 0) s.reconciler = std::thread([&s] { s.reconcile_loop(); });
  s.http_thread = std::thread([&s] { s.http.listen_after_bind(); });
  {
    std::lock_guard lock(s.m);
    s.started = true;
  }
  s.log("listening on " + s.cfg.host + ":" + std::to_string(port) + ", queue " + s.queue->describe() + ", store " +
        s.store->describe() + (s.has_workers() ? ", " + std::to_string(s.cfg.workers) + " worker(s)" : ""));
  return port;
}

void Service::stop() {
  auto& s = *impl_;
  {
    std::lock_guard lock(s.m);
    if (!s.started || s.stopped) return;
    s.stopped = true;
  }
  s.stopping = true;
  // 1. Stop accepting; in-flight requests (a sync detect waits for its worker) finish first.
  s.http.stop();
  if (s.http_thread.joinable()) s.http_thread.join();
  // 2. Workers finish the file they are on; queued files stay queued (Redis keeps them for
  //    other workers; the memory queue's jobs are picked up from the store at the next start).
  s.workers_stop = true;
  for (auto& t : s.workers) t.join();
  if (s.reporter.joinable()) s.reporter.join();
  if (s.pruner.joinable()) s.pruner.join();
  if (s.reconciler.joinable()) s.reconciler.join();
  s.log("stopped");
  std::lock_guard lock(s.m);
  s.finished = true;
  s.cv.notify_all();
}

void Service::wait() {
  auto& s = *impl_;
  std::unique_lock lock(s.m);
  s.cv.wait(lock, [&] { return s.finished; });
}

bool Service::ready() const { return impl_->ready(); }
int Service::port() const { return impl_->bound_port; }
Metrics& Service::metrics() { return impl_->metrics; }
const ServeConfig& Service::config() const { return impl_->cfg; }

}  // namespace earmark::serve
