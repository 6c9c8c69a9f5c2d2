#include "serve/http_front.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace earmark::serve {

namespace {

using Clock = std::chrono::steady_clock;

Clock::duration seconds(double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); }

// A connection between requests, or while its head arrives.
struct Conn {
  int fd = -1;
  std::string buf;         // bytes read ahead of httplib's parser (the head, maybe some body)
  bool idle = true;        // no byte of the next request yet
  bool draining = false;   // answered and shut for sending: reading what is left, then close
  size_t served = 0;       // requests on this connection
  Clock::time_point deadline;
  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    if (fd >= 0) ::close(fd);
  }
};

thread_local bool t_close_after = false;  // the answer just written asked to close

// The stream httplib reads a request from and writes its answer to: first the bytes the gate
// read ahead, then the socket, with a minimum average rate for what comes from the socket.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(Conn& c, const FrontLimits& l) : c_(c), l_(l), start_(Clock::now()) {}

  bool is_readable() const override { return !c_.buf.empty() || wait(POLLIN); }
  bool is_writable() const override { return wait(POLLOUT); }

  ssize_t read(char* ptr, size_t size) override {
    if (!c_.buf.empty()) {
      const size_t n = std::min(size, c_.buf.size());
      std::memcpy(ptr, c_.buf.data(), n);
      c_.buf.erase(0, n);
      return ssize_t(n);
    }
    if (!wait(POLLIN)) return -1;
    const ssize_t n = ::recv(c_.fd, ptr, size, 0);
    if (n > 0) from_socket_ += size_t(n);
    return n;
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!wait(POLLOUT)) return -1;
    return ::send(c_.fd, ptr, size, MSG_NOSIGNAL);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(false, ip, port); }
  socket_t socket() const override { return c_.fd; }
  bool too_slow() const { return too_slow_; }

 private:
  // Waits for the socket; reading also stops when the body falls below the minimum rate.
  bool wait(short what) const {
    auto until = Clock::now() + seconds(l_.io_timeout_s);
    if (what == POLLIN && l_.min_body_bytes_s > 0) {
      const auto allowed = start_ + seconds(l_.body_grace_s + double(from_socket_) / l_.min_body_bytes_s);
      until = std::min(until, allowed);
    }
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) {
        if (what == POLLIN) too_slow_ = true;
        return false;
      }
      pollfd p{c_.fd, what, 0};
      const int r = ::poll(&p, 1, int(std::min<long long>(left, 1000)));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }
  void address(bool remote, std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    const int r = remote ? ::getpeername(c_.fd, reinterpret_cast<sockaddr*>(&a), &len)
                         : ::getsockname(c_.fd, reinterpret_cast<sockaddr*>(&a), &len);
    if (r != 0) return;
    char host[64] = {0};
    if (a.ss_family == AF_INET) {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
      ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
      port = ntohs(v4->sin_port);
    } else if (a.ss_family == AF_INET6) {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
      ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
      port = ntohs(v6->sin6_port);
    }
    ip = host;
  }

  Conn& c_;
  const FrontLimits& l_;
  Clock::time_point start_;
  size_t from_socket_ = 0;
  mutable bool too_slow_ = false;
};

// Runs each task at once on the calling thread: httplib's accept loop hands the socket over to
// the gate without waiting for anything.
class Inline final : public httplib::TaskQueue {
 public:
  explicit Inline(std::function<void()> on_shutdown) : on_shutdown_(std::move(on_shutdown)) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override { on_shutdown_(); }

 private:
  std::function<void()> on_shutdown_;
};

std::string canned(int status, const char* reason, const std::string& code, const std::string& message,
                   int retry_after) {
  const std::string body = "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message + "\"}}\n";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n"
                    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
                    "form-action 'none'\r\n";
  if (retry_after > 0) out += "Retry-After: " + std::to_string(retry_after) + "\r\n";
  return out + "\r\n" + body;
}

}  // namespace

struct FrontServer::Impl {
  FrontServer& server;
  FrontLimits limits;
  std::function<void(const std::string&)> reject;
  std::atomic<size_t> open{0};

  // Connections handed to the gate (new, or back from a pool thread), picked up by the gate.
  std::mutex in_m;
  std::vector<std::unique_ptr<Conn>> incoming;
  int wake[2] = {-1, -1};

  // Complete heads waiting for a pool thread.
  std::mutex work_m;
  std::condition_variable work_cv;
  std::deque<std::unique_ptr<Conn>> work;
  size_t busy = 0;

  std::atomic<bool> running{false}, stopping{false};
  std::thread gate;
  std::vector<std::thread> pool;

  explicit Impl(FrontServer& s) : server(s) {}

