// Helpers for the service tests: HTTP calls, free ports, child processes, reading clips.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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

}  // namespace earmark::testing
