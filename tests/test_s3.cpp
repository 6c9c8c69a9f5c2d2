// The S3-compatible store: Signature V4 against botocore's (tests/golden/sigv4.json, made by
// tools/make_sigv4_golden.py), the listing/error XML, settings, then the store's contract on a
// folder and on a real S3-compatible server (tests/s3_server.js, which checks signatures),
// failures a user meets (wrong secret, no bucket, server down), and `earmark serve` end to end
// on a bucket: in one process, and as gateway + worker + reporter over Redis sharing nothing
// but the bucket.
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <fstream>
#include <set>

#include "serve/s3.hpp"
#include "serve/server.hpp"
#include "serve/store.hpp"
#include "util/time.hpp"
#include "s3_support.hpp"
#include "serve_support.hpp"

using namespace earmark::testing;
using nlohmann::json;
namespace serve = earmark::serve;

// ------------------------------------------------------------------ Signature V4

TEST(SigV4, MatchesBotocoreOnEveryGoldenRequest) {
  std::ifstream f(source_dir() / "tests" / "golden" / "sigv4.json");
  ASSERT_TRUE(f) << "tests/golden/sigv4.json missing";
  const json golden = json::parse(f);
  ASSERT_GE(golden["cases"].size(), 6u);
  for (const auto& c : golden["cases"]) {
    serve::sigv4::Request r;
    r.method = c["method"];
    r.host = c["host"];
    r.path = c["path"];
    for (const auto& [k, v] : c["query"].items()) r.query[k] = v.get<std::string>();
    if (c.contains("headers")) {
      for (const auto& [k, v] : c["headers"].items()) r.headers[k] = v.get<std::string>();
    }
    r.payload_sha256 = serve::sigv4::sha256_hex(c["body"].get<std::string>());
    EXPECT_EQ(r.payload_sha256, c["payload_sha256"]) << c["name"];
    const serve::sigv4::Credentials cred{c["access_key"], c["secret_key"], c.value("session_token", "")};
    const auto s = serve::sigv4::sign(r, cred, c["region"], "s3", c["amz_date"]);
    EXPECT_EQ(s.canonical_request, c["canonical_request"]) << c["name"];
    EXPECT_EQ(s.headers.at("authorization"), c["authorization"]) << c["name"];
    if (c.contains("session_token")) {
      EXPECT_EQ(s.headers.at("x-amz-security-token"), c["session_token"]);
    }
  }
}

