#include "serve/s3.hpp"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "earmark/earmark.hpp"
#include "util/time.hpp"

namespace earmark::serve {

// ------------------------------------------------------------------ Signature Version 4

namespace sigv4 {

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  unsigned int n = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr) != 1)
    throw Error("SHA-256 failed (OpenSSL)");
  return hex(std::string(reinterpret_cast<const char*>(md), n));
}

std::string hmac_sha256(const std::string& key, const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), md, &n))
    throw Error("HMAC-SHA256 failed (OpenSSL)");
  return std::string(reinterpret_cast<const char*>(md), n);
}

std::string hex(const std::string& raw) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string uri_encode(const std::string& s, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += char(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

namespace {

std::string trim_spaces(const std::string& v) {
  // Canonical header values: leading/trailing spaces removed, inner runs of spaces made one.
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Signed sign(const Request& r, const Credentials& c, const std::string& region, const std::string& service,
            const std::string& amz_date) {
  if (amz_date.size() != 16) throw Error("sigv4: the date must look like 20261125T120000Z, not '" + amz_date + "'");
  Signed out;
  std::map<std::string, std::string> headers;  // lower-case name -> value
  for (const auto& [k, v] : r.headers) headers[lower(k)] = v;
  headers["host"] = r.host;
  headers["x-amz-date"] = amz_date;
  headers["x-amz-content-sha256"] = r.payload_sha256;
  if (!c.session_token.empty()) headers["x-amz-security-token"] = c.session_token;

  std::vector<std::pair<std::string, std::string>> params;  // sorted by encoded name, then value
  for (const auto& [k, v] : r.query) params.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(params.begin(), params.end());
  std::string query;
  for (const auto& [k, v] : params) query += (query.empty() ? "" : "&") + k + "=" + v;
  std::string canonical_headers, signed_headers;
  for (const auto& [k, v] : headers) {
    canonical_headers += k + ":" + trim_spaces(v) + "\n";
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += k;
  }
  out.canonical_request = r.method + "\n" + r.path + "\n" + query + "\n" + canonical_headers + "\n" + signed_headers +
                          "\n" + r.payload_sha256;
  const std::string day = amz_date.substr(0, 8);
  const std::string scope = day + "/" + region + "/" + service + "/aws4_request";
  out.string_to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + sha256_hex(out.canonical_request);
  std::string key = hmac_sha256("AWS4" + c.secret_key, day);
  key = hmac_sha256(key, region);
  key = hmac_sha256(key, service);
  key = hmac_sha256(key, "aws4_request");
  const std::string signature = hex(hmac_sha256(key, out.string_to_sign));
  out.headers = headers;
  out.headers["authorization"] = "AWS4-HMAC-SHA256 Credential=" + c.access_key + "/" + scope +
                                 ", SignedHeaders=" + signed_headers + ", Signature=" + signature;
  return out;
}

std::string amz_date_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[20];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace sigv4

// ------------------------------------------------------------------ settings

bool is_s3_url(const std::string& s) { return s.rfind("s3://", 0) == 0; }

S3Location parse_s3_url(const std::string& url) {
  if (!is_s3_url(url)) throw Error("'" + url + "' is not an S3 URL; write s3://BUCKET or s3://BUCKET/PREFIX");
  const std::string rest = url.substr(5);
  const auto slash = rest.find('/');
  S3Location loc;
  loc.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) loc.prefix = rest.substr(slash + 1);
  // Bucket names: 3-63 characters of a-z 0-9 . - (the rules every S3-compatible server shares).
  const bool bucket_ok = loc.bucket.size() >= 3 && loc.bucket.size() <= 63 &&
                         std::all_of(loc.bucket.begin(), loc.bucket.end(), [](char c) {
                           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
                         });
  if (!bucket_ok)
    throw Error("'" + url + "': the bucket name '" + loc.bucket +
                "' is not valid (3-63 characters: lower-case letters, digits, '.' and '-'); write s3://BUCKET/PREFIX");
  if (!loc.prefix.empty() && loc.prefix.back() != '/') loc.prefix += '/';
  if (!loc.prefix.empty() && (loc.prefix.front() == '/' || loc.prefix.find("//") != std::string::npos))
    throw Error("'" + url + "': the key prefix has an empty part ('//'); write s3://BUCKET/a/b");
  return loc;
}

void S3Settings::resolve_from_environment() {
  auto env = [](const char* n) -> std::string {
    const char* v = std::getenv(n);
    return v ? v : "";
  };
  auto first = [&](std::initializer_list<const char*> names) -> std::string {
    for (const char* n : names)
      if (auto v = env(n); !v.empty()) return v;
    return {};
  };
  if (endpoint.empty()) endpoint = first({"EARMARK_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"});
  if (const auto r = first({"EARMARK_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"}); !r.empty() && region == "us-east-1")
    region = r;
  if (!path_style) {
    const std::string p = env("EARMARK_S3_PATH_STYLE");
    if (p == "1" || p == "true") path_style = true;
    else if (p == "0" || p == "false") path_style = false;
    else if (!p.empty()) throw Error("EARMARK_S3_PATH_STYLE='" + p + "': use 1 (path-style) or 0 (virtual-hosted)");
  }
  if (credentials.access_key.empty()) credentials.access_key = env("AWS_ACCESS_KEY_ID");
  if (credentials.secret_key.empty()) credentials.secret_key = env("AWS_SECRET_ACCESS_KEY");
  if (credentials.session_token.empty()) credentials.session_token = env("AWS_SESSION_TOKEN");
  if (!credentials.access_key.empty() || identity.kind != CredentialSource::Kind::none) return;
  // No keys: a workload identity, as the AWS SDKs look for them.
  const std::string full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  const std::string relative = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  if (!full.empty() || !relative.empty()) {
    identity.kind = CredentialSource::Kind::container;
    identity.url = !full.empty() ? full : "http://169.254.170.2" + relative;
    identity.auth_token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    identity.auth_token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  } else if (const std::string token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE"); !token_file.empty()) {
    identity.kind = CredentialSource::Kind::web_identity;
    identity.token_file = token_file;
    identity.role_arn = env("AWS_ROLE_ARN");
    if (const auto n = env("AWS_ROLE_SESSION_NAME"); !n.empty()) identity.session_name = n;
    identity.url = first({"AWS_ENDPOINT_URL_STS"});
    if (identity.url.empty()) identity.url = "https://sts." + region + ".amazonaws.com";
  }
}

bool S3Settings::uses_path_style() const { return path_style.value_or(!endpoint.empty()); }

void S3Settings::validate() const {
  if (where.bucket.empty()) throw Error("S3 store: no bucket; write --store s3://BUCKET/PREFIX");
  if (region.empty()) throw Error("S3 store: the region is empty; set EARMARK_S3_REGION (e.g. us-east-1)");
  if (!endpoint.empty() && endpoint.rfind("http://", 0) != 0 && endpoint.rfind("https://", 0) != 0)
    throw Error("S3 endpoint '" + endpoint + "': write it as http://HOST:PORT or https://HOST");
  const bool keys = !credentials.access_key.empty() && !credentials.secret_key.empty();
  if (!keys && identity.kind == CredentialSource::Kind::none)
    throw Error("S3 store s3://" + where.bucket + "/" + where.prefix +
                ": no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in Kubernetes from a Secret), "
                "or run with a workload identity (AWS_CONTAINER_CREDENTIALS_FULL_URI: EKS Pod Identity, ECS; "
                "AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: EKS IAM roles for service accounts)");
  if (!keys && identity.url.rfind("http://", 0) != 0 && identity.url.rfind("https://", 0) != 0)
    throw Error(identity.describe() + ": the endpoint must be an http:// or https:// URL");
  if (!keys && identity.kind == CredentialSource::Kind::web_identity && identity.role_arn.empty())
    throw Error("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not: give the role to assume");
  if (timeout_s < 1) throw Error("S3 timeout must be at least 1 s");
  if (attempts < 1) throw Error("S3 attempts must be at least 1");
  if (page_size < 1 || page_size > 1000) throw Error("S3 listing page size must be 1-1000");
}

std::string S3Settings::describe() const {
  std::string e = endpoint.empty() ? "https://s3." + region + ".amazonaws.com" : endpoint;
  return "s3://" + where.bucket + "/" + where.prefix + " at " + e;
}

// ------------------------------------------------------------------ XML (the few elements S3 answers with)

namespace {

std::string xml_unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    const auto semi = s.find(';', i);
    if (semi == std::string::npos) throw Error("S3 answer: malformed XML entity");
    const std::string ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out += '&';
    else if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (ent.size() > 1 && ent[0] == '#') {
      unsigned long cp = ent[1] == 'x' ? std::strtoul(ent.c_str() + 2, nullptr, 16) : std::strtoul(ent.c_str() + 1, nullptr, 10);
      if (cp < 0x80) out += char(cp);
      else if (cp < 0x800) out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
      else if (cp < 0x10000)
        out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
      else
        out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F)), out += char(0x80 | ((cp >> 6) & 0x3F)),
            out += char(0x80 | (cp & 0x3F));
    } else {
      throw Error("S3 answer: unknown XML entity &" + ent + ";");
    }
    i = semi;
  }
  return out;
}

