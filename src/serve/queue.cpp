#include "serve/queue.hpp"

#include <hiredis/hiredis.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <type_traits>
#include <mutex>
#include <vector>

#include "earmark/earmark.hpp"

namespace earmark::serve {

namespace {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- memory

class MemoryQueue final : public Queue {
 public:
  std::string publish(const std::string& stream, const std::string& body) override {
    std::lock_guard lock(m_);
    auto& s = streams_[stream];
    const std::string id = std::to_string(++next_id_);
    s.waiting.push_back({stream, id, body, 0});
    cv_.notify_all();
    return id;
  }

  std::optional<Message> consume(const std::string& stream, const std::string& consumer,
                                 std::chrono::milliseconds wait, std::chrono::milliseconds lease) override {
    std::unique_lock lock(m_);
    const auto until = Clock::now() + wait;
    for (;;) {
      auto& s = streams_[stream];
      const auto now = Clock::now();
      for (auto& [id, p] : s.pending) {
        if (now - p.since >= lease) {  // the holder went quiet: take it over
          p.since = now;
          p.consumer = consumer;
          ++p.msg.deliveries;
          return p.msg;
        }
      }
      if (!s.waiting.empty()) {
        Message msg = std::move(s.waiting.front());
        s.waiting.pop_front();
        msg.deliveries = 1;
        s.pending[msg.id] = Pending{msg, consumer, now};
        return msg;
      }
      if (now >= until) return std::nullopt;
      // Wake up for new messages, and at the latest when a lease may have run out.
      cv_.wait_until(lock, std::min(until, now + std::min<Clock::duration>(lease, std::chrono::milliseconds(200))));
    }
  }

  void ack(const Message& m) override {
    std::lock_guard lock(m_);
    streams_[m.stream].pending.erase(m.id);
  }

  void extend(const Message& m, const std::string& consumer) override {
    std::lock_guard lock(m_);
    auto& s = streams_[m.stream];
    if (auto it = s.pending.find(m.id); it != s.pending.end() && it->second.consumer == consumer)
      it->second.since = Clock::now();
  }

  size_t depth(const std::string& stream) override {
    std::lock_guard lock(m_);
    const auto& s = streams_[stream];
    return s.waiting.size() + s.pending.size();
  }

  std::vector<Message> contents(const std::string& stream, size_t limit) override {
    std::lock_guard lock(m_);
    const auto& s = streams_[stream];
    std::vector<Message> out;
    for (const auto& [id, p] : s.pending)
      if (out.size() < limit) out.push_back(p.msg);
    for (const auto& m : s.waiting)
      if (out.size() < limit) out.push_back(m);
    return out;
  }

  bool ping() override { return true; }
  std::string describe() const override { return "memory"; }

