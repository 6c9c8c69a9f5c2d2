// serve/http_front: cpp-httplib's server with a front door that slow or numerous clients
// cannot block.
//
// cpp-httplib gives each accepted connection a pool thread at once, which then waits for the
// request head with only a per-read timeout: as many clients as threads, each sending a byte a
// second, leave everyone else (and /healthz) without an answer. FrontServer keeps its own
// pool and puts one thread (the gate) in front of it:
//
//   accept --> gate (one poll() thread): reads the request head as it arrives, with a deadline
//              for the whole head; a connection gets a pool thread only once its head is
//              complete. Too slow: 408. Head too large: 431. Too many connections open or too
//              many complete heads waiting for a thread: 503 with Retry-After.
//          --> pool (threads): one request each (httplib parses and routes it); the body must
//              keep a minimum average rate after a grace period. Then the connection goes back
//              to the gate for the next request (keep-alive), or is closed.
//   close:     always "lingering": the answer is sent, the sending side shut, and what the
//              client still sends (the rest of a refused upload) is read and dropped for a
//              moment before the socket is closed, so clients read their 413/429/503 instead of
//              a TCP reset.
//
// The listen backlog is widened from httplib's 5 (widen_backlog after binding).
#pragma once

#include <httplib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace earmark::serve {

struct FrontLimits {
  int threads = 16;                // requests processed at once
  double head_timeout_s = 10;      // the whole request head (line + headers) arrives within this
  double idle_timeout_s = 5;       // keep-alive: wait this long for the next request
  double body_grace_s = 10;        // the body's rate is checked after this long...
  double min_body_bytes_s = 8192;  // ...and must average at least this (0: not checked)
  double io_timeout_s = 30;        // one read or write that makes no progress
  double linger_s = 2;             // reading the rest of a refused request before closing
  size_t max_head_bytes = 64 * 1024;
  size_t max_connections = 1024;   // open at once (503 beyond)
  size_t max_waiting = 0;          // complete heads waiting for a thread (503 beyond); 0: 16 x threads
  size_t keep_alive_max = 100;     // requests on one connection
  int backlog = 1024;              // listen backlog (the kernel caps it at net.core.somaxconn)
};

class FrontServer : public httplib::Server {
 public:
  FrontServer();
  ~FrontServer() override;
  FrontServer(const FrontServer&) = delete;
  FrontServer& operator=(const FrontServer&) = delete;

  // Before listening.
  void set_limits(const FrontLimits& limits);
  // Called (from the gate thread) for each connection answered by the gate itself: reason is
  // head_timeout, head_too_large, busy or too_many_connections.
  void on_reject(std::function<void(const std::string& reason)> f);
  // Logger for each request served by the pool (as httplib::Server::set_logger).
  void set_request_logger(httplib::Logger logger);
  // After bind_to_port / bind_to_any_port.
  void widen_backlog();

  // Connections open now (waiting for a head, in a pool thread or lingering), for metrics.
  size_t open_connections() const;

  struct Impl;

 private:
  bool process_and_close_socket(socket_t sock) override;  // the accept thread hands over here
  std::unique_ptr<Impl> impl_;
};

}  // namespace earmark::serve