// Text of every <tag>...</tag> inside `xml` (not nested in itself), in order.
std::vector<std::string> elements(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">", empty = "<" + tag + "/>";
  size_t pos = 0;
  for (;;) {
    const size_t a = xml.find(open, pos), e = xml.find(empty, pos);
    if (e != std::string::npos && (a == std::string::npos || e < a)) {
      out.emplace_back();
      pos = e + empty.size();
      continue;
    }
    if (a == std::string::npos) break;
    const size_t b = xml.find(close, a + open.size());
    if (b == std::string::npos) throw Error("S3 answer: <" + tag + "> is not closed");
    out.push_back(xml.substr(a + open.size(), b - a - open.size()));
    pos = b + close.size();
  }
  return out;
}

std::string element(const std::string& xml, const std::string& tag) {
  auto v = elements(xml, tag);
  return v.empty() ? std::string() : xml_unescape(v.front());
}

}  // namespace

ListPage parse_list_page(const std::string& xml) {
  if (xml.find("<ListBucketResult") == std::string::npos)
    throw Error("S3 answer is not a ListBucketResult: " + xml.substr(0, 200));
  ListPage page;
  for (const auto& c : elements(xml, "Contents")) {
    S3Object o;
    o.key = element(c, "Key");
    const std::string size = element(c, "Size");
    o.size = size.empty() ? 0 : size_t(std::strtoull(size.c_str(), nullptr, 10));
    page.objects.push_back(std::move(o));
  }
  for (const auto& p : elements(xml, "CommonPrefixes")) page.prefixes.push_back(element(p, "Prefix"));
  if (element(xml, "IsTruncated") == "true") {
    page.next_token = element(xml, "NextContinuationToken");
    if (page.next_token.empty()) throw Error("S3 answer: a truncated listing without NextContinuationToken");
  }
  return page;
}