  void start() {
    if (running.exchange(true)) return;
    stopping = false;
    if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) wake[0] = wake[1] = -1;
    gate = std::thread([this] { gate_loop(); });
    for (int i = 0; i < limits.threads; ++i) pool.emplace_back([this] { pool_loop(); });
  }

  // The listener has closed: requests whose head is complete are answered, connections waiting
  // for a head are closed, then the threads end.
  void stop() {
    if (!running) return;
    {
      std::lock_guard lock(work_m);
      stopping = true;
    }
    work_cv.notify_all();
    for (auto& t : pool) t.join();
    pool.clear();
    poke();
    if (gate.joinable()) gate.join();
    for (int& fd : wake)
      if (fd >= 0) ::close(fd), fd = -1;
    running = false;
  }

  void poke() {
    if (wake[1] >= 0) {
      const char b = 1;
      [[maybe_unused]] const ssize_t n = ::write(wake[1], &b, 1);
    }
  }

  void hand_to_gate(std::unique_ptr<Conn> c) {
    {
      std::lock_guard lock(in_m);
      incoming.push_back(std::move(c));
    }
    poke();
  }

  void close_now(Conn& c) {
    if (c.fd >= 0) {
      ::close(c.fd);
      c.fd = -1;
      --open;
    }
  }

  // Sends what is there to send, shuts the sending side and lets the gate read the rest of the
  // request for a moment before closing (no reset while the client still sends).
  void linger(std::unique_ptr<Conn> c, const std::string& answer = {}) {
    if (!answer.empty()) {
      size_t off = 0;
      while (off < answer.size()) {
        const ssize_t n = ::send(c->fd, answer.data() + off, answer.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) break;
        off += size_t(n);
      }
    }
    ::shutdown(c->fd, SHUT_WR);
    c->draining = true;
    c->buf.clear();
    c->deadline = Clock::now() + seconds(limits.linger_s);
    hand_to_gate(std::move(c));
  }

  void refuse(std::unique_ptr<Conn> c, int status, const char* reason, const std::string& code,
              const std::string& message, int retry_after) {
    if (reject) reject(code);
    linger(std::move(c), canned(status, reason, code, message, retry_after));
  }

  void accepted(int fd) {
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->deadline = Clock::now() + seconds(limits.head_timeout_s);
    ++open;
    if (stopping) {
      close_now(*c);
      return;
    }
    if (open > limits.max_connections) {
      refuse(std::move(c), 503, "Service Unavailable", "too_many_connections",
             "too many connections open; retry in a moment", 1);
      return;
    }
    hand_to_gate(std::move(c));
  }

  size_t max_waiting() const { return limits.max_waiting ? limits.max_waiting : size_t(16 * limits.threads); }

  // The head is complete: a pool thread takes it, unless too many wait already.
  void dispatch(std::unique_ptr<Conn> c) {
    std::unique_lock lock(work_m);
    if (stopping) {  // the pool may have ended already: not taken
      lock.unlock();
      close_now(*c);
      return;
    }
    if (work.size() >= max_waiting()) {
      lock.unlock();
      refuse(std::move(c), 503, "Service Unavailable", "busy", "the server is busy; retry in a moment", 1);
      return;
    }
    work.push_back(std::move(c));
    lock.unlock();
    work_cv.notify_one();
  }

  static bool head_complete(const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; }

  void gate_loop() {
    std::map<int, std::unique_ptr<Conn>> conns;
    std::vector<pollfd> fds;
    char buf[16384];
    for (;;) {
      {
        std::lock_guard lock(in_m);
        for (auto& c : incoming) {
          // Back from a pool thread with the next head read ahead already (pipelining).
          if (!c->draining && head_complete(c->buf)) {
            dispatch_later_.push_back(std::move(c));
            continue;
          }
          const int fd = c->fd;
          conns[fd] = std::move(c);
        }
        incoming.clear();
      }
      for (auto& c : dispatch_later_) dispatch(std::move(c));
      dispatch_later_.clear();
      const bool pool_done = stopping && pool_idle();
      if (stopping) {  // connections between requests or still sending a head: closed
        for (auto it = conns.begin(); it != conns.end();) {
          if (!it->second->draining || pool_done) {
            close_now(*it->second);
            it = conns.erase(it);
          } else {
            ++it;
          }
        }
        if (pool_done && conns.empty()) return;
      }
      fds.clear();
      if (wake[0] >= 0) fds.push_back({wake[0], POLLIN, 0});
      auto next = Clock::now() + std::chrono::milliseconds(200);
      for (const auto& [fd, c] : conns) {
        fds.push_back({fd, POLLIN, 0});
        next = std::min(next, c->deadline);
      }
      const auto wait_ms = std::max<long long>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count() + 1);
      ::poll(fds.data(), fds.size(), int(std::min<long long>(wait_ms, 200)));
      const auto now = Clock::now();
      for (const auto& p : fds) {
        if (p.fd == wake[0]) {
          if (p.revents & POLLIN)
            while (::read(wake[0], buf, sizeof buf) > 0) {
            }
          continue;
        }
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        auto it = conns.find(p.fd);
        if (it == conns.end()) continue;
        Conn& c = *it->second;
        const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          close_now(c);
          conns.erase(it);
          continue;
        }
        if (n < 0 || c.draining) continue;  // lingering: dropped
        if (c.idle) {  // the first byte of a request on a kept-alive connection: the head's clock starts
          c.idle = false;
          if (c.served > 0) c.deadline = now + seconds(limits.head_timeout_s);
        }
        c.buf.append(buf, size_t(n));
        if (head_complete(c.buf)) {
          auto own = std::move(it->second);
          conns.erase(it);
          dispatch(std::move(own));
        } else if (c.buf.size() > limits.max_head_bytes) {
          auto own = std::move(it->second);
          conns.erase(it);
          refuse(std::move(own), 431, "Request Header Fields Too Large", "head_too_large",
                 "the request line and headers exceed " + std::to_string(limits.max_head_bytes / 1024) + " kB", 0);
        }
      }
      for (auto it = conns.begin(); it != conns.end();) {
        Conn& c = *it->second;
        if (now < c.deadline) {
          ++it;
          continue;
        }
        if (c.draining || (c.idle && c.buf.empty())) {  // done lingering, or an idle keep-alive
          close_now(c);
          it = conns.erase(it);
          continue;
        }
        auto own = std::move(it->second);
        it = conns.erase(it);
        refuse(std::move(own), 408, "Request Timeout", "head_timeout",
               "the request head did not arrive within the time allowed; send it at once", 0);
      }
    }
  }
  std::vector<std::unique_ptr<Conn>> dispatch_later_;

  bool pool_idle() {
    std::lock_guard lock(work_m);
    return work.empty() && busy == 0;
  }

  void pool_loop() {
    for (;;) {
      std::unique_ptr<Conn> c;
      {
        std::unique_lock lock(work_m);
        work_cv.wait(lock, [&] { return !work.empty() || (stopping && busy == 0); });
        if (work.empty()) {
          work_cv.notify_all();
          return;
        }
        c = std::move(work.front());
        work.pop_front();
        ++busy;
      }
      serve_one(std::move(c));
      {
        std::lock_guard lock(work_m);
        --busy;
      }
      work_cv.notify_all();
      poke();
    }
  }

  void serve_one(std::unique_ptr<Conn> c) {
    ++c->served;
    const bool last = stopping || c->served >= limits.keep_alive_max;
    bool closed = false;
    bool ok = false;
    t_close_after = false;
    {
      ConnStream strm(*c, limits);
      try {
        ok = server.process_request(strm, last, closed, nullptr);
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (!ok || closed || last || t_close_after || stopping) {
      linger(std::move(c));
      return;
    }
    c->idle = c->buf.empty();
    c->deadline = Clock::now() + seconds(c->idle ? limits.idle_timeout_s : limits.head_timeout_s);
    hand_to_gate(std::move(c));
  }
};

FrontServer::FrontServer() : impl_(std::make_unique<Impl>(*this)) {
  new_task_queue = [this] {
    impl_->start();
    return new Inline([this] { impl_->stop(); });
  };
  // Requests are served by the front's own pool; httplib's accept loop only hands sockets over.
}

FrontServer::~FrontServer() {
  stop();
  impl_->stop();
}

void FrontServer::set_limits(const FrontLimits& limits) { impl_->limits = limits; }
void FrontServer::on_reject(std::function<void(const std::string&)> f) { impl_->reject = std::move(f); }

void FrontServer::set_request_logger(httplib::Logger logger) {
  set_logger([logger = std::move(logger)](const httplib::Request& req, const httplib::Response& res) {
    // An answer that closes, or an error to a request with a body (which may be unread): the
    // connection ends after it.
    if (res.get_header_value("Connection") == "close" ||
        (res.status >= 400 && (req.has_header("Content-Length") || req.has_header("Transfer-Encoding"))))
      t_close_after = true;
    if (logger) logger(req, res);
  });
}

void FrontServer::widen_backlog() {
  const socket_t s = svr_sock_;
  if (s != INVALID_SOCKET) ::listen(s, impl_->limits.backlog);
}

size_t FrontServer::open_connections() const { return impl_->open.load(); }

bool FrontServer::process_and_close_socket(socket_t sock) {
  impl_->accepted(sock);
  return true;
}

}  // namespace earmark::serve
