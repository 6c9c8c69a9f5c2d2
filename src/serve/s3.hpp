// serve/s3: a small client for S3-compatible object storage (AWS S3, MinIO, Ceph RGW, Garage,
// R2, ...): the operations the job store needs (put, get, head, list, delete) over HTTP(S),
// signed with AWS Signature Version 4. No SDK: cpp-httplib for HTTP, OpenSSL for the hashes.
//
//   S3Location where = parse_s3_url("s3://my-bucket/earmark");      // bucket + key prefix
//   S3Settings s = S3Settings::from_environment(where, endpoint, region);
//   S3Client s3(s);
//   s3.put("jobs/x/job.json", bytes);
//   std::optional<std::string> b = s3.get("jobs/x/job.json");
//
// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for
// temporary ones), never from the command line; without them, from a workload identity: the
// container credentials endpoint (EKS Pod Identity, ECS task roles) or a web identity token
// exchanged with STS (EKS IAM roles for service accounts), renewed before they expire. Keys
// given to the client are relative to the location's prefix.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace earmark::serve {

// ------------------------------------------------------------------ Signature Version 4

namespace sigv4 {

std::string sha256_hex(const std::string& bytes);
std::string hmac_sha256(const std::string& key, const std::string& data);  // raw 32 bytes
std::string hex(const std::string& raw);
// RFC 3986 percent-encoding as S3 wants it: unreserved characters (A-Z a-z 0-9 - . _ ~) kept,
// every other byte as %XX (upper case); '/' kept when `keep_slash` (object key paths).
std::string uri_encode(const std::string& s, bool keep_slash);

struct Request {
  std::string method;                           // GET, PUT, HEAD, DELETE
  std::string host;                             // Host header value (host[:port])
  std::string path;                             // already encoded, e.g. /bucket/jobs/a%20b.json
  std::map<std::string, std::string> query;     // raw (unencoded) names and values
  std::map<std::string, std::string> headers;   // extra headers to sign (lower-case names)
  std::string payload_sha256;                   // hex, or "UNSIGNED-PAYLOAD"
};

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // optional
};

struct Signed {
  std::map<std::string, std::string> headers;  // every header to send: Host, x-amz-*, Authorization
  std::string canonical_request;               // for error messages and tests
  std::string string_to_sign;
};

// amz_date: "YYYYMMDDTHHMMSSZ" (UTC).
Signed sign(const Request& r, const Credentials& c, const std::string& region, const std::string& service,
            const std::string& amz_date);
std::string amz_date_now();

}  // namespace sigv4

// ------------------------------------------------------------------ settings

struct S3Location {
  std::string bucket;
  std::string prefix;  // "" or "a/b/" (always ends with '/' when not empty)
};

// "s3://bucket" or "s3://bucket/some/prefix". Throws earmark::Error with what to write instead.
S3Location parse_s3_url(const std::string& url);
bool is_s3_url(const std::string& s);

// Where temporary credentials come from when no keys are given (see resolve_from_environment).
struct CredentialSource {
  enum class Kind { none, container, web_identity };
  Kind kind = Kind::none;
  // container: the endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI, or http://169.254.170.2 +
  // AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) and its Authorization value or the file holding it.
  // web_identity: the STS endpoint (AWS_ENDPOINT_URL_STS, else https://sts.REGION.amazonaws.com).
  std::string url;
  std::string auth_token, auth_token_file;                      // container
  std::string role_arn, token_file, session_name = "earmark";  // web_identity
  std::string describe() const;                                 // "container credentials at URL", ...
};

// Temporary keys and when they stop working.
struct TemporaryCredentials {
  sigv4::Credentials keys;
  std::chrono::system_clock::time_point expires;
};
// Parses the container endpoint's JSON ({"AccessKeyId","SecretAccessKey","Token","Expiration"})
// and STS's AssumeRoleWithWebIdentityResponse XML. Throw earmark::Error on anything else.
TemporaryCredentials parse_container_credentials(const std::string& json_body);
TemporaryCredentials parse_sts_credentials(const std::string& xml);
// Fetches a fresh set from the source; errors say which endpoint and what to check.
TemporaryCredentials fetch_credentials(const CredentialSource& source, int timeout_s);

