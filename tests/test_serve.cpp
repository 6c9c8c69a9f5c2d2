// earmark serve, in-process (role all, memory queue) on a loopback ephemeral port, with the
// real model and real clips: sync detect, async jobs, labels, metrics, bad inputs, the web
// page in headless Chromium, and the CLI's graceful shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <regex>

#include "serve/http_front.hpp"
#include "serve/queue.hpp"
#include "serve/server.hpp"
#include "serve/store.hpp"
#include "serve_support.hpp"

using namespace earmark::testing;
using nlohmann::json;
namespace serve = earmark::serve;

namespace {

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(shared_dir() / "README.md")) return;
    store_ = new TempDir;
    serve::ServeConfig cfg;
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.store = store_->path().string();
    cfg.queue = "memory";
    cfg.workers = 1;
    cfg.models_dir = models_dir().string();
    cfg.max_upload_mb = 1.5;  // the 10 s clips are 640 kB
    cfg.demo_dir = (shared_dir() / "audio").string();
    cfg.max_inflight = 1;  // the tests send one upload at a time, except the one about this limit
    cfg.head_timeout_s = 2;  // slow clients are cut off after 2 s (the default is 10)
    svc_ = new serve::Service(cfg);
    port_ = svc_->start();
    ready_ = wait_ready(port_, 120);
  }
  static void TearDownTestSuite() {
    delete svc_;
    delete store_;
    svc_ = nullptr;
    store_ = nullptr;
  }
  void SetUp() override {
    EARMARK_REQUIRE_SHARED();
    ASSERT_TRUE(ready_) << "the server did not become ready";
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    return c;
  }
  static json detect(const std::string& name) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    auto r = c.Post(("/v1/detect?name=" + name).c_str(), slurp_file(clip(name)), "audio/wav");
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, 200) << r->body;
    return json_of(r);
  }
  // Polls the job until it is done or failed.
  json wait_job(const std::string& id) const {
    auto c = client();
    json j;
    for (int i = 0; i < 30; ++i) {
      auto r = c.Get(("/v1/jobs/" + id + "?wait=10").c_str());
      if (!r) break;
      j = json_of(r);
      if (j.value("state", "") == "done" || j.value("state", "") == "failed") break;
    }
    return j;
  }

  static std::vector<std::string> labels_of(const json& file) {
    std::vector<std::string> v;
    for (const auto& e : file.at("events")) v.push_back(e.at("label").get<std::string>());
    return v;
  }

  static inline TempDir* store_ = nullptr;
  static inline serve::Service* svc_ = nullptr;
  static inline int port_ = 0;
  static inline bool ready_ = false;
};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Value of one Prometheus sample line (`name{labels} value`); -1 if absent.
double metric(const std::string& text, const std::string& series) {
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);)
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

TEST(ServeQueue, MemoryQueueRedeliversAfterTheLeaseAndAckRemoves) {
  auto q = serve::make_queue("memory");
  q->publish("s", "a");
  q->publish("s", "b");
  EXPECT_EQ(q->depth("s"), 2u);
  using ms = std::chrono::milliseconds;
  auto m1 = q->consume("s", "c1", ms(10), ms(100));
  ASSERT_TRUE(m1);
  EXPECT_EQ(m1->body, "a");
  EXPECT_EQ(m1->deliveries, 1);
  auto m2 = q->consume("s", "c2", ms(10), ms(100));
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->body, "b");
  q->ack(*m2);
  EXPECT_EQ(q->depth("s"), 1u);
  EXPECT_FALSE(q->consume("s", "c2", ms(10), ms(100000)));  // "a" is leased to c1
  // c1 goes silent: after the lease c2 gets "a" again, marked as a second delivery.
  auto again = q->consume("s", "c2", ms(1000), ms(100));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "a");
  EXPECT_EQ(again->deliveries, 2);
  q->ack(*again);
  EXPECT_EQ(q->depth("s"), 0u);
  EXPECT_THROW(serve::make_queue("amqp://x"), earmark::Error);
  EXPECT_THROW(serve::make_queue("redis://host:notaport"), earmark::Error);
}

TEST(ServeStore, UploadNamesAreSanitisedAndPathsRefused) {
  EXPECT_EQ(serve::sanitise_upload_name("my clip (1).wav"), "my_clip__1_.wav");
  EXPECT_EQ(serve::sanitise_upload_name(".hidden.wav"), "hidden.wav");
  EXPECT_EQ(serve::sanitise_upload_name(""), "upload");
  // A long name is cut to its last 100 characters before leading dots are stripped, so the cut
  // cannot leave a hidden file (found by fuzz/fuzz_upload).
  const std::string cut = serve::sanitise_upload_name(std::string(10, 'a') + std::string(100, '.') + "x.wav");
  EXPECT_NE(cut.front(), '.') << cut;
  EXPECT_EQ(cut, "x.wav");
  EXPECT_THROW(serve::sanitise_upload_name("../../etc/passwd"), earmark::Error);
  EXPECT_THROW(serve::sanitise_upload_name("C:\\x.wav"), earmark::Error);
  EXPECT_THROW(serve::sanitise_upload_name(".."), earmark::Error);
  EXPECT_TRUE(serve::valid_job_id("0123456789abcdef"));
  EXPECT_FALSE(serve::valid_job_id("../0123456789abc"));
}

