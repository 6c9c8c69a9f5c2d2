// earmark/serve.hpp: `earmark serve`, the HTTP API, web page, worker and reporter roles.
//
//   earmark::serve::ServeConfig cfg;  cfg.store = "/var/lib/earmark";  cfg.port = 0;  // any free port
//   earmark::serve::Service svc(cfg);
//   int port = svc.start();   // binds, loads models in the background, starts threads
//   ...                       // serve until
//   svc.stop();               // stop accepting, finish in-flight work, join everything
//
// Roles (docs/architecture.md):
//   all      one process: API + web page, embedded in-memory queue (or Redis), worker threads
//            and a reporter thread. The default for one machine.
//   gateway  API + web page: takes uploads into the store, queues work, answers status.
//   worker   takes files from the detect stream: decode, condition, features, network, events.
//   reporter takes finished jobs from the report stream: CSV/JSON/labels and report.html.
// Every role serves /healthz, /readyz and /metrics on its port.
#pragma once

#include <memory>
#include <string>


namespace earmark::serve {

class Metrics;  // serve/metrics.hpp: the Prometheus counters of /metrics

struct ServeConfig {
  std::string host = "0.0.0.0";
  int port = 8080;                // 0: any free port (start() returns it)
  std::string role = "all";       // all, gateway, worker, reporter
  std::string store;              // folder or s3://BUCKET/PREFIX; empty: $EARMARK_STORE, then ./earmark-store
                                  // (S3 endpoint, region, credentials: see serve/s3.hpp)
  std::string scratch;            // local folder for staged uploads, S3 downloads and reports in the
                                  // making; empty: $EARMARK_SCRATCH, then $TMPDIR/earmark-scratch
  double keep_hours = 168;        // gateway: remove jobs this long after they ended; 0: keep forever
  std::string queue;              // memory or redis://HOST:PORT; empty: $EARMARK_QUEUE, then memory
  int workers = 0;                // worker threads (all/worker); 0: half the cores, at least 1
  std::string models_dir;         // empty: $EARMARK_MODELS (through the model registry)
  std::string config_file;        // detection configuration (YAML/JSON) for workers
  double max_upload_mb = 100;     // per request
  int max_files = 100;            // per job
  int lease_s = 60;               // a worker silent this long loses its message to another
  int max_attempts = 3;           // deliveries of one file before it is marked failed
  int sync_timeout_s = 120;       // POST /v1/detect waits this long, then answers 504 with the job id
  double max_sync_audio_s = 600;  // longer uploads to /v1/detect get 413: use /v1/jobs
  int http_threads = 16;          // requests processed at once (slow clients wait in front, see serve/http_front.hpp)
  int max_inflight = 0;           // uploads processed at once (429 beyond); 0: http_threads - 4
  size_t max_queue = 1000;        // files waiting in the detect stream (503 beyond)
  int read_timeout_s = 30;        // HTTP read/write timeouts (each read or write of a connection)
  double head_timeout_s = 10;     // the whole request head must arrive within this (408 beyond)
  double min_body_kbps = 8;       // an upload must average at least this many kB/s after 10 s
  int max_connections = 1024;     // connections open at once (503 beyond)
  int reconcile_s = 60;           // reporter: every this often, queue again the unfinished work of
                                  // the store that the queue lost (a Redis restarted empty); 0: never
  std::string demo_dir;           // test/demo only: GET /demo/<name> serves audio from here

  // Fills empty fields from the environment / defaults. Throws earmark::Error naming the bad option.
  void resolve();
  void validate() const;
};

class Service {
 public:
  explicit Service(ServeConfig cfg);
  ~Service();  // stops if still running
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Binds host:port and starts the HTTP server, workers and reporter. Returns the bound port.
  // Throws earmark::Error if the port cannot be bound, the store cannot be created or the
  // queue URL is bad (a queue that is down only makes /readyz fail).
  int start();
  // Graceful stop: /readyz turns 503, new uploads get 503, the listener closes, in-flight
  // requests finish, workers finish the file they are on (others stay queued) and exit.
  // Safe to call from any thread (not from a signal handler), more than once.
  void stop();
  // Blocks until stop() has been called (by another thread) and has completed.
  void wait();
  bool ready() const;
  int port() const;
  Metrics& metrics();
  const ServeConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The single-page web UI served at "/" (HTML), its style sheet ("/app.css") and script
// ("/app.js"): no inline script or style, nothing from elsewhere.
const char* web_page();
const char* web_style();
const char* web_script();

}  // namespace earmark::serve
