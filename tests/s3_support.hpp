// The S3-compatible server the S3 store is tested against: tests/s3_server.js runs npm's
// @20minutes/s3rver (which checks Signature V4) in a child process. scripts/install-deps
// installs it; without it the tests skip, or fail where EARMARK_REQUIRE_TEST_TOOLS is set
// (scripts/test sets it).
#pragma once

#include <gtest/gtest.h>

#include "serve/s3.hpp"
#include "serve_support.hpp"

namespace earmark::testing {

// ------------------------------------------------------------------ the test server

inline fs::path tools_cache() {
  if (const char* t = std::getenv("EARMARK_TOOLS_CACHE")) return t;
  if (const char* x = std::getenv("XDG_CACHE_HOME")) return fs::path(x) / "earmark-tools";
  if (const char* h = std::getenv("HOME")) return fs::path(h) / ".cache" / "earmark-tools";
  return {};
}

inline fs::path s3_node_modules() { return tools_cache() / "node-s3" / "node_modules"; }

inline bool have_s3_server() {
  return !node_binary().empty() && fs::exists(s3_node_modules() / "@20minutes" / "s3rver" / "package.json");
}

#define REQUIRE_S3_SERVER() EARMARK_REQUIRE_TOOL(have_s3_server(), "the S3 test server (node + npm @20minutes/s3rver)")

inline bool port_open(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(0, 200000);
  return bool(c.Get("/"));
}

class S3Server {
 public:
  S3Server(const fs::path& dir, const std::vector<std::string>& buckets) : port_(free_port()) {
    fs::create_directories(dir / "s3");
    // --openssl-legacy-provider: s3rver makes its listing continuation tokens with DES.
    std::vector<std::string> argv = {node_binary(), "--openssl-legacy-provider", (source_dir() / "tests" / "s3_server.js").string(),
                                     (dir / "s3").string(), std::to_string(port_)};
    argv.insert(argv.end(), buckets.begin(), buckets.end());
    log_ = dir / "s3-server.log";
    child_ = std::make_unique<Child>(argv, log_, std::vector<std::string>{"NODE_PATH=" + s3_node_modules().string()});
    for (int i = 0; i < 300 && !port_open(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~S3Server() {
    child_.reset();
    if (::testing::Test::HasFailure()) std::cerr << "--- S3 server log (" << log_.string() << "):\n" << log() << "---\n";
  }
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return slurp_file(log_); }
  void stop() { child_.reset(); }
  earmark::serve::S3Settings settings(const std::string& bucket, const std::string& prefix = "") const {
    earmark::serve::S3Settings s;
    s.where = earmark::serve::parse_s3_url("s3://" + bucket + (prefix.empty() ? "" : "/" + prefix));
    s.endpoint = endpoint();
    s.credentials = {"S3RVER", "S3RVER", ""};
    s.attempts = 2;
    s.timeout_s = 5;
    return s;
  }
  // The environment `earmark serve` reads for this server.
  std::vector<std::string> env() const {
    return {"EARMARK_S3_ENDPOINT=" + endpoint(), "AWS_ACCESS_KEY_ID=S3RVER", "AWS_SECRET_ACCESS_KEY=S3RVER",
            "EARMARK_S3_REGION=us-east-1"};
  }

 private:
  int port_;
  fs::path log_;
  std::unique_ptr<Child> child_;
};

}  // namespace earmark::testing