TEST_F(Serve, HealthAndReadiness) {
  auto c = client();
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json_of(h).value("status", ""), "ok");
  auto r = c.Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  const json j = json_of(r);
  EXPECT_TRUE(j["checks"]["model"].get<bool>());
  EXPECT_TRUE(j["checks"]["queue"].get<bool>());
  EXPECT_TRUE(j["checks"]["store"].get<bool>());
}

TEST_F(Serve, SyncDetectFindsSpeech) {
  const json j = detect("speech.wav");
  ASSERT_EQ(j["files"].size(), 1u) << j.dump();
  const json& f = j["files"][0];
  EXPECT_TRUE(f["ok"].get<bool>());
  EXPECT_EQ(f["path"], "speech.wav");
  EXPECT_NEAR(f["info"]["duration_s"].get<double>(), 10.0, 0.05);
  EXPECT_TRUE(contains(labels_of(f), "Speech")) << f["events"].dump();
  EXPECT_FALSE(f.contains("frame_scores"));

  // Multipart works the same way.
  auto c = client();
  httplib::MultipartFormDataItems items = {{"file", slurp_file(clip("typing.wav")), "typing.wav", "audio/wav"}};
  auto r = c.Post("/v1/detect", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto typing = labels_of(json_of(r)["files"][0]);
  EXPECT_TRUE(contains(typing, "Typing") || contains(typing, "Computer keyboard")) << r->body;
}

TEST_F(Serve, AsyncJobRunsToDoneWithReportAndFiles) {
  auto c = client();
  httplib::MultipartFormDataItems items = {{"file", slurp_file(clip("speech.wav")), "speech.wav", "audio/wav"},
                                           {"file", slurp_file(clip("music.wav")), "music.wav", "audio/wav"}};
  auto r = c.Post("/v1/jobs", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const json accepted = json_of(r);
  const std::string id = accepted["id"];
  EXPECT_EQ(r->get_header_value("Location"), "/v1/jobs/" + id);
  EXPECT_TRUE(accepted["state"] == "queued" || accepted["state"] == "running") << accepted.dump();
  EXPECT_EQ(accepted["progress"]["files"], 2);

  const json j = wait_job(id);
  ASSERT_EQ(j.value("state", ""), "done") << j.dump();
  EXPECT_EQ(j["progress"]["done"], 2);
  EXPECT_TRUE(contains(labels_of(j["files"][0]), "Speech"));
  EXPECT_TRUE(contains(labels_of(j["files"][1]), "Music")) << j["files"][1].dump();

  auto rep = c.Get(("/v1/jobs/" + id + "/report").c_str());
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->status, 200);
  EXPECT_NE(rep->body.find("<html"), std::string::npos);
  EXPECT_NE(rep->body.find("music.wav"), std::string::npos);
  auto csv = c.Get(("/v1/jobs/" + id + "/files/events.csv").c_str());
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->status, 200);
  EXPECT_EQ(csv->body.rfind("file,onset,offset,label,confidence,kind\n", 0), 0u);
  EXPECT_NE(csv->body.find("speech.wav"), std::string::npos);
  auto labels = c.Get(("/v1/jobs/" + id + "/files/speech.labels.txt").c_str());
  ASSERT_TRUE(labels);
  EXPECT_EQ(labels->status, 200);
  EXPECT_NE(labels->body.find("\tSpeech\n"), std::string::npos);
  auto ev = c.Get(("/v1/jobs/" + id + "/files/events.json").c_str());
  ASSERT_TRUE(ev);
  EXPECT_EQ(json_of(ev)["files"].size(), 2u);
  auto res = c.Get(("/v1/jobs/" + id + "/results/0").c_str());
  ASSERT_TRUE(res);
  EXPECT_TRUE(json_of(res)["files"][0].contains("spectrogram"));
  auto audio = c.Get(("/v1/jobs/" + id + "/audio/1").c_str());
  ASSERT_TRUE(audio);
  EXPECT_EQ(audio->body, slurp_file(clip("music.wav")));
  EXPECT_EQ(audio->get_header_value("Content-Type"), "audio/wav");
}