TEST(SigV4, EncodesKeysAsS3Wants) {
  using serve::sigv4::uri_encode;
  EXPECT_EQ(uri_encode("jobs/a b/ü+~x.wav", true), "jobs/a%20b/%C3%BC%2B~x.wav");
  EXPECT_EQ(uri_encode("a/b", false), "a%2Fb");
  EXPECT_EQ(uri_encode("", true), "");
  EXPECT_EQ(serve::sigv4::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // RFC 4231 test case 2.
  EXPECT_EQ(serve::sigv4::hex(serve::sigv4::hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_NE(error_of([] { serve::sigv4::sign({}, {}, "us-east-1", "s3", "2026-11-25"); }).find("20261125T120000Z"),
            std::string::npos);
}

// ------------------------------------------------------------------ settings and XML

TEST(S3Settings, UrlsAreParsedAndBadOnesRefusedWithWhatToWrite) {
  auto loc = serve::parse_s3_url("s3://earmark-data/team/a");
  EXPECT_EQ(loc.bucket, "earmark-data");
  EXPECT_EQ(loc.prefix, "team/a/");
  EXPECT_EQ(serve::parse_s3_url("s3://bucket").prefix, "");
  EXPECT_EQ(serve::parse_s3_url("s3://bucket/x/").prefix, "x/");
  for (const char* bad : {"s3://", "s3://ab", "s3://Upper_Case", "s3://b.b//x", "http://bucket"})
    EXPECT_NE(error_of([&] { serve::parse_s3_url(bad); }).find("s3://BUCKET"), std::string::npos) << bad;

  serve::S3Settings s;
  s.where = loc;
  EXPECT_NE(error_of([&] { s.validate(); }).find("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), std::string::npos);
  s.credentials = {"k", "s", ""};
  s.endpoint = "minio:9000";
  EXPECT_NE(error_of([&] { s.validate(); }).find("http://HOST:PORT"), std::string::npos);
  s.endpoint = "http://minio:9000";
  EXPECT_NO_THROW(s.validate());
  EXPECT_TRUE(s.uses_path_style());  // custom endpoints: path style
  s.endpoint.clear();
  EXPECT_FALSE(s.uses_path_style());  // AWS: virtual-hosted
  EXPECT_EQ(s.describe(), "s3://earmark-data/team/a/ at https://s3.us-east-1.amazonaws.com");
  // A path in the endpoint is refused when the client is made.
  s.endpoint = "http://minio:9000/bucket";
  EXPECT_NE(error_of([&] { serve::S3Client c(s); }).find("no path"), std::string::npos);
}

TEST(S3Xml, ListingsAndErrorsAreParsed) {
  const auto page = serve::parse_list_page(
      R"(<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
      R"(<Name>b</Name><Prefix>jobs/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>)"
      R"(<Contents><Key>jobs/a&amp;b &lt;1&gt;.json</Key><Size>12</Size></Contents>)"
      R"(<Contents><Key>jobs/&#252;.wav</Key><Size>0</Size></Contents>)"
      R"(<CommonPrefixes><Prefix>jobs/0123/</Prefix></CommonPrefixes>)"
      R"(<NextContinuationToken>tok+/=</NextContinuationToken></ListBucketResult>)");
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.objects[0].key, "jobs/a&b <1>.json");
  EXPECT_EQ(page.objects[0].size, 12u);
  EXPECT_EQ(page.objects[1].key, "jobs/\xC3\xBC.wav");
  EXPECT_EQ(page.prefixes, std::vector<std::string>{"jobs/0123/"});
  EXPECT_EQ(page.next_token, "tok+/=");
  EXPECT_EQ(serve::parse_list_page("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>").next_token, "");
  EXPECT_THROW(serve::parse_list_page("<Error><Code>NoSuchBucket</Code></Error>"), earmark::Error);
  EXPECT_THROW(serve::parse_list_page("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"),
               earmark::Error);
  EXPECT_THROW(serve::parse_list_page("<ListBucketResult><Contents><Key>x</Contents>"), earmark::Error);
  const auto [code, message] = serve::parse_s3_error("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>");
  EXPECT_EQ(code, "NoSuchKey");
  EXPECT_EQ(message, "gone");
}

// ------------------------------------------------------------------ the store's contract

namespace {

// The same checks for a folder and a bucket: what the roles rely on.
void check_blobs_contract(serve::Blobs& b, const fs::path& scratch) {
  EXPECT_FALSE(b.get("jobs/none/job.json"));
  EXPECT_FALSE(b.exists("jobs/none/job.json"));
  b.put("jobs/0000000000000001/job.json", "{}\n");
  b.put("jobs/0000000000000001/input/0-a b.wav", std::string("RIFF\0\0\xff", 7));
  b.put("jobs/0000000000000001/results/0.json", "first");
  b.put("jobs/0000000000000001/results/0.json", "second");  // replaced whole
  b.put("jobs/0000000000000001/out/report/file-0-timeline.png", "png");
  b.put("jobs/0000000000000002/empty", "");
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = char((i * 7919) & 0xff);
  b.put("jobs/0000000000000002/input/0-big.bin", big);

  EXPECT_EQ(b.get("jobs/0000000000000001/results/0.json").value_or(""), "second");
  // Sizes and pieces (what the service streams downloads with), and a staged file stored whole.
  EXPECT_FALSE(b.size("jobs/none/x"));
  EXPECT_EQ(b.size("jobs/0000000000000002/input/0-big.bin").value_or(0), big.size());
  EXPECT_EQ(b.size("jobs/0000000000000002/empty").value_or(1), 0u);
  std::string piece;
  b.read("jobs/0000000000000002/input/0-big.bin", 1000, 5000, piece);
  EXPECT_EQ(piece, big.substr(1000, 5000));
  b.read("jobs/0000000000000002/input/0-big.bin", big.size() - 10, 100, piece);
  EXPECT_EQ(piece, big.substr(big.size() - 10));
  fs::create_directories(scratch);
  std::ofstream(scratch / "staged.bin", std::ios::binary) << big;
  b.put_file("jobs/0000000000000002/input/1-staged.bin", (scratch / "staged.bin").string());
  EXPECT_EQ(b.get("jobs/0000000000000002/input/1-staged.bin").value_or(""), big);
  EXPECT_EQ(b.get("jobs/0000000000000001/input/0-a b.wav").value_or(""), std::string("RIFF\0\0\xff", 7));
  EXPECT_EQ(b.get("jobs/0000000000000002/empty").value_or("absent"), "");
  EXPECT_TRUE(b.exists("jobs/0000000000000002/empty"));
  EXPECT_EQ(b.get("jobs/0000000000000002/input/0-big.bin").value_or("") == big, true);
  EXPECT_EQ(b.list_folders("jobs/"), (std::vector<std::string>{"0000000000000001", "0000000000000002"}));
  EXPECT_EQ(b.list("jobs/0000000000000001/"),
            (std::vector<std::string>{"jobs/0000000000000001/input/0-a b.wav", "jobs/0000000000000001/job.json",
                                      "jobs/0000000000000001/out/report/file-0-timeline.png",
                                      "jobs/0000000000000001/results/0.json"}));
  EXPECT_TRUE(b.list("jobs/0000000000000003/").empty());
  {
    const auto local = b.local_file("jobs/0000000000000002/input/0-big.bin", scratch.string());
    EXPECT_EQ(slurp_file(local.path), big);
  }
  EXPECT_THROW(b.local_file("jobs/none/x", scratch.string()), earmark::Error);
  b.remove_all("jobs/0000000000000001/");
  EXPECT_FALSE(b.exists("jobs/0000000000000001/job.json"));
  EXPECT_EQ(b.list_folders("jobs/"), std::vector<std::string>{"0000000000000002"});
  EXPECT_NO_THROW(b.remove_all("jobs/0000000000000009/"));  // nothing there: fine
  EXPECT_NO_THROW(b.check_writable());
}

// Uploads staged as local files, as the gateway receives them.
std::vector<serve::Upload> staged(const fs::path& dir, const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<serve::Upload> out;
  for (const auto& [name, bytes] : files) {
    fs::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary) << bytes;
    out.push_back({name, (dir / name).string(), bytes.size()});
  }
  return out;
}

// A job through the Store API: states, outputs with nested names, retention.
void check_store(serve::Store& store, const fs::path& scratch) {
  auto job = store.create_job(staged(scratch / "up", {{"a.wav", "AAAA"}, {"b.wav", "BBBB"}}), true);
  EXPECT_EQ(store.list_jobs(), std::vector<std::string>{job.id});
  ASSERT_TRUE(store.read_job(job.id));
  EXPECT_EQ(store.read_job(job.id)->files.size(), 2u);
  EXPECT_EQ(store.state(job), serve::JobState::queued);
  EXPECT_EQ(store.input(job, 1).value_or(""), "BBBB");
  store.mark_started(job.id, 0, "host-1-w0");
  EXPECT_EQ(store.started_by(job.id, 0), "host-1-w0");
  EXPECT_EQ(store.state(job), serve::JobState::running);
  earmark::FileResult r;
  r.path = "a.wav";
  store.write_result(job.id, 0, r);
  store.write_result(job.id, 1, r);
  EXPECT_EQ(store.result_count(job), 2u);
  EXPECT_EQ(store.state(job), serve::JobState::reporting);
  TempDir out;
  fs::create_directories(out.path() / "report");
  std::ofstream(out.path() / "events.csv") << "onset,offset\n";
  std::ofstream(out.path() / "report" / "file-0-scores.png") << "png";
  store.put_outputs(job.id, out.path().string());
  store.write_done(job.id, serve::JobState::done);
  EXPECT_EQ(store.state(job), serve::JobState::done);
  EXPECT_EQ(store.output(job.id, "events.csv").value_or(""), "onset,offset\n");
  EXPECT_EQ(store.output(job.id, "report/file-0-scores.png").value_or(""), "png");
  for (const char* bad : {"../job.json", "report/../../x", ".hidden", "a//b", "/etc/passwd", "report/"})
    EXPECT_FALSE(store.output(job.id, bad)) << bad;
  const json st = store.status(job);
  EXPECT_EQ(st["state"], "done");
  EXPECT_TRUE(st["links"]["files"].contains("report/file-0-scores.png")) << st.dump();
  {
    const auto local = store.local_input(job, 0, scratch.string());
    EXPECT_EQ(slurp_file(local.path), "AAAA");
  }
  // Retention: a job that just ended is kept; one that ended long ago is removed; a job still
  // running is never removed however old.
  auto old = store.create_job(staged(scratch / "up", {{"c.wav", "CCCC"}}), false);
  auto running = store.create_job(staged(scratch / "up", {{"d.wav", "DDDD"}}), false);
  EXPECT_EQ(store.prune(3600), 0u);
  const_cast<serve::Blobs&>(store.blobs())
      .put("jobs/" + old.id + "/done.json", R"({"v":1,"state":"done","finished_at":"2020-01-01T00:00:00Z"})");
  EXPECT_EQ(store.prune(3600), 1u);
  EXPECT_FALSE(store.read_job(old.id));
  EXPECT_TRUE(store.read_job(job.id));
  EXPECT_TRUE(store.read_job(running.id));
  store.remove_job(job.id);
  EXPECT_EQ(store.list_jobs(), std::vector<std::string>{running.id});
}

}  // namespace

TEST(StoreFolder, KeepsTheContractAndRetention) {
  TempDir dir;
  auto blobs = serve::open_blobs((dir / "store").string());
  check_blobs_contract(*blobs, dir / "scratch");
  serve::Store store((dir / "store2").string());
  check_store(store, dir / "scratch");
  EXPECT_NE(error_of([] { serve::open_blobs("ftp://host/x"); }).find("s3://BUCKET/PREFIX"), std::string::npos);
}

TEST(StoreS3, KeepsTheContractOnARealS3Server) {
  REQUIRE_S3_SERVER();
  TempDir dir;
  S3Server s3(dir.path(), {"earmark", "other"});
  ASSERT_TRUE(port_open(s3.port())) << s3.log();
  auto blobs = serve::open_bucket(s3.settings("earmark", "team a/store"));
  check_blobs_contract(*blobs, dir / "scratch");
  serve::Store store(serve::open_bucket(s3.settings("earmark", "jobs-test")));
  check_store(store, dir / "scratch");
  // Prefixes keep stores apart in one bucket.
  EXPECT_EQ(serve::open_bucket(s3.settings("earmark", "third"))->list_folders("jobs/").size(), 0u);
  // Listings page through continuation tokens.
  auto settings = s3.settings("other");
  settings.page_size = 3;
  serve::S3Client c(settings);
  for (int i = 0; i < 10; ++i) c.put("jobs/" + std::to_string(1000 + i) + "/x", "x");
  EXPECT_EQ(c.list("jobs/").size(), 10u);
  EXPECT_EQ(c.list_folders("jobs/").size(), 10u);
}

// ------------------------------------------------------------------ workload identities

TEST(S3Credentials, ContainerAndStsAnswersAreParsed) {
  const auto c = serve::parse_container_credentials(
      R"({"AccessKeyId":"ASIAX","SecretAccessKey":"sec","Token":"tok","Expiration":"2026-11-29T23:59:59Z"})");
  EXPECT_EQ(c.keys.access_key, "ASIAX");
  EXPECT_EQ(c.keys.secret_key, "sec");
  EXPECT_EQ(c.keys.session_token, "tok");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(c.expires), 1795996799);  // date -u -d 2026-11-29T23:59:59Z +%s
  EXPECT_NE(error_of([] { serve::parse_container_credentials(R"({"AccessKeyId":"a"})"); }).find("SecretAccessKey"),
            std::string::npos);
  EXPECT_NE(error_of([] { serve::parse_container_credentials("<html>"); }).find("not JSON"), std::string::npos);
  EXPECT_NE(error_of([] {
              serve::parse_container_credentials(
                  R"({"AccessKeyId":"a","SecretAccessKey":"b","Expiration":"tomorrow"})");
            }).find("ISO 8601"),
            std::string::npos);
  const auto s = serve::parse_sts_credentials(
      "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
      "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAY</AccessKeyId>"
      "<SecretAccessKey>s&amp;c</SecretAccessKey><SessionToken>st</SessionToken>"
      "<Expiration>2026-11-30T00:00:00.000Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
      "</AssumeRoleWithWebIdentityResponse>");
  EXPECT_EQ(s.keys.access_key, "ASIAY");
  EXPECT_EQ(s.keys.secret_key, "s&c");
  EXPECT_EQ(s.keys.session_token, "st");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(s.expires), 1795996800);
  using earmark::util::parse_utc_iso;
  EXPECT_EQ(parse_utc_iso("2026-11-30T00:00:00Z"), std::optional<std::time_t>(1795996800));
  EXPECT_EQ(parse_utc_iso("2026-11-30T00:00:00+00:00"), std::optional<std::time_t>(1795996800));
  EXPECT_EQ(parse_utc_iso("2026-11-30T00:00:00.123Z"), std::optional<std::time_t>(1795996800));
  for (const char* bad : {"2026-11-30T00:00:00", "2026-11-30T00:00:00Zx", "2026-11-30T00:00:00.Z",
                          "2026-11-30T00:00:00+02:00", "tomorrow", ""})
    EXPECT_FALSE(parse_utc_iso(bad)) << bad;
  EXPECT_THROW(serve::parse_sts_credentials("<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>"),
               earmark::Error);
}

namespace {

// Sets environment variables for one scope, restoring what was there.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) {
    for (auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved_.push_back({k, old ? std::optional<std::string>(old) : std::nullopt});
      if (v.empty()) unsetenv(k.c_str());
      else setenv(k.c_str(), v.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (auto& [k, v] : saved_) {
      if (v) setenv(k.c_str(), v->c_str(), 1);
      else unsetenv(k.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

const std::vector<std::pair<std::string, std::string>> kNoAwsEnv = {
    {"AWS_ACCESS_KEY_ID", ""}, {"AWS_SECRET_ACCESS_KEY", ""}, {"AWS_SESSION_TOKEN", ""},
    {"AWS_CONTAINER_CREDENTIALS_FULL_URI", ""}, {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ""},
    {"AWS_CONTAINER_AUTHORIZATION_TOKEN", ""}, {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", ""},
    {"AWS_WEB_IDENTITY_TOKEN_FILE", ""}, {"AWS_ROLE_ARN", ""}, {"AWS_ROLE_SESSION_NAME", ""},
    {"AWS_ENDPOINT_URL_STS", ""}, {"EARMARK_S3_REGION", ""}, {"AWS_REGION", ""}, {"AWS_DEFAULT_REGION", ""}};

serve::S3Settings settings_from(std::vector<std::pair<std::string, std::string>> vars) {
  auto all = kNoAwsEnv;
  all.insert(all.end(), vars.begin(), vars.end());
  ScopedEnv env(all);
  serve::S3Settings s;
  s.where = serve::parse_s3_url("s3://bucket/x");
  s.resolve_from_environment();
  return s;
}

}  // namespace

TEST(S3Credentials, TheEnvironmentNamesTheIdentity) {
  using Kind = serve::CredentialSource::Kind;
  auto s = settings_from({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"},
                          {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pods.eks.amazonaws.com/token"}});
  EXPECT_EQ(s.identity.kind, Kind::container);
  EXPECT_EQ(s.identity.url, "http://169.254.170.23/v1/credentials");
  EXPECT_EQ(s.identity.auth_token_file, "/var/run/secrets/pods.eks.amazonaws.com/token");
  EXPECT_NO_THROW(s.validate());
  EXPECT_EQ(settings_from({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"}}).identity.url,
            "http://169.254.170.2/v2/credentials/abc");
  s = settings_from({{"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
                     {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/earmark"},
                     {"AWS_REGION", "eu-west-1"}});
  EXPECT_EQ(s.identity.kind, Kind::web_identity);
  EXPECT_EQ(s.identity.url, "https://sts.eu-west-1.amazonaws.com");
  EXPECT_EQ(s.identity.session_name, "earmark");
  EXPECT_NO_THROW(s.validate());
  // Keys win over an identity; an identity needs what it names.
  EXPECT_EQ(settings_from({{"AWS_ACCESS_KEY_ID", "k"}, {"AWS_SECRET_ACCESS_KEY", "s"},
                           {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"}, {"AWS_ROLE_ARN", "arn:r"}})
                .identity.kind,
            Kind::none);
  EXPECT_NE(error_of([] { settings_from({{"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"}}).validate(); }).find("AWS_ROLE_ARN"),
            std::string::npos);
  EXPECT_NE(error_of([] { settings_from({}).validate(); }).find("AWS_WEB_IDENTITY_TOKEN_FILE"), std::string::npos);
}

// Keys fetched from a container credentials endpoint and from STS sign real requests to the
// S3 server; they are fetched once while valid and again when they expire within 5 minutes.
// The two endpoints are served here by the test, as AWS's agent and STS answer.
TEST(StoreS3, WorkloadIdentitiesSignWithFetchedKeys) {
  REQUIRE_S3_SERVER();
  TempDir dir;
  S3Server s3(dir.path(), {"earmark"});
  ASSERT_TRUE(port_open(s3.port())) << s3.log();
  std::atomic<int> container_calls{0}, sts_calls{0};
  std::atomic<int> lifetime_s{3600};
  auto expiration = [&] {
    const std::time_t t = std::time(nullptr) + lifetime_s.load();
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return std::string(buf);
  };
  httplib::Server agent;
  agent.Get("/v1/credentials", [&](const httplib::Request& req, httplib::Response& res) {
    ++container_calls;
    if (req.get_header_value("Authorization") != "pod-token-1") {
      res.status = 401;
      res.set_content(R"({"message":"bad token"})", "application/json");
      return;
    }
    res.set_content(json{{"AccessKeyId", "S3RVER"}, {"SecretAccessKey", "S3RVER"}, {"Token", "session-1"},
                         {"Expiration", expiration()}}.dump(),
                    "application/json");
  });
  agent.Post("/sts", [&](const httplib::Request& req, httplib::Response& res) {
    ++sts_calls;
    if (req.get_param_value("Action") != "AssumeRoleWithWebIdentity" ||
        req.get_param_value("RoleArn") != "arn:aws:iam::123456789012:role/earmark" ||
        req.get_param_value("WebIdentityToken") != "jwt.of.the.pod") {
      res.status = 403;
      res.set_content("<ErrorResponse><Error><Code>AccessDenied</Code><Message>Not authorized to perform "
                      "sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>",
                      "text/xml");
      return;
    }
    res.set_content("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                    "<AccessKeyId>S3RVER</AccessKeyId><SecretAccessKey>S3RVER</SecretAccessKey>"
                    "<SessionToken>session-2</SessionToken><Expiration>" +
                        expiration() +
                        "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                        "</AssumeRoleWithWebIdentityResponse>",
                    "text/xml");
  });
  const int agent_port = agent.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { agent.listen_after_bind(); });
  for (int i = 0; i < 200 && !agent.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const std::string agent_url = "http://127.0.0.1:" + std::to_string(agent_port);
  std::ofstream(dir / "pod-token") << "pod-token-1\n";
  std::ofstream(dir / "jwt") << "jwt.of.the.pod";

  auto with_identity = [&](serve::CredentialSource id) {
    auto s = s3.settings("earmark", "identity");
    s.credentials = {};
    s.identity = std::move(id);
    return s;
  };
  serve::CredentialSource container;
  container.kind = serve::CredentialSource::Kind::container;
  container.url = agent_url + "/v1/credentials";
  container.auth_token_file = (dir / "pod-token").string();
  {
    serve::S3Client c(with_identity(container));
    c.put("a.json", "1");
    c.put("b.json", "2");
    EXPECT_EQ(c.get("a.json").value_or(""), "1");
    EXPECT_EQ(c.list("").size(), 2u);
    EXPECT_EQ(container_calls.load(), 1) << "fetched once while valid";
    EXPECT_EQ(c.credentials().session_token, "session-1");
  }
  {
    lifetime_s = 240;  // expires within 5 minutes: renewed before each use
    container_calls = 0;
    serve::S3Client c(with_identity(container));
    EXPECT_EQ(c.get("b.json").value_or(""), "2");
    EXPECT_TRUE(c.exists("a.json"));
    EXPECT_EQ(container_calls.load(), 2);
    lifetime_s = 3600;
  }
  serve::CredentialSource web;
  web.kind = serve::CredentialSource::Kind::web_identity;
  web.url = agent_url + "/sts";
  web.role_arn = "arn:aws:iam::123456789012:role/earmark";
  web.token_file = (dir / "jwt").string();
  {
    serve::S3Client c(with_identity(web));
    EXPECT_EQ(c.get("a.json").value_or(""), "1");
    c.remove("a.json");
    EXPECT_FALSE(c.exists("a.json"));
    EXPECT_EQ(sts_calls.load(), 1);
    EXPECT_EQ(c.credentials().session_token, "session-2");
  }
  // Refusals and an absent endpoint say where and what to check.
  {
    std::ofstream(dir / "pod-token") << "stale\n";
    serve::S3Client c(with_identity(container));
    const std::string e = error_of([&] { c.get("b.json"); });
    EXPECT_NE(e.find("HTTP 401"), std::string::npos) << e;
    EXPECT_NE(e.find(container.url), std::string::npos) << e;
  }
  {
    web.role_arn = "arn:aws:iam::123456789012:role/other";
    serve::S3Client c(with_identity(web));
    const std::string e = error_of([&] { c.get("b.json"); });
    EXPECT_NE(e.find("AccessDenied"), std::string::npos) << e;
    EXPECT_NE(e.find("trusts"), std::string::npos) << e;
  }
  agent.stop();
  serving.join();
  {
    serve::S3Client c(with_identity(container));
    const std::string e = error_of([&] { c.get("b.json"); });
    EXPECT_NE(e.find("cannot reach"), std::string::npos) << e;
    EXPECT_NE(e.find("identity agent"), std::string::npos) << e;
  }
  web.token_file = (dir / "no-such-token").string();
  serve::S3Client c(with_identity(web));
  EXPECT_NE(error_of([&] { c.get("b.json"); }).find("cannot read the token file"), std::string::npos);
}

TEST(StoreS3, FailuresSayWhatToFix) {
  REQUIRE_S3_SERVER();
  TempDir dir;
  S3Server s3(dir.path(), {"earmark"});
  ASSERT_TRUE(port_open(s3.port())) << s3.log();
  {
    auto s = s3.settings("earmark");
    s.credentials.secret_key = "wrong";
    serve::S3Client c(s);
    const std::string e = error_of([&] { c.put("x", "y"); });
    EXPECT_NE(e.find("SignatureDoesNotMatch"), std::string::npos) << e;
    EXPECT_NE(e.find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << e;
    EXPECT_THROW(c.check(), earmark::Error);
  }
  {
    auto s = s3.settings("earmark");
    s.credentials.access_key = "NOBODY";
    serve::S3Client c(s);
    EXPECT_NE(error_of([&] { c.get("x"); }).find("AWS_ACCESS_KEY_ID"), std::string::npos);
  }
  {
    serve::S3Client c(s3.settings("no-such-bucket"));
    const std::string e = error_of([&] { c.put("x", "y"); });
    EXPECT_NE(e.find("NoSuchBucket"), std::string::npos) << e;
    EXPECT_NE(e.find("create the bucket 'no-such-bucket'"), std::string::npos) << e;
    EXPECT_NE(error_of([&] { c.get("x"); }).find("NoSuchBucket"), std::string::npos);
    serve::Store store(serve::open_bucket(s3.settings("no-such-bucket")));
    EXPECT_FALSE(store.writable());
  }
  // The server goes away: a bounded wait and a message naming the endpoint, no hang.
  auto settings = s3.settings("earmark");
  s3.stop();
  serve::S3Client c(settings);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string e = error_of([&] { c.get("x"); });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_NE(e.find("cannot reach http://127.0.0.1:"), std::string::npos) << e;
  EXPECT_NE(e.find("EARMARK_S3_ENDPOINT"), std::string::npos) << e;
}

// ------------------------------------------------------------------ earmark serve on a bucket

TEST(ServeS3, OneProcessKeepsJobsInTheBucket) {
  REQUIRE_S3_SERVER();
  EARMARK_REQUIRE_SHARED();
  TempDir dir;
  S3Server s3(dir.path(), {"earmark"});
  ASSERT_TRUE(port_open(s3.port())) << s3.log();
  const int port = free_port();
  std::vector<std::string> env = s3.env();
  env.push_back("EARMARK_MODELS=" + models_dir().string());
  Child server({cli_path().string(), "serve", "--host", "127.0.0.1", "--port", std::to_string(port), "--workers", "1",
                "--store", "s3://earmark/svc", "--scratch", (dir / "scratch").string()},
               dir / "serve.log", env);
  ASSERT_TRUE(wait_ready(port, 120)) << slurp_file(dir / "serve.log");
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  // Synchronous detect.
  auto r = c.Post("/v1/detect", slurp_file(clip("speech.wav")), "audio/wav");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  bool speech = false;
  const json detected = json_of(r);
  for (const auto& e : detected["files"][0]["events"]) speech |= e["label"] == "Speech";
  EXPECT_TRUE(speech) << r->body;
  // A job with a report.
  httplib::MultipartFormDataItems items = {{"file", slurp_file(clip("speech.wav")), "speech.wav", "audio/wav"},
                                           {"file", slurp_file(clip("typing.wav")), "typing.wav", "audio/wav"}};
  r = c.Post("/v1/jobs", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json_of(r)["id"];
  json st = json::object();
  for (int i = 0; i < 12 && st.value("state", "") != "done"; ++i) st = json_of(c.Get(("/v1/jobs/" + id + "?wait=10").c_str()));
  ASSERT_EQ(st.value("state", ""), "done") << st.dump() << slurp_file(dir / "serve.log");
  r = c.Get(("/v1/jobs/" + id + "/report").c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("speech.wav"), std::string::npos);
  EXPECT_EQ(c.Get(("/v1/jobs/" + id + "/files/events.csv").c_str())->status, 200);
  EXPECT_EQ(c.Get(("/v1/jobs/" + id + "/files/report/file-1-timeline.png").c_str())->status, 200) << st["links"].dump();
  EXPECT_EQ(c.Get(("/v1/jobs/" + id + "/files/..%2Fjob.json").c_str())->status, 400);
  EXPECT_EQ(c.Get(("/v1/jobs/" + id + "/audio/1").c_str())->body, slurp_file(clip("typing.wav")));
  // Everything is in the bucket, under the prefix; nothing was kept in a local store folder.
  serve::S3Client s(s3.settings("earmark", "svc"));
  std::set<std::string> keys;
  for (const auto& o : s.list("jobs/" + id + "/")) keys.insert(o.key);
  for (const char* k : {"job.json", "input/0-speech.wav", "results/0.json", "results/1.json", "out/report.html",
                        "out/events.csv", "done.json"})
    EXPECT_TRUE(keys.count("jobs/" + id + "/" + k)) << k;
  EXPECT_FALSE(fs::exists(dir / "earmark-store"));
  // Scratch copies are cleaned up after use.
  size_t left = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir / "scratch")) left += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(left, 0u);

  // The bucket goes away: readiness says so (503), and a request answers a JSON error, no crash.
  s3.stop();
  bool unready = false;
  for (int i = 0; i < 100 && !unready; ++i) {
    auto rz = c.Get("/readyz");
    unready = rz && rz->status == 503 && json::parse(rz->body)["checks"]["store"] == false;
    if (!unready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(unready);
  r = c.Get(("/v1/jobs/" + id).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(json_of(r)["error"]["code"], "backend_unavailable") << r->body;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(30), 0) << slurp_file(dir / "serve.log");
}