 private:
  struct Pending {
    Message msg;
    std::string consumer;
    Clock::time_point since;
  };
  struct Stream {
    std::deque<Message> waiting;
    std::map<std::string, Pending> pending;
  };
  std::mutex m_;
  std::condition_variable cv_;
  std::map<std::string, Stream> streams_;
  unsigned long long next_id_ = 0;
};

// ---------------------------------------------------------------- redis

struct ReplyDeleter {
  void operator()(redisReply* r) const { if (r) freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
struct ContextDeleter {
  void operator()(redisContext* c) const { if (c) redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

constexpr const char* kGroup = "earmark";

class RedisQueue final : public Queue {
  class Conn;

 public:
  RedisQueue(std::string host, int port, int db, std::string url)
      : host_(std::move(host)), port_(port), db_(db), url_(std::move(url)) {}

  std::string publish(const std::string& stream, const std::string& body) override {
    Conn c(*this);
    ensure_group(c, stream);
    // XADD creates the stream if Redis lost it; the group is re-created by the first consumer
    // that finds it missing (it reads from the start, so this message is not lost).
    Reply r = c.run({"XADD", stream, "*", "body", body});
    if (r->type != REDIS_REPLY_STRING) throw Error(url_ + ": XADD " + stream + " gave an unexpected reply");
    return std::string(r->str, r->len);
  }

  std::optional<Message> consume(const std::string& stream, const std::string& consumer,
                                 std::chrono::milliseconds wait, std::chrono::milliseconds lease) override {
    return healing(stream, [&](Conn& c) { return consume_once(c, stream, consumer, wait, lease); });
  }

  std::optional<Message> consume_once(Conn& c, const std::string& stream, const std::string& consumer,
                                      std::chrono::milliseconds wait, std::chrono::milliseconds lease) {
    // First a message whose holder has been silent for longer than the lease.
    Reply p = c.run({"XPENDING", stream, kGroup, "IDLE", std::to_string(lease.count()), "-", "+", "1"});
    if (p->type == REDIS_REPLY_ARRAY && p->elements > 0) {
      const redisReply* e = p->element[0];
      if (e->type == REDIS_REPLY_ARRAY && e->elements >= 4) {
        const std::string id(e->element[0]->str, e->element[0]->len);
        const int deliveries = int(e->element[3]->integer);
        Reply cl = c.run({"XCLAIM", stream, kGroup, consumer, std::to_string(lease.count()), id});
        if (cl->type == REDIS_REPLY_ARRAY && cl->elements > 0) {
          if (auto m = parse_entry(stream, cl->element[0])) {
            m->deliveries = deliveries + 1;
            return m;
          }
        }
        // Claimed by another consumer first, or the entry is gone: fall through to new ones.
      }
    }
    const long long block = std::max<long long>(1, wait.count());
    Reply r = c.run({"XREADGROUP", "GROUP", kGroup, consumer, "COUNT", "1", "BLOCK", std::to_string(block),
                     "STREAMS", stream, ">"},
                    block + 5000);
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return std::nullopt;
    const redisReply* s = r->element[0];  // [stream, [[id, [k, v...]]]]
    if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 || s->element[1]->elements == 0) return std::nullopt;
    auto m = parse_entry(stream, s->element[1]->element[0]);
    if (m) m->deliveries = 1;
    return m;
  }

  void ack(const Message& m) override {
    healing(m.stream, [&](Conn& c) {
      c.run({"XACK", m.stream, kGroup, m.id});
      c.run({"XDEL", m.stream, m.id});  // acknowledged messages leave the stream: XLEN is the depth
      return 0;
    });
  }

  void extend(const Message& m, const std::string& consumer) override {
    healing(m.stream, [&](Conn& c) {
      // XCLAIM with min-idle 0 by the holder itself resets the idle time (its lease clock).
      c.run({"XCLAIM", m.stream, kGroup, consumer, "0", m.id, "JUSTID"});
      return 0;
    });
  }

  std::vector<Message> contents(const std::string& stream, size_t limit) override {
    Conn c(*this);
    Reply r = c.run({"XRANGE", stream, "-", "+", "COUNT", std::to_string(limit)});
    std::vector<Message> out;
    if (r->type != REDIS_REPLY_ARRAY) return out;
    for (size_t i = 0; i < r->elements; ++i)
      if (auto m = parse_entry(stream, r->element[i])) out.push_back(std::move(*m));
    return out;
  }

  size_t depth(const std::string& stream) override {
    Conn c(*this);
    Reply r = c.run({"XLEN", stream});
    return r->type == REDIS_REPLY_INTEGER ? size_t(r->integer) : 0;
  }

  bool ping() override {
    try {
      Conn c(*this);
      Reply r = c.run({"PING"});
      return r->type == REDIS_REPLY_STATUS;
    } catch (const Error&) {
      return false;
    }
  }

  std::string describe() const override { return url_; }

 private:
  // A connection borrowed from the pool for one call (hiredis contexts are not thread-safe).
  class Conn {
   public:
    explicit Conn(RedisQueue& q) : q_(q) {
      {
        std::lock_guard lock(q_.m_);
        if (!q_.pool_.empty()) {
          ctx_ = std::move(q_.pool_.back());
          q_.pool_.pop_back();
        }
      }
      if (!ctx_) ctx_ = q_.connect();
    }
    ~Conn() {
      if (!ctx_ || ctx_->err) return;  // a broken connection is dropped
      std::lock_guard lock(q_.m_);
      if (q_.pool_.size() < 16) q_.pool_.push_back(std::move(ctx_));
    }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    Reply run(const std::vector<std::string>& args, long long timeout_ms = 5000) {
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (const auto& a : args) argv.push_back(a.c_str()), lens.push_back(a.size());
      timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
      redisSetTimeout(ctx_.get(), tv);
      Reply r(static_cast<redisReply*>(redisCommandArgv(ctx_.get(), int(argv.size()), argv.data(), lens.data())));
      if (!r) {
        const std::string why = ctx_->errstr;
        ctx_.reset();
        throw Error(q_.url_ + ": " + args[0] + " failed (" + why + "); is the Redis server running and reachable?");
      }
      if (r->type == REDIS_REPLY_ERROR) {
        const std::string why(r->str, r->len);
        if (why.rfind("BUSYGROUP", 0) == 0) return r;
        const std::string what = q_.url_ + ": " + args[0] + " " + (args.size() > 1 ? args[1] : "") + ": " + why;
        // The group (or the whole stream) is gone: Redis restarted empty, failed over, or was flushed.
        if (why.rfind("NOGROUP", 0) == 0) throw NoGroup(what);
        throw Error(what);
      }
      return r;
    }

   private:
    RedisQueue& q_;
    Context ctx_;
  };

  Context connect() {
    timeval tv{2, 0};
    Context c(redisConnectWithTimeout(host_.c_str(), port_, tv));
    if (!c || c->err)
      throw Error(url_ + ": cannot connect to Redis (" + std::string(c ? c->errstr : "out of memory") +
                  "); start redis-server or fix --queue / EARMARK_QUEUE");
    if (db_ != 0) {
      Reply r(static_cast<redisReply*>(redisCommand(c.get(), "SELECT %d", db_)));
      if (!r || r->type == REDIS_REPLY_ERROR) throw Error(url_ + ": cannot select database " + std::to_string(db_));
    }
    return c;
  }

  struct NoGroup : Error {
    using Error::Error;
  };

  // Runs `f` on a connection, with the consumer group in place. When Redis says the group does
  // not exist (it lost its data), this process forgets that it made the group, makes it again
  // and runs `f` once more: every role heals by itself, without a restart.
  template <class F>
  std::invoke_result_t<F, Conn&> healing(const std::string& stream, F f) {
    Conn c(*this);
    ensure_group(c, stream);
    try {
      return f(c);
    } catch (const NoGroup&) {
      {
        std::lock_guard lock(m_);
        groups_.erase(stream);
      }
      ensure_group(c, stream);
      return f(c);
    }
  }

  void ensure_group(Conn& c, const std::string& stream) {
    {
      std::lock_guard lock(m_);
      if (groups_.count(stream)) return;
    }
    c.run({"XGROUP", "CREATE", stream, kGroup, "0", "MKSTREAM"});  // BUSYGROUP: exists already
    std::lock_guard lock(m_);
    groups_[stream] = true;
  }

  static std::optional<Message> parse_entry(const std::string& stream, const redisReply* e) {
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
      return std::nullopt;
    Message m;
    m.stream = stream;
    m.id.assign(e->element[0]->str, e->element[0]->len);
    const redisReply* kv = e->element[1];
    if (kv->type != REDIS_REPLY_ARRAY) return std::nullopt;
    for (size_t i = 0; i + 1 < kv->elements; i += 2)
      if (std::string(kv->element[i]->str, kv->element[i]->len) == "body")
        m.body.assign(kv->element[i + 1]->str, kv->element[i + 1]->len);
    return m;
  }

  std::string host_;
  int port_;
  int db_;
  std::string url_;
  std::mutex m_;
  std::vector<Context> pool_;
  std::map<std::string, bool> groups_;
};

}  // namespace

bool is_redis_url(const std::string& url) { return url.rfind("redis://", 0) == 0; }

std::unique_ptr<Queue> make_queue(const std::string& url) {
  if (url.empty() || url == "memory") return std::make_unique<MemoryQueue>();
  if (!is_redis_url(url))
    throw Error("queue '" + url + "': use 'memory' or 'redis://HOST:PORT' (e.g. redis://localhost:6379)");
  std::string rest = url.substr(8);
  int db = 0;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string d = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!d.empty()) {
      try {
        db = std::stoi(d);
      } catch (const std::exception&) {
        throw Error("queue '" + url + "': the database after '/' must be a number");
      }
    }
  }
  std::string host = rest;
  int port = 6379;
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    try {
      size_t used = 0;
      port = std::stoi(rest.substr(colon + 1), &used);
      if (used != rest.size() - colon - 1 || port <= 0 || port > 65535) throw std::invalid_argument("port");
    } catch (const std::exception&) {
      throw Error("queue '" + url + "': the port must be a number 1-65535");
    }
  }
  if (host.empty()) throw Error("queue '" + url + "': no host; use redis://HOST:PORT");
  return std::make_unique<RedisQueue>(host, port, db, url);
}

}  // namespace earmark::serve