// A valid WAV that also carries an HTML page with a script (in a LIST/INFO comment chunk).
std::string wav_carrying_html(const fs::path& dir) {
  const fs::path p = dir / "tone.wav";
  write_wav16(p, sine(440, 1.0, 16000), 16000, 1);
  std::string wav = slurp_file(p);
  std::string html = "<html><body><script>document.title='owned'</script></body></html>";
  if (html.size() % 2) html += ' ';
  std::string info = "INFO";
  info += "ICMT";
  const uint32_t n = uint32_t(html.size());
  info.append(reinterpret_cast<const char*>(&n), 4);
  info += html;
  const uint32_t list_size = uint32_t(info.size());
  wav += "LIST";
  wav.append(reinterpret_cast<const char*>(&list_size), 4);
  wav += info;
  const uint32_t riff = uint32_t(wav.size() - 8);
  wav.replace(4, 4, reinterpret_cast<const char*>(&riff), 4);
  return wav;
}

// Issue 14.1: an upload named evil.html that is valid audio and carries HTML is never served
// as HTML; every answer forbids sniffing and carries a Content-Security-Policy.
TEST_F(Serve, UploadsAreServedAsAudioOrOctetStreamNeverAsHtml) {
  TempDir dir;
  const std::string wav = wav_carrying_html(dir.path());
  auto c = client();
  httplib::MultipartFormDataItems items = {{"file", wav, "evil.html", "text/html"}};
  auto r = c.Post("/v1/jobs", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json_of(r)["id"];
  auto audio = c.Get(("/v1/jobs/" + id + "/audio/0").c_str());
  ASSERT_TRUE(audio);
  ASSERT_EQ(audio->status, 200);
  EXPECT_EQ(audio->body, wav);
  EXPECT_EQ(audio->get_header_value("Content-Type"), "application/octet-stream");
  EXPECT_EQ(audio->get_header_value("Content-Disposition").rfind("attachment", 0), 0u)
      << audio->get_header_value("Content-Disposition");
  const json j = wait_job(id);
  ASSERT_EQ(j.value("state", ""), "done") << j.dump();

  // Every answer: nosniff and a policy that runs nothing (the page and the report have their own).
  for (const std::string& path : std::vector<std::string>{"/healthz", "/readyz", "/metrics", "/v1/labels", "/no/such/thing", "/v1/jobs/" + id,
                                 "/v1/jobs/" + id + "/audio/0", "/v1/jobs/" + id + "/results/0",
                                 "/v1/jobs/" + id + "/files/events.csv", "/v1/jobs/zzz", "/app.js", "/app.css"}) {
    auto a = c.Get(path.c_str());
    ASSERT_TRUE(a) << path;
    EXPECT_EQ(a->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(a->get_header_value_count("Content-Security-Policy"), 1u) << path;
    const std::string csp = a->get_header_value("Content-Security-Policy");
    EXPECT_EQ(csp.rfind("default-src 'none'", 0), 0u) << path << ": " << csp;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << path << ": " << csp;
    EXPECT_EQ(a->get_header_value("Content-Type").find("text/html"), std::string::npos) << path;
  }
  // Downloads are attachments, typed from the allowlist; the report, even downloaded, runs no script.
  auto html = c.Get(("/v1/jobs/" + id + "/files/report.html").c_str());
  EXPECT_EQ(html->get_header_value("Content-Disposition"), "attachment; filename=\"report.html\"");
  EXPECT_EQ(html->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_NE(html->get_header_value("Content-Security-Policy").find("sandbox"), std::string::npos);
  EXPECT_EQ(c.Get(("/v1/jobs/" + id + "/files/events.csv").c_str())->get_header_value("Content-Disposition"),
            "attachment; filename=\"events.csv\"");
  // The report shown in the browser runs no script at all.
  auto rep = c.Get(("/v1/jobs/" + id + "/report").c_str());
  ASSERT_EQ(rep->status, 200);
  const std::string rcsp = rep->get_header_value("Content-Security-Policy");
  EXPECT_NE(rcsp.find("sandbox"), std::string::npos) << rcsp;
  EXPECT_EQ(rcsp.find("script-src"), std::string::npos) << rcsp;
  // The page: its own script and style only, nothing inline.
  auto page = c.Get("/");
  const std::string pcsp = page->get_header_value("Content-Security-Policy");
  EXPECT_NE(pcsp.find("script-src 'self'"), std::string::npos) << pcsp;
  EXPECT_EQ(pcsp.find("unsafe"), std::string::npos) << pcsp;
  EXPECT_EQ(page->body.find("<script>"), std::string::npos);
  EXPECT_EQ(page->body.find("style="), std::string::npos);
}

// Issue 14.2: a chunked upload (no Content-Length) over --max-upload-mb is refused with 413
// while it arrives, not read whole into memory first.
TEST_F(Serve, ChunkedUploadsOverTheLimitGet413WhileTheyArrive) {
  const bool peak = reset_peak_rss();
  const long before = rss_kb();
  const std::string piece(64 * 1024, 'x');
  std::string chunk;
  {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    chunk = size + piece + "\r\n";
  }
  size_t pieces = 0;
  const size_t max_pieces = 64 * 16;  // 64 MB, against a limit of 1.5 MB
  const RawReply r = raw_exchange(port_,
                                  "POST /v1/jobs?name=big.wav HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n",
                                  [&]() -> std::string {
                                    if (pieces > max_pieces) return {};
                                    return ++pieces > max_pieces ? std::string("0\r\n\r\n") : chunk;
                                  },
                                  60);
  EXPECT_EQ(r.status, 413) << r.head;
  EXPECT_NE(r.head.find("Connection: close"), std::string::npos) << r.head;
  EXPECT_LT(r.sent, size_t(16) << 20) << "the server read on well past the limit";
  if (peak) {
    EXPECT_LT(rss_kb("VmHWM") - before, 32 * 1024) << "kB more at the peak";
  }
  // The same with a Content-Length over the limit, and the server still takes a good upload.
  const RawReply cl = raw_exchange(port_,
                                   "POST /v1/jobs?name=big.wav HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                                   "Content-Length: 67108864\r\n\r\n",
                                   [&]() -> std::string { return piece; }, 60);
  EXPECT_EQ(cl.status, 413) << cl.head;
  EXPECT_EQ(detect("speech.wav")["files"].size(), 1u);
}

// Issue 14.4: a status call reads the small per-file summaries, never the full results; files
// are served in pieces (Range included), never read whole into memory.
TEST_F(Serve, StatusComesFromSummariesAndFilesAreServedInPieces) {
  auto c = client();
  httplib::MultipartFormDataItems items = {{"file", slurp_file(clip("speech.wav")), "speech.wav", "audio/wav"}};
  auto r = c.Post("/v1/jobs", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json_of(r)["id"];
  const json done = wait_job(id);
  ASSERT_EQ(done.value("state", ""), "done") << done.dump();
  ASSERT_FALSE(done["files"][0]["events"].empty());

  // The full result becomes 256 MB that is not JSON: status must not need it.
  const size_t big = size_t(256) << 20;
  const fs::path result = store_->path() / "jobs" / id / "results" / "0.json";
  const std::string original = slurp_file(result);
  fs::resize_file(result, big);  // sparse: zeros after the JSON
  const bool peak = reset_peak_rss();
  const long before = rss_kb();
  const auto t0 = std::chrono::steady_clock::now();
  const json st = json_of(c.Get(("/v1/jobs/" + id).c_str()));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(st.value("state", ""), "done") << st.dump();
  EXPECT_EQ(st["files"][0]["state"], "done") << st.dump();
  EXPECT_EQ(st["files"][0]["events"], done["files"][0]["events"]);
  EXPECT_EQ(st["progress"]["done"], 1);
  EXPECT_LT(took, 1.0);

  // A range of the result: just those bytes.
  auto part = c.Get(("/v1/jobs/" + id + "/results/0").c_str(), {{"Range", "bytes=0-99"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, original.substr(0, 100));
  EXPECT_EQ(part->get_header_value("Content-Range"), "bytes 0-99/" + std::to_string(big));
  // The whole of it, taken in pieces by a client that keeps nothing.
  size_t received = 0;
  auto whole = c.Get(("/v1/jobs/" + id + "/results/0").c_str(), [&](const char*, size_t n) {
    received += n;
    return true;
  });
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->status, 200);
  EXPECT_EQ(received, big);
  if (peak) {
    EXPECT_LT(rss_kb("VmHWM") - before, 64 * 1024) << "kB more at the peak";
  }
  // The audio too, with a Range as a browser's <audio> asks.
  auto head = c.Get(("/v1/jobs/" + id + "/audio/0").c_str(), {{"Range", "bytes=0-3"}});
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 206);
  EXPECT_EQ(head->body, "RIFF");
  EXPECT_EQ(head->get_header_value("Content-Type"), "audio/wav");
}

// Issue 14.3: more clients than HTTP threads, each sending its request head a byte at a time,
// neither keep /healthz from answering at once nor hold on past the head deadline (408).
TEST_F(Serve, SlowHeadersNeitherStarveOthersNorHoldOn) {
  const int slow = 24;  // more than the 16 HTTP threads
  std::vector<int> fds;
  for (int i = 0; i < slow; ++i) {
    const int fd = connect_loopback(port_);
    ASSERT_GE(fd, 0);
    const std::string start = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    ASSERT_EQ(::send(fd, start.data(), start.size(), MSG_NOSIGNAL), ssize_t(start.size()));
    fds.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread dribble([&] {  // one byte per connection every 0.3 s, until told to stop
    while (!stop) {
      for (int fd : fds) ::send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(2, 0);
    c.set_read_timeout(2, 0);
    const auto t = std::chrono::steady_clock::now();
    auto r = c.Get("/healthz");
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    EXPECT_TRUE(r) << "no answer to /healthz while slow clients send their heads";
    if (!r) break;
    EXPECT_EQ(r->status, 200);
    EXPECT_LT(took, 1.0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  // Past the 2 s head deadline every slow client has its 408, although it kept sending.
  std::this_thread::sleep_until(t0 + std::chrono::milliseconds(3500));
  size_t timed_out = 0;
  for (int fd : fds) {
    pollfd p{fd, POLLIN, 0};
    std::string got;
    char buf[4096];
    while (::poll(&p, 1, 1000) > 0) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, size_t(n));
    }
    timed_out += got.rfind("HTTP/1.1 408", 0) == 0 ? 1 : 0;
  }
  stop = true;
  dribble.join();
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(timed_out, size_t(slow));
  const std::string m = client().Get("/metrics")->body;
  EXPECT_GE(metric(m, R"(earmark_http_rejected_total{reason="head_timeout"})"), double(slow)) << m;
}

// Issue 14.5: 200 uploads at once each get an HTTP answer (accepted, or 429/503 with
// Retry-After), never a reset; unknown methods get 405 with Allow; a body framed two ways, 400.
TEST_F(Serve, ManyUploadsAtOnceAllGetAnHttpAnswer) {
  const std::string wav = slurp_file(clip("speech.wav"));
  const std::string head = "POST /v1/jobs?name=speech.wav HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: " +
                           std::to_string(wav.size()) + "\r\n\r\n";
  const int n = 200;
  std::vector<RawReply> replies(n);
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i)
    clients.emplace_back([&, i] {
      size_t off = 0;
      replies[size_t(i)] = raw_exchange(port_, head,
                                        [&]() -> std::string {
                                          const std::string piece = wav.substr(std::min(off, wav.size()), 65536);
                                          off += piece.size();
                                          return piece;
                                        },
                                        120);
    });
  for (auto& t : clients) t.join();
  std::map<int, int> by_status;
  int resets = 0;
  for (const auto& r : replies) {
    ++by_status[r.status];
    resets += r.reset && r.status == 0 ? 1 : 0;
    if (r.status == 429 || r.status == 503) {
      EXPECT_NE(r.head.find("Retry-After: "), std::string::npos) << r.head;
    }
  }
  std::string summary;
  for (const auto& [st, count] : by_status) summary += std::to_string(st) + ": " + std::to_string(count) + "  ";
  EXPECT_EQ(by_status.count(0), 0u) << "connections without an HTTP answer; " << summary;
  EXPECT_EQ(resets, 0) << summary;
  EXPECT_GE(by_status[202], 1) << summary;
  for (const auto& [st, count] : by_status) EXPECT_TRUE(st == 202 || st == 429 || st == 503) << summary;
  // The accepted jobs run to their end before the next test (whose counters must not move).
  for (const auto& r : replies) {
    const auto at = r.head.find("Location: /v1/jobs/");
    if (r.status != 202 || at == std::string::npos) continue;
    const std::string id = r.head.substr(at + 19, 16);
    EXPECT_EQ(wait_job(id).value("state", ""), "done") << id;
  }

  auto ask = [&](const std::string& request) {
    return raw_exchange(port_, request, [] { return std::string(); }, 10);
  };
  const RawReply del = ask("DELETE /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(del.status, 405) << del.head;
  EXPECT_NE(del.head.find("Allow: POST\r\n"), std::string::npos) << del.head;
  const RawReply put = ask("PUT /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(put.status, 405) << put.head;
  EXPECT_NE(put.head.find("Allow: GET, HEAD"), std::string::npos) << put.head;
  EXPECT_EQ(ask("PATCH /no/such/path HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").status, 404);
  const RawReply two = ask("POST /v1/detect?name=a.wav HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                           "Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef");
  EXPECT_EQ(two.status, 400) << two.head;
  const RawReply both = ask("POST /v1/detect?name=a.wav HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(both.status, 400) << both.head;
}

// Issue 14.3, the body side: a request whose body falls below the minimum average rate after
// the grace period is ended (here 1 s and 2 kB/s), instead of holding its thread for as long as
// each byte comes within the read timeout (30 s).
TEST(ServeFront, SlowBodiesAreCutOffAtTheMinimumRate) {
  serve::FrontServer http;
  serve::FrontLimits limits;
  limits.threads = 2;
  limits.body_grace_s = 1;
  limits.min_body_bytes_s = 2048;
  http.set_limits(limits);
  std::atomic<int> cut{0};
  http.Post("/upload", [&](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& reader) {
    size_t n = 0;
    const bool ok = reader([&](const char*, size_t len) {
      n += len;
      return true;
    });
    if (!ok) ++cut;
    res.set_content(std::to_string(n), "text/plain");
  });
  http.Get("/ping", [](const httplib::Request&, httplib::Response& res) { res.set_content("pong", "text/plain"); });
  const int port = http.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  http.widen_backlog();
  std::thread t([&] { http.listen_after_bind(); });
  ASSERT_TRUE(wait_ready(port, 10, "/ping"));

  const int fd = connect_loopback(port);
  ASSERT_GE(fd, 0);
  const std::string head = "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
  ::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(8)) {
    ::send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);  // 10 bytes/s, far below 2 kB/s
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {  // an answer, or the end of the connection
      closed = true;
      break;
    }
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(fd);
  EXPECT_TRUE(closed) << "the slow body was still being read after 8 s";
  EXPECT_LT(took, 4.0);
  // A body at full speed is read whole, and the server answers others throughout.
  httplib::Client c("127.0.0.1", port);
  auto r = c.Post("/upload", std::string(200000, 'b'), "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "200000");
  http.stop();
  t.join();
  EXPECT_EQ(cut.load(), 1);
}

TEST_F(Serve, LabelsListTheModel) {
  auto c = client();
  auto r = c.Get("/v1/labels");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const json j = json_of(r);
  EXPECT_EQ(j["count"], 527);
  EXPECT_EQ(j["labels"][0]["name"], "Speech");
  EXPECT_EQ(j["labels"][0]["mid"], "/m/09x0r");
}

TEST_F(Serve, MetricsCountersMove) {
  auto c = client();
  auto before = c.Get("/metrics");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  const std::string ok_detect = R"(earmark_http_requests_total{route="/v1/detect",method="POST",code="200"})";
  const double d0 = std::max(0.0, metric(before->body, ok_detect));
  const double a0 = metric(before->body, "earmark_audio_seconds_total");
  ASSERT_GE(a0, 0);
  detect("music.wav");
  // A request is counted right after its answer is sent: give the server a moment.
  std::string m;
  for (int i = 0; i < 50; ++i) {
    auto after = c.Get("/metrics");
    ASSERT_TRUE(after);
    m = after->body;
    if (metric(m, ok_detect) > d0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(metric(m, ok_detect), d0 + 1);
  EXPECT_NEAR(metric(m, "earmark_audio_seconds_total") - a0, 10.0, 0.05);
  EXPECT_GE(metric(m, R"(earmark_http_request_duration_seconds_count{route="/v1/detect"})"), 1);
  EXPECT_GE(metric(m, R"(earmark_queue_depth{stream="earmark:detect"})"), 0);
  EXPECT_GE(metric(m, R"(earmark_jobs{state="done"})"), 1);
  EXPECT_NE(m.find("# TYPE earmark_http_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(m.find(R"(earmark_http_request_duration_seconds_bucket{route="/v1/detect",le="+Inf"})"), std::string::npos);
}

TEST_F(Serve, BadInputsGetClear4xxAndTheServerStaysUp) {
  auto c = client();
  const std::string speech = slurp_file(clip("speech.wav"));
  struct Case {
    std::string what;
    httplib::Result r;
    int status;
    std::string code;
  };
  std::vector<Case> cases;
  cases.push_back({"non-audio", c.Post("/v1/detect?name=notes.wav", std::string(5000, 'x') + "this is text", "audio/wav"), 422, "not_audio"});
  cases.push_back({"truncated header", c.Post("/v1/detect?name=cut.wav", speech.substr(0, 30), "audio/wav"), 422, "not_audio"});
  cases.push_back({"empty", c.Post("/v1/detect?name=empty.wav", std::string(), "audio/wav"), 400, "empty_upload"});
  cases.push_back({"wrong content type", c.Post("/v1/detect", speech, "text/plain"), 415, "unsupported_media_type"});
  cases.push_back({"path-like filename",
                   c.Post("/v1/jobs", httplib::MultipartFormDataItems{{"file", speech, "../../etc/passwd.wav", "audio/wav"}}),
                   400, "bad_filename"});
  cases.push_back({"no file part", c.Post("/v1/jobs", httplib::MultipartFormDataItems{{"note", "hello", "", ""}}), 400, "no_file"});
  cases.push_back({"bad job id", c.Get("/v1/jobs/not-a-job"), 400, "bad_job_id"});
  cases.push_back({"path as job id", c.Get("/v1/jobs/..%2F..%2Fetc"), 404, "not_found"});
  cases.push_back({"unknown job", c.Get("/v1/jobs/0123456789abcdef"), 404, "job_not_found"});
  cases.push_back({"unknown route", c.Get("/v2/nothing"), 404, "not_found"});
  for (auto& k : cases) {
    ASSERT_TRUE(k.r) << k.what << ": no answer";
    EXPECT_EQ(k.r->status, k.status) << k.what << ": " << k.r->body;
    const json e = json_of(k.r);
    ASSERT_TRUE(e.contains("error")) << k.what << ": " << k.r->body;
    EXPECT_EQ(e["error"]["code"], k.code) << k.what;
    EXPECT_FALSE(e["error"]["message"].get<std::string>().empty()) << k.what;
  }
  // A file cut in the middle of its samples decodes what is there, with a warning.
  {
    auto r = c.Post("/v1/detect?name=half.wav", speech.substr(0, speech.size() / 2), "audio/wav");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_NEAR(json_of(r)["files"][0]["info"]["duration_s"].get<double>(), 5.0, 0.1) << r->body;
  }
  // Too large: over --max-upload-mb (1.5 MB here).
  {
    auto r = c.Post("/v1/detect?name=big.wav", speech + speech + speech, "audio/wav");
    ASSERT_TRUE(r) << "no answer to a too-large upload";
    EXPECT_EQ(r->status, 413) << r->body;
    EXPECT_EQ(json_of(r)["error"]["code"], "payload_too_large") << r->body;
  }
  // Output names that are paths are refused, not resolved.
  {
    const json j = json_of(c.Post("/v1/jobs", httplib::MultipartFormDataItems{{"file", speech, "s.wav", "audio/wav"}}));
    const std::string id = j.value("id", "");
    ASSERT_FALSE(id.empty()) << j.dump();
    wait_job(id);
    auto r = c.Get(("/v1/jobs/" + id + "/files/..%2Fjob.json").c_str());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_EQ(json_of(r)["error"]["code"], "bad_filename");
    auto missing = c.Get(("/v1/jobs/" + id + "/files/nothing.csv").c_str());
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
  }
  // Still serving, and still detecting.
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_TRUE(contains(labels_of(detect("speech.wav")["files"][0]), "Speech"));
  // Nothing failed inside the server.
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(metric(m->body, R"(earmark_errors_total{code="internal"})"), -1);
}

TEST_F(Serve, UploadsBeyondTheConcurrencyLimitGet429WithRetryAfter) {
  auto count_jobs = [] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(store_->path() / "jobs")) n += e.is_directory() ? 1 : 0;
    return n;
  };
  const size_t before = count_jobs();
  json first;
  std::thread busy([&] { first = detect("typing.wav"); });
  // Once the first upload is in the store it holds the only slot until its result is there.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (count_jobs() == before && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto c = client();
  auto r = c.Post("/v1/detect?name=speech.wav", slurp_file(clip("speech.wav")), "audio/wav");
  busy.join();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429) << r->body;
  EXPECT_EQ(json_of(r)["error"]["code"], "too_many_requests");
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(first["files"].size(), 1u) << "the upload holding the slot still gets its answer";
}

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    const std::string cmd = std::string("command -v ") + name + " > /dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return name;
  }
  return {};
}

TEST_F(Serve, WebPageShowsTheEventsOfAnUploadInHeadlessChromium) {
  auto c = client();
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<title>Earmark</title>"), std::string::npos);
  EXPECT_EQ(page->body.find("http://"), std::string::npos) << "the page must not load anything from elsewhere";
  EXPECT_EQ(page->body.find("https://"), std::string::npos);

  const std::string chromium = find_chromium();
  EARMARK_REQUIRE_TOOL(!chromium.empty(), "chromium");
  TempDir profile;
  const fs::path dom_file = profile.path() / "dom.html";
  // The page fetches /demo/speech.wav from this server, uploads it as a job, long-polls the
  // job (virtual time stands still while a request is pending) and renders the result.
  const std::string cmd = "timeout 120 " + chromium +
                          " --headless=new --no-sandbox --disable-gpu --disable-background-networking "
                          "--disable-component-update --disable-sync --no-first-run --user-data-dir=\"" +
                          (profile.path() / "p").string() + "\" --virtual-time-budget=60000 --dump-dom " +
                          "\"http://127.0.0.1:" + std::to_string(port_) + "/?demo=speech.wav\" > \"" +
                          dom_file.string() + "\" 2> /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string dom = slurp_file(dom_file);
  EXPECT_NE(dom.find("data-state=\"done\""), std::string::npos) << dom.substr(0, 3000);
  std::vector<std::string> rows;
  for (size_t pos = dom.find("<tr class=\"event"); pos != std::string::npos; pos = dom.find("<tr class=\"event", pos + 1))
    rows.push_back(dom.substr(pos, dom.find("</tr>", pos) - pos));
  ASSERT_FALSE(rows.empty()) << dom.substr(0, 3000);
  // One row per sound: Speech, with the labels rolled up into it (events.rollup) after it.
  bool speech = false, also = false;
  for (const auto& r : rows) {
    speech = speech || r.find("</span>Speech</td>") != std::string::npos ||
             r.find("</span>Speech<span class=\"also\"") != std::string::npos;
    also = also || r.find(" (also: ") != std::string::npos;
  }
  EXPECT_TRUE(speech) << rows.front();
  EXPECT_TRUE(also) << rows.front();
  size_t regions = 0;
  for (size_t pos = dom.find("class=\"region\""); pos != std::string::npos; pos = dom.find("class=\"region\"", pos + 1)) ++regions;
  EXPECT_EQ(regions, rows.size());
  EXPECT_NE(dom.find("data-drawn=\"1\""), std::string::npos) << "the spectrogram was not drawn";
  EXPECT_NE(dom.find("events.csv</a>"), std::string::npos);
  EXPECT_NE(dom.find(">report</a>"), std::string::npos);
}

// The same page driven with the mouse (tests/web_click.js, DevTools protocol): a click on an
// event row plays exactly that stretch of the upload and stops at its offset; a click on the
// spectrogram seeks there.
TEST_F(Serve, WebPageRowsPlayTheirStretchWhenClicked) {
  const std::string chromium = find_chromium();
  EARMARK_REQUIRE_TOOL(!chromium.empty(), "chromium");
  EARMARK_REQUIRE_TOOL(!node_binary().empty(), "node");
  TempDir profile;
  const std::string cmd = "timeout 170 " + node_binary() + " \"" + (source_dir() / "tests" / "web_click.js").string() +
                          "\" " + chromium + " \"http://127.0.0.1:" + std::to_string(port_) +
                          "/?demo=speech.wav\" \"" + (profile.path() / "p").string() + "\" > \"" +
                          (profile.path() / "out.json").string() + "\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const json seen = json::parse(slurp_file(profile.path() / "out.json"));
  ASSERT_EQ(seen["state"], "done") << seen.dump();
  ASSERT_TRUE(seen.contains("clicked_row")) << seen.dump();
  const json row = seen["rows"][seen["clicked_row"].get<size_t>()];
  const double onset = row["onset"], offset = row["offset"];
  ASSERT_GT(onset, 0.0) << "speech.wav has events that do not start at 0: " << seen["rows"].dump();
  const json& samples = seen["samples"];
  ASSERT_GE(samples.size(), 2u) << seen.dump();
  bool played_inside = false;
  for (const auto& s : samples) {
    const double t = s["t"];
    EXPECT_EQ(s["playing_row"], seen["clicked_row"]) << "the clicked row is highlighted: " << s.dump();
    EXPECT_GE(t, onset - 0.05) << "playing starts at the event's onset: " << s.dump();
    EXPECT_LE(t, offset + 0.15) << "and does not run past its offset: " << s.dump();
    played_inside |= !s["paused"].get<bool>() && t > onset + 0.05 && t < offset;
  }
  EXPECT_TRUE(played_inside) << samples.dump();
  const json& last = samples.back();
  EXPECT_TRUE(last["paused"].get<bool>()) << "stopped by itself at the offset: " << samples.dump();
  EXPECT_NEAR(last["t"].get<double>(), offset, 0.15) << samples.dump();
  // The spectrogram click: a quarter of the way in, then playing on (300 ms later).
  const json& seek = seen["seek"];
  const double target = 0.25 * seek["duration"].get<double>();
  EXPECT_FALSE(seek["paused"].get<bool>()) << seek.dump();
  EXPECT_GE(seek["t"].get<double>(), target - 0.1) << seek.dump();
  EXPECT_LE(seek["t"].get<double>(), target + 1.0) << seek.dump();
  EXPECT_EQ(seek["playing_row"], -1) << "no row is highlighted after a seek elsewhere";
}

TEST(ServeCli, StartsFromTheEnvironmentAndStopsCleanlyOnSigterm) {
  EARMARK_REQUIRE_SHARED();
  TempDir dir;
  const int port = free_port();
  Child child({cli_path().string(), "serve", "--host", "127.0.0.1", "--port", std::to_string(port), "--workers", "1"},
              dir / "serve.log",
              {"EARMARK_STORE=" + (dir / "store").string(), "EARMARK_MODELS=" + models_dir().string(),
               "EARMARK_QUEUE=memory"});
  ASSERT_TRUE(wait_ready(port, 120)) << slurp_file(dir / "serve.log");
  EXPECT_TRUE(fs::is_directory(dir / "store" / "jobs"));
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  // A sync detect in flight when SIGTERM arrives still gets its answer: the signal goes out
  // once the upload is in the store.
  int status = 0;
  std::string body;
  std::thread upload([&] {
    if (auto r = c.Post("/v1/detect?name=speech.wav", slurp_file(clip("speech.wav")), "audio/wav")) status = r->status, body = r->body;
  });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto has_job = [&] {
    std::error_code ec;
    return fs::directory_iterator(dir / "store" / "jobs", ec) != fs::directory_iterator();
  };
  while (!has_job() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  child.signal(SIGTERM);
  upload.join();
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(child.wait(60), 0) << slurp_file(dir / "serve.log");
  EXPECT_NE(slurp_file(dir / "serve.log").find("SIGTERM"), std::string::npos);
  // Bad options are refused with a message.
  Child bad({cli_path().string(), "serve", "--role", "worker", "--queue", "memory", "--port", "0"}, dir / "bad.log");
  EXPECT_EQ(bad.wait(60), 2);
  EXPECT_NE(slurp_file(dir / "bad.log").find("needs a shared queue"), std::string::npos) << slurp_file(dir / "bad.log");
}

}  // namespace