std::pair<std::string, std::string> parse_s3_error(const std::string& xml) {
  try {
    return {element(xml, "Code"), element(xml, "Message")};
  } catch (const Error&) {
    return {};
  }
}

// ------------------------------------------------------------------ temporary credentials

std::string CredentialSource::describe() const {
  switch (kind) {
    case Kind::container: return "container credentials at " + url;
    case Kind::web_identity: return "web identity (role " + role_arn + ", token " + token_file + ") via " + url;
    case Kind::none: break;
  }
  return "no credential source";
}

namespace {

// An Expiration field as a time point; throws naming the answer it came from.
std::chrono::system_clock::time_point parse_expiration(const std::string& iso, const std::string& what) {
  const auto t = util::parse_utc_iso(iso);
  if (!t) throw Error(what + ": Expiration '" + iso + "' is not an ISO 8601 UTC time");
  return std::chrono::system_clock::from_time_t(*t);
}

std::string read_token(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(what + ": cannot read the token file " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.empty()) throw Error(what + ": the token file " + path + " is empty");
  return t;
}

// "http://host:port/path?q" -> {"http://host:port", "/path?q"}.
std::pair<std::string, std::string> split_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  const auto slash = scheme_end == std::string::npos ? std::string::npos : url.find('/', scheme_end + 3);
  if (slash == std::string::npos) return {url, "/"};
  return {url.substr(0, slash), url.substr(slash)};
}