struct S3Settings {
  S3Location where;
  // "https://s3.eu-west-1.amazonaws.com", "http://minio:9000", ... Empty: AWS's endpoint for
  // the region.
  std::string endpoint;
  std::string region = "us-east-1";
  // Path-style requests (http://endpoint/bucket/key) rather than virtual-hosted
  // (http://bucket.endpoint/key). Defaults to path style for a custom endpoint (MinIO & co),
  // virtual-hosted for AWS.
  std::optional<bool> path_style;
  sigv4::Credentials credentials;
  CredentialSource identity;  // used when `credentials` is empty
  int timeout_s = 30;   // connect / read / write
  int attempts = 4;     // per request, on connection errors, 5xx and SlowDown (backoff 0.2 s, x4)
  int page_size = 1000; // keys per listing request (S3's maximum)

  // Fills from the environment where empty: EARMARK_S3_ENDPOINT (or AWS_ENDPOINT_URL_S3,
  // AWS_ENDPOINT_URL), EARMARK_S3_REGION (or AWS_REGION, AWS_DEFAULT_REGION),
  // EARMARK_S3_PATH_STYLE (1/0), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
  // without keys, the identity from AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI (+
  // AWS_CONTAINER_AUTHORIZATION_TOKEN / _FILE) or AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
  // (+ AWS_ROLE_SESSION_NAME, AWS_ENDPOINT_URL_STS).
  void resolve_from_environment();
  void validate() const;  // throws earmark::Error naming the missing or bad setting
  bool uses_path_style() const;
  std::string describe() const;  // "s3://bucket/prefix at http://host:port" (no secrets)
};

// ------------------------------------------------------------------ client

struct S3Object {
  std::string key;  // relative to the prefix
  size_t size = 0;
};

class S3Client {
 public:
  explicit S3Client(S3Settings settings);  // validates
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Settings& settings() const { return s_; }
  // The keys requests are signed with now (fetched or renewed first where they come from an
  // identity and expire within 5 minutes).
  sigv4::Credentials credentials();

  void put(const std::string& key, const std::string& bytes, const std::string& content_type = {});
  std::optional<std::string> get(const std::string& key);  // nullopt: no such key
  bool exists(const std::string& key);                     // HEAD
  std::optional<size_t> size(const std::string& key);      // HEAD's Content-Length; nullopt: no such key
  // Bytes [offset, offset + length) of the object (fewer at its end): a ranged GET.
  std::string get_range(const std::string& key, size_t offset, size_t length);
  void remove(const std::string& key);                     // absent keys are fine
  // Every object under `prefix` (recursive), keys relative to the location prefix.
  std::vector<S3Object> list(const std::string& prefix);
  // The "sub-folders" right under `prefix` (S3 common prefixes with delimiter '/'), as names
  // without the prefix and trailing '/'.
  std::vector<std::string> list_folders(const std::string& prefix);
  // Lists one key of the bucket: throws with the server's reason (no bucket, bad keys, ...).
  void check();

 private:
  struct Response {
    int status = 0;
    std::string body;
    std::map<std::string, std::string> headers;
  };
  Response request(const std::string& method, const std::string& key, const std::map<std::string, std::string>& query,
                   const std::string& body, const std::string& content_type, const std::string& what,
                   const std::map<std::string, std::string>& extra_headers = {});
  std::vector<std::string> list_pages(const std::string& prefix, const std::string& delimiter,
                                      std::vector<S3Object>* objects);

  S3Settings s_;
  std::string scheme_host_port_, host_header_, base_path_;
  struct Pool;
  std::unique_ptr<Pool> pool_;
  std::mutex credentials_mutex_;
  std::optional<TemporaryCredentials> temporary_;
};

// Parses a ListObjectsV2 result body (exposed for tests): contents, common prefixes, and the
// continuation token ("" when not truncated). Throws earmark::Error on a body that is not one.
struct ListPage {
  std::vector<S3Object> objects;  // full keys
  std::vector<std::string> prefixes;
  std::string next_token;
};
ListPage parse_list_page(const std::string& xml);
// <Code> and <Message> of an S3 error body ("" when absent).
std::pair<std::string, std::string> parse_s3_error(const std::string& xml);

}  // namespace earmark::serve
