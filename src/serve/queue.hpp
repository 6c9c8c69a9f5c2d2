// serve/queue: the message queue between the service roles (gateway -> worker -> reporter).
//
// One interface, two implementations:
//  - MemoryQueue: in-process, for `earmark serve --role all` (one machine, worker threads);
//  - RedisQueue: Redis Streams with one consumer group per stream, for separate gateway,
//    worker and reporter processes sharing a Redis server.
// Delivery is at-least-once: a consumer takes a message with consume(), works on it, then
// ack()s it. A message not acknowledged within the lease (the consumer crashed or was killed)
// is handed to another consumer by a later consume(), with `deliveries` counting the attempts.
// A long task calls extend() now and then to keep its lease. Consumers therefore must make
// their effects idempotent (results are written under fixed names, replacing earlier tries).
// A queue may lose messages (a Redis that restarts empty, a failover, FLUSHALL): the Redis
// implementation then re-creates its consumer groups and goes on, and the service's reconciler
// (serve/server.cpp) queues again the work that the store says is unfinished.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace earmark::serve {

struct Message {
  std::string stream;
  std::string id;       // queue-assigned, unique within the stream
  std::string body;     // JSON text, see docs/architecture.md
  int deliveries = 1;   // 1 on the first delivery, more when the message was taken over
};

class Queue {
 public:
  virtual ~Queue() = default;
  // Appends a message; returns its id. Throws earmark::Error when the queue cannot be reached.
  virtual std::string publish(const std::string& stream, const std::string& body) = 0;
  // Next message for `consumer` in the stream's consumer group: first a message whose lease
  // ran out (idle longer than `lease`), else a new one, waiting up to `wait`. nullopt if none.
  virtual std::optional<Message> consume(const std::string& stream, const std::string& consumer,
                                         std::chrono::milliseconds wait, std::chrono::milliseconds lease) = 0;
  // Done with it: the message leaves the queue for good.
  virtual void ack(const Message& m) = 0;
  // Still working on it: restart its lease clock.
  virtual void extend(const Message& m, const std::string& consumer) = 0;
  // Messages in the stream not yet acknowledged (waiting or being worked on).
  virtual size_t depth(const std::string& stream) = 0;
  // Every message the stream holds now (waiting or being worked on), oldest first, at most
  // `limit`: what the reconciler compares with the store to find work the queue lost.
  virtual std::vector<Message> contents(const std::string& stream, size_t limit) = 0;
  // True when the queue answers.
  virtual bool ping() = 0;
  virtual std::string describe() const = 0;
};

// "memory" or "redis://HOST:PORT" (optionally "redis://HOST:PORT/DB"). A memory queue made
// here is a fresh one; processes cannot share it. Throws earmark::Error on a bad URL.
std::unique_ptr<Queue> make_queue(const std::string& url);
// True for a URL that make_queue would open as Redis.
bool is_redis_url(const std::string& url);

// Stream names.
inline constexpr const char* kDetectStream = "earmark:detect";
inline constexpr const char* kReportStream = "earmark:report";

}  // namespace earmark::serve
