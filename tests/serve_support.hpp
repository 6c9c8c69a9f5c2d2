// Helpers for the service tests: HTTP calls, free ports, child processes, reading clips.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <poll.h>

#include <chrono>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace earmark::testing {

inline std::string slurp_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Node.js runs the test helpers written in JavaScript (tests/*.js); "" when not installed.
inline std::string node_binary() {
  for (const char* p : {"/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"})
    if (fs::exists(p)) return p;
  return {};
}

inline fs::path clip(const std::string& name) { return shared_dir() / "audio" / name; }

// A loopback port nobody listens on right now.
inline int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

inline nlohmann::json json_of(const httplib::Result& r) {
  if (!r) return nlohmann::json{};
  try {
    return nlohmann::json::parse(r->body);
  } catch (const std::exception&) {
    return nlohmann::json{};
  }
}

// Waits until GET url answers 200 (or the timeout passes).
inline bool wait_ready(int port, double timeout_s, const std::string& path = "/readyz") {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(1, 0);
  while (std::chrono::steady_clock::now() < until) {
    auto r = c.Get(path.c_str());
    if (r && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// A child process (argv[0] is the program path), stdout+stderr to `log`.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const fs::path& log, const std::vector<std::string>& env = {}) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      std::FILE* f = std::fopen(log.c_str(), "w");
      if (f) {
        ::dup2(fileno(f), 1);
        ::dup2(fileno(f), 2);
      }
      for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::_Exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  void signal(int sig) { if (pid_ > 0 && !exited_) ::kill(pid_, sig); }
  // Exit status (or 128+signal) after waiting up to timeout_s; -1 if still running.
  int wait(double timeout_s) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (!exited_) {
      int st = 0;
      const pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() >= until) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return status_;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = -1;
};

// Resident memory of this process in kB: "VmRSS" (now) or "VmHWM" (peak since the last
// reset_peak_rss()).
inline long rss_kb(const std::string& field = "VmRSS") {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}
// Starts a new peak (VmHWM := VmRSS); false where the kernel does not allow it.
inline bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return bool(f);
}

// A TCP connection to 127.0.0.1:port (-1 if refused).
inline int connect_loopback(int port) {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

// What came back on a raw HTTP exchange.
struct RawReply {
  int status = 0;         // 0: no HTTP answer
  std::string head;       // status line and headers
  size_t sent = 0;        // body bytes the server took before it answered
  bool reset = false;     // the connection was reset (ECONNRESET / EPIPE)
};

// Sends `head`, then body pieces from `next` ("" ends the body) while the server takes them,
// and reads the answer as soon as it comes (sending stops then): a client that sees an early
// answer (413, 429) as a browser or curl does.
inline RawReply raw_exchange(int port, const std::string& head, const std::function<std::string()>& next,
                             double timeout_s) {
  RawReply out;
  const int fd = connect_loopback(port);
  if (fd < 0) return out;
  std::string pending = head, got;
  bool body_done = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, short(POLLIN | (pending.empty() && body_done ? 0 : POLLOUT)), 0};
    if (::poll(&p, 1, 100) < 0) break;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[8192];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0) {
        out.reset = errno == ECONNRESET;
        break;
      }
      if (n == 0) break;
      got.append(buf, size_t(n));
      if (const auto end = got.find("\r\n\r\n"); end != std::string::npos) {
        out.head = got.substr(0, end);
        if (out.head.rfind("HTTP/1.", 0) == 0 && out.head.size() > 12) out.status = std::stoi(out.head.substr(9, 3));
        break;
      }
      continue;
    }
    if (p.revents & POLLOUT) {
      if (pending.empty() && !body_done) {
        pending = next();
        if (pending.empty()) body_done = true;
      }
      if (!pending.empty()) {
        const ssize_t n = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EPIPE || errno == ECONNRESET) out.reset = true;
          if (errno != EAGAIN && errno != EINTR) {
            // The server stopped reading: its answer may be waiting still.
            body_done = true;
            pending.clear();
          }
          continue;
        }
        pending.erase(0, size_t(n));
        out.sent += size_t(n);
      }
    }
  }
  ::close(fd);
  out.sent = out.sent > head.size() ? out.sent - head.size() : 0;
  return out;
}

}  // namespace earmark::testing