std::string form_encode(const std::map<std::string, std::string>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += (out.empty() ? "" : "&") + k + "=" + sigv4::uri_encode(v, false);
  return out;
}

}  // namespace

TemporaryCredentials parse_container_credentials(const std::string& body) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception&) {
    throw Error("container credentials: the answer is not JSON: " + body.substr(0, 200));
  }
  auto field = [&](const char* name) -> std::string {
    if (!j.is_object() || !j.contains(name) || !j[name].is_string() || j[name].get<std::string>().empty())
      throw Error(std::string("container credentials: the answer has no ") + name);
    return j[name].get<std::string>();
  };
  TemporaryCredentials c;
  c.keys = {field("AccessKeyId"), field("SecretAccessKey"), j.value("Token", "")};
  c.expires = parse_expiration(field("Expiration"), "container credentials");
  return c;
}

TemporaryCredentials parse_sts_credentials(const std::string& xml) {
  if (xml.find("<AssumeRoleWithWebIdentityResponse") == std::string::npos)
    throw Error("STS answer is not an AssumeRoleWithWebIdentityResponse: " + xml.substr(0, 200));
  const auto found = elements(xml, "Credentials");
  const std::string creds = found.empty() ? std::string() : found.front();
  TemporaryCredentials c;
  c.keys = {element(creds, "AccessKeyId"), element(creds, "SecretAccessKey"), element(creds, "SessionToken")};
  if (c.keys.access_key.empty() || c.keys.secret_key.empty())
    throw Error("STS answer has no AccessKeyId/SecretAccessKey: " + xml.substr(0, 200));
  c.expires = parse_expiration(element(creds, "Expiration"), "STS");
  return c;
}

TemporaryCredentials fetch_credentials(const CredentialSource& src, int timeout_s) {
  const auto [origin, path] = split_url(src.url);
  httplib::Client cli(origin);
  cli.set_connection_timeout(timeout_s, 0);
  cli.set_read_timeout(timeout_s, 0);
  if (src.kind == CredentialSource::Kind::none) throw Error("no credential source to fetch from");
  const bool container = src.kind == CredentialSource::Kind::container;
  httplib::Headers h;
  std::string body;
  if (container) {
    const std::string auth = !src.auth_token_file.empty() ? read_token(src.auth_token_file, src.describe()) : src.auth_token;
    if (!auth.empty()) h.emplace("Authorization", auth);
  } else {
    body = form_encode({{"Action", "AssumeRoleWithWebIdentity"},
                        {"Version", "2011-06-15"},
                        {"RoleArn", src.role_arn},
                        {"RoleSessionName", src.session_name},
                        {"WebIdentityToken", read_token(src.token_file, src.describe())}});
  }
  httplib::Result res = container ? cli.Get(path, h) : cli.Post(path, body, "application/x-www-form-urlencoded");
  if (!res)
    throw Error(src.describe() + ": cannot reach it (" + httplib::to_string(res.error()) +
                (container ? "); is the pod identity agent running?" : "); check AWS_ENDPOINT_URL_STS and the network"));
  if (res->status != 200) {
    auto [code, message] = parse_s3_error(res->body);  // STS errors have the same <Code>/<Message>
    std::string detail = code.empty() ? res->body.substr(0, 200) : code + (message.empty() ? "" : ": " + message);
    throw Error(src.describe() + ": HTTP " + std::to_string(res->status) + " " + detail +
                (container ? "; check the pod's identity association"
                           : "; check that the role trusts this service account's identity provider"));
  }
  return container ? parse_container_credentials(res->body) : parse_sts_credentials(res->body);
}

