// The microservice roles with a real Redis: a redis-server started here, the real `earmark`
// binary as gateway + 2 workers + reporter sharing a store folder, then an S3 bucket. One
// worker is SIGKILLed in the middle of a file; every job must still end done, each file listed
// exactly once.
#include <gtest/gtest.h>

#include <hiredis/hiredis.h>

#include <map>
#include <set>

#include "s3_support.hpp"
#include "serve/queue.hpp"
#include "serve/server.hpp"
#include "serve/store.hpp"
#include "serve_support.hpp"

using namespace earmark::testing;
using nlohmann::json;
namespace serve = earmark::serve;

namespace {

std::string redis_server() {
  for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"})
    if (fs::exists(p)) return p;
  return {};
}

bool redis_ping(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) {
    if (c) redisFree(c);
    return false;
  }
  auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
  const bool ok = r && r->type == REDIS_REPLY_STATUS;
  if (r) freeReplyObject(r);
  redisFree(c);
  return ok;
}

class Redis {
 public:
  // A fresh, empty Redis (no persistence); `port` 0: a free one.
  explicit Redis(const fs::path& dir, int port = 0)
      : port_(port > 0 ? port : free_port()),
        child_({redis_server(), "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                "no", "--dir", dir.string()},
               dir / "redis.log") {
    for (int i = 0; i < 200 && !redis_ping(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  Child child_;
};

#define REQUIRE_REDIS() EARMARK_REQUIRE_TOOL(!redis_server().empty(), "redis-server")

TEST(RedisQueue, LeasesRedeliveryAckAndDepth) {
  REQUIRE_REDIS();
  TempDir dir;
  Redis redis(dir.path());
  ASSERT_TRUE(redis_ping(redis.port()));
  auto q = serve::make_queue(redis.url());
  ASSERT_TRUE(q->ping());
  using ms = std::chrono::milliseconds;
  q->publish("t", "a");
  q->publish("t", "b");
  EXPECT_EQ(q->depth("t"), 2u);
  auto m1 = q->consume("t", "c1", ms(100), ms(300));
  ASSERT_TRUE(m1);
  EXPECT_EQ(m1->body, "a");
  auto m2 = q->consume("t", "c2", ms(100), ms(300));
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->body, "b");
  q->ack(*m2);
  EXPECT_EQ(q->depth("t"), 1u);
  // c1 renews its lease: nobody else gets "a" meanwhile.
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(ms(120));
    q->extend(*m1, "c1");
    EXPECT_FALSE(q->consume("t", "c2", ms(1), ms(300)));
  }
  // c1 goes silent: after the lease, c2 takes "a" over as a second delivery.
  std::this_thread::sleep_for(ms(400));
  auto again = q->consume("t", "c2", ms(100), ms(300));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "a");
  EXPECT_EQ(again->deliveries, 2);
  q->ack(*again);
  EXPECT_EQ(q->depth("t"), 0u);
  EXPECT_FALSE(serve::make_queue("redis://127.0.0.1:1")->ping());
}

// Gateway + 2 workers + reporter on one queue and one store (named, with its settings, in
// `env`); `store` is the test's own view of the same store. Each role has its
// own scratch folder: the store is all they share.
void roles_survive_a_killed_worker(const fs::path& dir, const Redis& redis, std::vector<std::string> env,
                                   serve::Store& store) {
  env.push_back("EARMARK_QUEUE=" + redis.url());
  env.push_back("EARMARK_MODELS=" + models_dir().string());
  auto start = [&](const std::string& role, int port, const std::string& log) {
    return std::make_unique<Child>(std::vector<std::string>{cli_path().string(), "serve", "--role", role, "--host",
                                                            "127.0.0.1", "--port", std::to_string(port), "--workers",
                                                            "1", "--lease-s", "2", "--scratch",
                                                            (dir / ("scratch-" + log)).string()},
                                   dir / log, env);
  };
  const int gw_port = free_port(), w1_port = free_port(), w2_port = free_port(), rep_port = free_port();
  auto gateway = start("gateway", gw_port, "gateway.log");
  auto w1 = start("worker", w1_port, "worker1.log");
  auto w2 = start("worker", w2_port, "worker2.log");
  auto reporter = start("reporter", rep_port, "reporter.log");
  for (auto [port, log] : {std::pair{gw_port, "gateway.log"}, {w1_port, "worker1.log"}, {w2_port, "worker2.log"},
                           {rep_port, "reporter.log"}})
    ASSERT_TRUE(wait_ready(port, 120)) << log << ":\n" << slurp_file(dir / log);
  // Workers serve only health and metrics.
  {
    httplib::Client w("127.0.0.1", w1_port);
    auto r = w.Get("/v1/labels");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
  }

  httplib::Client c("127.0.0.1", gw_port);
  c.set_read_timeout(60, 0);
  const std::vector<std::string> clips = {"speech.wav", "music.wav", "typing.wav"};
  std::map<std::string, std::vector<std::string>> jobs;  // id -> file names
  for (int j = 0; j < 4; ++j) {  // 6 files: enough for a kill mid-file, short under ASan
    httplib::MultipartFormDataItems items;
    std::vector<std::string> names;
    for (int k = 0; k <= j % 2; ++k) {
      const std::string& name = clips[size_t(j + k) % clips.size()];
      items.push_back({"file", slurp_file(clip(name)), name, "audio/wav"});
      names.push_back(name);
    }
    auto r = c.Post("/v1/jobs", items);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    jobs[json_of(r)["id"]] = names;
  }

  // SIGKILL worker 1 while it holds a file (its started marker is there, its result not yet).
  const std::string w1_name = "-" + std::to_string(w1->pid()) + "-w0";
  std::string killed_during;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (killed_during.empty() && std::chrono::steady_clock::now() < until) {
    for (const auto& [id, names] : jobs) {
      for (size_t n = 0; n < names.size() && killed_during.empty(); ++n) {
        const std::string who = store.started_by(id, int(n));
        if (who.find(w1_name) != std::string::npos && !store.has_result(id, int(n))) {
          w1->signal(SIGKILL);
          killed_during = id + "/" + std::to_string(n);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_FALSE(killed_during.empty()) << "worker 1 never held a file";
  EXPECT_EQ(w1->wait(10), 128 + SIGKILL);

  for (const auto& [id, names] : jobs) {
    json st;
    for (int i = 0; i < 12; ++i) {
      st = json_of(c.Get(("/v1/jobs/" + id + "?wait=10").c_str()));
      if (st.value("state", "") == "done" || st.value("state", "") == "failed") break;
    }
    ASSERT_EQ(st.value("state", ""), "done") << id << ": " << st.dump() << "\nworker2:\n"
                                             << slurp_file(dir / "worker2.log") << "\nreporter:\n"
                                             << slurp_file(dir / "reporter.log");
    // Each file exactly once: in the status, in events.json, and as one result file.
    ASSERT_EQ(st["files"].size(), names.size());
    const json ev = json_of(c.Get(("/v1/jobs/" + id + "/files/events.json").c_str()));
    ASSERT_EQ(ev["files"].size(), names.size()) << ev.dump();
    std::multiset<std::string> listed;
    for (const auto& f : ev["files"]) {
      listed.insert(f["path"].get<std::string>());
      EXPECT_TRUE(f["ok"].get<bool>()) << f.dump();
    }
    EXPECT_EQ(listed, std::multiset<std::string>(names.begin(), names.end()));
    const auto job = store.read_job(id);
    ASSERT_TRUE(job);
    EXPECT_EQ(store.result_count(*job), names.size());
    EXPECT_TRUE(store.output(id, "report.html")) << id;
    // events.csv rows: exactly the events of the results, no duplicates from the retry.
    const std::string csv = c.Get(("/v1/jobs/" + id + "/files/events.csv").c_str())->body;
    size_t rows = size_t(std::count(csv.begin(), csv.end(), '\n')) - 1, events = 0;
    for (const auto& f : st["files"]) events += f["events"].size();
    EXPECT_EQ(rows, events) << csv;
  }
  // The file in hand when worker 1 died was redone by worker 2.
  {
    const auto slash = killed_during.find('/');
    EXPECT_EQ(store.started_by(killed_during.substr(0, slash), std::stoi(killed_during.substr(slash + 1))).find(w1_name),
              std::string::npos);
  }
  // Nothing left in the queue; the gateway's metrics say so.
  const std::string metrics = c.Get("/metrics")->body;
  EXPECT_NE(metrics.find("earmark_queue_depth{stream=\"earmark:detect\"} 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("earmark_queue_depth{stream=\"earmark:report\"} 0\n"), std::string::npos) << metrics;
  httplib::Client w2c("127.0.0.1", w2_port);
  EXPECT_NE(w2c.Get("/metrics")->body.find("earmark_files_processed_total{result=\"ok\"}"), std::string::npos);

  // Graceful stop of every role: exit 0.
  for (auto* p : {gateway.get(), w2.get(), reporter.get()}) p->signal(SIGTERM);
  EXPECT_EQ(gateway->wait(30), 0) << slurp_file(dir / "gateway.log");
  EXPECT_EQ(w2->wait(30), 0) << slurp_file(dir / "worker2.log");
  EXPECT_EQ(reporter->wait(30), 0) << slurp_file(dir / "reporter.log");
}

TEST(ServeRoles, GatewayWorkersReporterOverRedisSurviveAKilledWorker) {
  REQUIRE_REDIS();
  EARMARK_REQUIRE_SHARED();
  TempDir dir;
  Redis redis(dir.path());
  ASSERT_TRUE(redis_ping(redis.port()));
  const std::string folder = (dir / "store").string();
  serve::Store store(folder);
  roles_survive_a_killed_worker(dir.path(), redis, {"EARMARK_STORE=" + folder}, store);
}

// The same with the store in an S3 bucket: the roles share no folder at all.
TEST(ServeRoles, SharingOnlyAnS3BucketSurviveAKilledWorker) {
  REQUIRE_REDIS();
  REQUIRE_S3_SERVER();
  EARMARK_REQUIRE_SHARED();
  TempDir dir;
  Redis redis(dir.path());
  ASSERT_TRUE(redis_ping(redis.port()));
  S3Server s3(dir.path(), {"earmark"});
  ASSERT_TRUE(port_open(s3.port())) << s3.log();
  serve::Store store(serve::open_bucket(s3.settings("earmark", "roles")));
  auto env = s3.env();
  env.push_back("EARMARK_STORE=s3://earmark/roles");
  roles_survive_a_killed_worker(dir.path(), redis, env, store);
}

bool redis_command(int port, const std::vector<std::string>& args) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) {
    if (c) redisFree(c);
    return false;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) argv.push_back(a.c_str()), lens.push_back(a.size());
  auto* r = static_cast<redisReply*>(redisCommandArgv(c, int(argv.size()), argv.data(), lens.data()));
  const bool ok = r && r->type != REDIS_REPLY_ERROR;
  if (r) freeReplyObject(r);
  redisFree(c);
  return ok;
}

// Issue 14.6: Redis restarts empty (no persistence) while a job runs. Without a restart of the
// service, the consumer group is made again, the lost files are queued again by the
// reconciler, the job ends done, and new work runs.
TEST(ServeRoles, RedisRestartedEmptyMidJobHealsWithoutRestartingTheService) {
  REQUIRE_REDIS();
  EARMARK_REQUIRE_SHARED();
  TempDir dir;
  auto redis = std::make_unique<Redis>(dir.path());
  const int redis_port = redis->port();
  ASSERT_TRUE(redis_ping(redis_port));
  serve::ServeConfig cfg;
  cfg.host = "127.0.0.1";
  cfg.port = 0;
  cfg.store = (dir / "store").string();
  cfg.scratch = (dir / "scratch").string();
  cfg.queue = redis->url();
  cfg.workers = 1;
  cfg.models_dir = models_dir().string();
  cfg.lease_s = 2;
  cfg.reconcile_s = 1;
  serve::Service svc(cfg);
  const int port = svc.start();
  ASSERT_TRUE(wait_ready(port, 120));
  serve::Store store(cfg.store);

  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  httplib::MultipartFormDataItems items;
  const std::vector<std::string> names = {"speech.wav", "music.wav", "typing.wav"};
  for (const auto& n : names) items.push_back({"file", slurp_file(clip(n)), n, "audio/wav"});
  auto r = c.Post("/v1/jobs", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json_of(r)["id"];
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!store.started(id, 0) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(store.started(id, 0));

  redis.reset();  // killed: every message and the consumer group are gone
  redis = std::make_unique<Redis>(dir.path(), redis_port);
  ASSERT_TRUE(redis_ping(redis_port));

  json st;
  for (int i = 0; i < 12; ++i) {
    st = json_of(c.Get(("/v1/jobs/" + id + "?wait=10").c_str()));
    if (st.value("state", "") == "done" || st.value("state", "") == "failed") break;
  }
  ASSERT_EQ(st.value("state", ""), "done") << st.dump();
  ASSERT_EQ(st["files"].size(), names.size());
  for (const auto& f : st["files"]) EXPECT_EQ(f["state"], "done") << f.dump();
  // New work after the restart runs too, and the service is ready.
  auto d = c.Post("/v1/detect?name=speech.wav", slurp_file(clip("speech.wav")), "audio/wav");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, 200) << d->body;
  EXPECT_TRUE(wait_ready(port, 10));
  const std::string metrics = c.Get("/metrics")->body;
  EXPECT_NE(metrics.find("earmark_requeued_total "), std::string::npos) << metrics;
}

// Issue 14.6: /readyz says when this process cannot read the queue although Redis answers
// PING (here the report stream's key holds a string, so no consumer group can be made), and
// turns green once it can.
TEST(ServeRoles, ReadinessReportsAQueueThatCannotBeRead) {
  REQUIRE_REDIS();
  TempDir dir;
  Redis redis(dir.path());
  ASSERT_TRUE(redis_ping(redis.port()));
  ASSERT_TRUE(redis_command(redis.port(), {"SET", serve::kReportStream, "not a stream"}));
  serve::ServeConfig cfg;
  cfg.host = "127.0.0.1";
  cfg.port = 0;
  cfg.role = "reporter";
  cfg.store = (dir / "store").string();
  cfg.scratch = (dir / "scratch").string();
  cfg.queue = redis.url();
  serve::Service svc(cfg);
  const int port = svc.start();
  httplib::Client c("127.0.0.1", port);
  json ready;
  for (int i = 0; i < 50; ++i) {
    auto r = c.Get("/readyz");
    ASSERT_TRUE(r);
    ready = json_of(r);
    if (r->status == 503 && ready.contains("queue_error")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(ready["checks"]["queue"].get<bool>()) << ready.dump();
  EXPECT_NE(ready.value("queue_error", "").find("WRONGTYPE"), std::string::npos) << ready.dump();
  ASSERT_TRUE(redis_command(redis.port(), {"DEL", serve::kReportStream}));
  EXPECT_TRUE(wait_ready(port, 10));
}

}  // namespace
