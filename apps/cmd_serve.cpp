// earmark serve: the HTTP API, web page and service roles (all the work is in src/serve).
#include <pthread.h>
#include <signal.h>

#include <cmath>
#include <iostream>

#include "commands.hpp"
#include "earmark/earmark.hpp"
#include "earmark/serve.hpp"

namespace earmark::cli {

namespace {

int run_serve(serve::ServeConfig cfg) {
  // SIGTERM/SIGINT are taken by sigwait below, on this thread only: block them before any
  // thread exists so that every thread the service starts inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error on that socket, not the process's end

  serve::Service svc(std::move(cfg));
  svc.start();
  int sig = 0;
  sigwait(&set, &sig);
  std::cerr << "earmark serve: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ": stopping (finishing in-flight work)\n";
  svc.stop();
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto cfg = std::make_shared<serve::ServeConfig>();
  auto* cmd = app.add_subcommand("serve", "HTTP API, web page and worker roles (see docs/architecture.md)");
  cmd->add_option("--host", cfg->host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", cfg->port, "port to listen on (every role serves /healthz, /readyz, /metrics here)")
      ->capture_default_str();
  cmd->add_option("--role", cfg->role, "all (one process), gateway, worker or reporter")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "gateway", "worker", "reporter"}));
  cmd->add_option("--store", cfg->store,
                  "where jobs live, shared by the roles: a folder, or s3://BUCKET/PREFIX for S3-compatible storage "
                  "(endpoint, region, credentials from EARMARK_S3_ENDPOINT, EARMARK_S3_REGION, AWS_ACCESS_KEY_ID, "
                  "AWS_SECRET_ACCESS_KEY, or a workload identity: EKS Pod Identity, IAM roles for service accounts) "
                  "(default: $EARMARK_STORE, else ./earmark-store)");
  cmd->add_option("--scratch", cfg->scratch,
                  "local folder for staged uploads, S3 downloads and reports in the making (default: $EARMARK_SCRATCH, "
                  "else $TMPDIR/earmark-scratch)");
  cmd->add_option("--keep-hours", cfg->keep_hours, "gateway: remove jobs this many hours after they ended (0: keep forever)")
      ->capture_default_str();
  cmd->add_option("--queue", cfg->queue, "memory or redis://HOST:PORT (default: $EARMARK_QUEUE, else memory)");
  cmd->add_option("--workers", cfg->workers, "worker threads (roles all, worker; default: half the cores)");
  cmd->add_option("--models-dir", cfg->models_dir, "folder with the checkpoints (default: $EARMARK_MODELS)");
  cmd->add_option("-c,--config", cfg->config_file, "detection configuration (YAML or JSON) used by the workers");
  cmd->add_option("--max-upload-mb", cfg->max_upload_mb, "largest request body in MB (413 beyond)")->capture_default_str();
  cmd->add_option("--lease-s", cfg->lease_s, "seconds after which a silent worker's file goes to another worker")
      ->capture_default_str();
  cmd->add_option("--sync-timeout-s", cfg->sync_timeout_s, "POST /v1/detect waits this long before 504")
      ->capture_default_str();
  cmd->add_option("--http-threads", cfg->http_threads, "requests processed at once")->capture_default_str();
  cmd->add_option("--head-timeout-s", cfg->head_timeout_s,
                  "a request's line and headers must arrive within this many seconds (408 beyond)")
      ->capture_default_str();
  cmd->add_option("--min-body-kbps", cfg->min_body_kbps,
                  "an upload must average at least this many kB/s after its first 10 s (0: no minimum)")
      ->capture_default_str();
  cmd->add_option("--max-connections", cfg->max_connections, "connections open at once (503 beyond)")
      ->capture_default_str();
  cmd->add_option("--reconcile-s", cfg->reconcile_s,
                  "reporter: every this many seconds, queue again unfinished work the queue lost (0: never)")
      ->capture_default_str();
  cmd->add_option("--demo-dir", cfg->demo_dir, "serve audio files from this folder at /demo/NAME (tests, demos)")
      ->group("");
  // ServeConfig::validate() holds the ranges; the flags refuse NaN and infinity by name here.
  for (const char* name : {"--port", "--keep-hours", "--workers", "--max-upload-mb", "--lease-s", "--sync-timeout-s",
                           "--http-threads"})
    cmd->get_option(name)->check(number_in(-HUGE_VAL, HUGE_VAL, "must be a finite number"));
  cmd->callback([cfg] { exit_code = run_serve(*cfg); });
}

}  // namespace earmark::cli