// ------------------------------------------------------------------ client

// Connections are reused: a small pool of httplib clients (one request at a time each).
struct S3Client::Pool {
  std::mutex m;
  std::vector<std::unique_ptr<httplib::Client>> idle;
};

S3Client::S3Client(S3Settings settings) : s_(std::move(settings)), pool_(std::make_unique<Pool>()) {
  s_.validate();
  std::string endpoint = s_.endpoint.empty() ? "https://s3." + s_.region + ".amazonaws.com" : s_.endpoint;
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  const auto scheme_end = endpoint.find("://") + 3;
  std::string authority = endpoint.substr(scheme_end);
  if (authority.find('/') != std::string::npos)
    throw Error("S3 endpoint '" + s_.endpoint + "': give only scheme, host and port (http://HOST:PORT), no path");
  if (authority.empty()) throw Error("S3 endpoint '" + s_.endpoint + "' has no host");
  const std::string scheme = endpoint.substr(0, scheme_end);
  if (s_.uses_path_style()) {
    host_header_ = authority;
    base_path_ = "/" + s_.where.bucket;
  } else {
    authority = s_.where.bucket + "." + authority;
    host_header_ = authority;
    base_path_.clear();
  }
  // The Host header leaves out the default port, as clients and servers compute it.
  if (scheme == "http://" && host_header_.size() > 3 && host_header_.substr(host_header_.size() - 3) == ":80")
    host_header_.resize(host_header_.size() - 3);
  if (scheme == "https://" && host_header_.size() > 4 && host_header_.substr(host_header_.size() - 4) == ":443")
    host_header_.resize(host_header_.size() - 4);
  scheme_host_port_ = scheme + authority;
}

S3Client::~S3Client() = default;

sigv4::Credentials S3Client::credentials() {
  if (!s_.credentials.access_key.empty()) return s_.credentials;
  std::lock_guard lock(credentials_mutex_);
  if (!temporary_ || std::chrono::system_clock::now() + std::chrono::minutes(5) >= temporary_->expires)
    temporary_ = fetch_credentials(s_.identity, s_.timeout_s);
  return temporary_->keys;
}

S3Client::Response S3Client::request(const std::string& method, const std::string& key,
                                     const std::map<std::string, std::string>& query, const std::string& body,
                                     const std::string& content_type, const std::string& what,
                                     const std::map<std::string, std::string>& extra_headers) {
  sigv4::Request sr;
  sr.method = method;
  sr.host = host_header_;
  // Bucket requests (key "") go to /bucket (path-style) or / (virtual-hosted).
  sr.path = key.empty() ? (base_path_.empty() ? "/" : base_path_) : base_path_ + "/" + sigv4::uri_encode(key, true);
  sr.query = query;
  sr.payload_sha256 = sigv4::sha256_hex(body);
  std::string target = sr.path;
  if (!query.empty()) {
    std::string q;
    for (const auto& [k, v] : query) q += (q.empty() ? "" : "&") + sigv4::uri_encode(k, false) + "=" + sigv4::uri_encode(v, false);
    target += "?" + q;
  }
  std::string last_error;
  for (int attempt = 1; attempt <= s_.attempts; ++attempt) {
    if (attempt > 1) std::this_thread::sleep_for(std::chrono::milliseconds(200) * (1 << (2 * (attempt - 2))));
    std::unique_ptr<httplib::Client> cli;
    {
      std::lock_guard lock(pool_->m);
      if (!pool_->idle.empty()) {
        cli = std::move(pool_->idle.back());
        pool_->idle.pop_back();
      }
    }
    if (!cli) {
      cli = std::make_unique<httplib::Client>(scheme_host_port_);
      cli->set_connection_timeout(s_.timeout_s, 0);
      cli->set_read_timeout(s_.timeout_s, 0);
      cli->set_write_timeout(s_.timeout_s, 0);
      cli->set_keep_alive(true);
      cli->set_url_encode(false);  // the path is encoded already (and signed so)
      cli->set_decompress(false);
    }
    const sigv4::Signed sig = sigv4::sign(sr, credentials(), s_.region, "s3", sigv4::amz_date_now());
    httplib::Request req;
    req.method = method;
    req.path = target;
    for (const auto& [k, v] : sig.headers) req.headers.emplace(k, v);
    for (const auto& [k, v] : extra_headers) req.headers.emplace(k, v);  // not signed (Range)
    if (!body.empty() || method == "PUT") {
      req.body = body;
      req.headers.emplace("Content-Type", content_type.empty() ? "application/octet-stream" : content_type);
    }
    httplib::Result res = cli->send(req);
    if (!res) {
      last_error = "cannot reach " + scheme_host_port_ + " (" + httplib::to_string(res.error()) + ")";
      continue;  // the client is dropped: its connection is in an unknown state
    }
    Response out{res->status, res->body, {}};
    for (const auto& [k, v] : res->headers) out.headers[k] = v;
    {
      std::lock_guard lock(pool_->m);
      if (pool_->idle.size() < 16) pool_->idle.push_back(std::move(cli));
    }
    if (s_.credentials.access_key.empty() && (out.status == 400 || out.status == 403) && attempt < s_.attempts &&
        parse_s3_error(out.body).first == "ExpiredToken") {
      std::lock_guard lock(credentials_mutex_);
      temporary_.reset();  // revoked or expired early: fetch new ones and try again
      last_error = "ExpiredToken";
      continue;
    }
    if (out.status >= 500 || out.status == 429) {
      auto [code, message] = parse_s3_error(out.body);
      last_error = "HTTP " + std::to_string(out.status) + (code.empty() ? "" : " " + code) +
                   (message.empty() ? "" : ": " + message);
      continue;
    }
    return out;
  }
  throw Error(s_.describe() + ": " + what + " failed after " + std::to_string(s_.attempts) + " attempts: " + last_error +
              "; check that the S3 endpoint is up and reachable (EARMARK_S3_ENDPOINT)");
}

namespace {

[[noreturn]] void fail(const S3Settings& s, const std::string& what, int status, const std::string& body) {
  auto [code, message] = parse_s3_error(body);
  std::string hint;
  if (code == "NoSuchBucket") hint = "; create the bucket '" + s.where.bucket + "' or fix the store URL";
  else if (code == "SignatureDoesNotMatch") hint = "; check AWS_SECRET_ACCESS_KEY (and EARMARK_S3_REGION)";
  else if (code == "InvalidAccessKeyId") hint = "; check AWS_ACCESS_KEY_ID";
  else if (code == "AccessDenied" || status == 403) hint = "; the credentials lack permission for this bucket";
  else if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed")
    hint = "; the bucket is in another region: set EARMARK_S3_REGION";
  throw Error(s.describe() + ": " + what + ": HTTP " + std::to_string(status) + (code.empty() ? "" : " " + code) +
              (message.empty() ? "" : " (" + message + ")") + hint);
}

}  // namespace

void S3Client::put(const std::string& key, const std::string& bytes, const std::string& content_type) {
  const std::string full = s_.where.prefix + key;
  auto r = request("PUT", full, {}, bytes, content_type, "PUT " + key);
  if (r.status != 200) fail(s_, "PUT " + key, r.status, r.body);
}

std::optional<std::string> S3Client::get(const std::string& key) {
  const std::string full = s_.where.prefix + key;
  auto r = request("GET", full, {}, {}, {}, "GET " + key);
  if (r.status == 404 && parse_s3_error(r.body).first != "NoSuchBucket") return std::nullopt;
  if (r.status != 200) fail(s_, "GET " + key, r.status, r.body);
  return std::move(r.body);
}

bool S3Client::exists(const std::string& key) {
  const std::string full = s_.where.prefix + key;
  auto r = request("HEAD", full, {}, {}, {}, "HEAD " + key);
  if (r.status == 200) return true;
  if (r.status == 404) return false;  // HEAD has no body: a missing bucket also reads as absent here
  fail(s_, "HEAD " + key, r.status, r.body);
}

std::optional<size_t> S3Client::size(const std::string& key) {
  const std::string full = s_.where.prefix + key;
  auto r = request("HEAD", full, {}, {}, {}, "HEAD " + key);
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) fail(s_, "HEAD " + key, r.status, r.body);
  for (const auto& [k, v] : r.headers) {
    std::string lower = k;
    for (auto& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (lower == "content-length") {
      try {
        return size_t(std::stoull(v));
      } catch (const std::exception&) {
        break;
      }
    }
  }
  throw Error(s_.describe() + ": HEAD " + key + " gave no Content-Length");
}

std::string S3Client::get_range(const std::string& key, size_t offset, size_t length) {
  if (length == 0) return {};
  const std::string full = s_.where.prefix + key;
  const std::string range = "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1);
  auto r = request("GET", full, {}, {}, {}, "GET " + key + " (" + range + ")", {{"Range", range}});
  if (r.status == 206) return std::move(r.body);
  if (r.status == 416) return {};  // past the end
  if (r.status != 200) fail(s_, "GET " + key + " (" + range + ")", r.status, r.body);
  // A server that ignores Range sends the whole object: take the part asked for.
  return offset >= r.body.size() ? std::string() : r.body.substr(offset, length);
}

void S3Client::remove(const std::string& key) {
  const std::string full = s_.where.prefix + key;
  auto r = request("DELETE", full, {}, {}, {}, "DELETE " + key);
  if (r.status != 204 && r.status != 200 && !(r.status == 404 && parse_s3_error(r.body).first == "NoSuchKey"))
    fail(s_, "DELETE " + key, r.status, r.body);
}

std::vector<std::string> S3Client::list_pages(const std::string& prefix, const std::string& delimiter,
                                              std::vector<S3Object>* objects) {
  std::vector<std::string> folders;
  std::string token;
  const std::string full = s_.where.prefix + prefix;
  for (int page = 0; page < 100000; ++page) {
    std::map<std::string, std::string> q = {{"list-type", "2"}, {"prefix", full}, {"max-keys", std::to_string(s_.page_size)}};
    if (!delimiter.empty()) q["delimiter"] = delimiter;
    if (!token.empty()) q["continuation-token"] = token;
    auto r = request("GET", "", q, {}, {}, "LIST " + prefix);
    if (r.status != 200) fail(s_, "LIST " + prefix, r.status, r.body);
    ListPage p = parse_list_page(r.body);
    if (objects)
      for (auto& o : p.objects) {
        if (o.key.rfind(s_.where.prefix, 0) == 0) o.key = o.key.substr(s_.where.prefix.size());
        objects->push_back(std::move(o));
      }
    for (auto& f : p.prefixes) {
      if (f.rfind(full, 0) != 0) continue;
      f = f.substr(full.size());
      if (!f.empty() && f.back() == '/') f.pop_back();
      if (!f.empty()) folders.push_back(std::move(f));
    }
    if (p.next_token.empty()) return folders;
    token = p.next_token;
  }
  throw Error(s_.describe() + ": LIST " + prefix + ": the listing does not end");
}

std::vector<S3Object> S3Client::list(const std::string& prefix) {
  std::vector<S3Object> out;
  list_pages(prefix, "", &out);
  return out;
}

std::vector<std::string> S3Client::list_folders(const std::string& prefix) { return list_pages(prefix, "/", nullptr); }

void S3Client::check() {
  auto r = request("GET", "", {{"list-type", "2"}, {"max-keys", "1"}, {"prefix", s_.where.prefix}}, {}, {}, "LIST");
  if (r.status != 200) fail(s_, "LIST", r.status, r.body);
}

}  // namespace earmark::serve
