#include "model/head.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "earmark/earmark.hpp"
#include "util/file.hpp"
#include "util/sha256.hpp"

namespace earmark::model {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kWeightsFile = "weights.bin";

size_t weight_count(const Head& h) {
  const size_t d = size_t(h.dim), k = h.classes.size(), m = size_t(h.hidden);
  return 2 * d + (m == 0 ? k * d + k : m * d + m + k * m + k);
}

std::string sha256_bytes(const std::string& bytes) {
  util::Sha256 s;
  s.update(bytes);
  return s.hex();
}

}  // namespace

void Head::check() const {
  const std::string where = source.empty() ? std::string("head") : source;
  auto fail = [&](const std::string& what) { throw Error(where + ": " + what); };
  if (classes.empty()) fail("the head has no classes");
  std::set<std::string> seen;
  for (const auto& c : classes) {
    if (c.empty()) fail("a class name is empty");
    if (!seen.insert(c).second) fail("class '" + c + "' is listed twice");
  }
  if (dim <= 0 || dim > 65536) fail("bad embedding dim " + std::to_string(dim));
  if (hidden < 0 || hidden > 65536) fail("bad hidden size " + std::to_string(hidden));
  const size_t d = size_t(dim), k = classes.size(), m = size_t(hidden);
  if (mean.size() != d || inv_std.size() != d) fail("standardisation vectors do not have " + std::to_string(d) + " values");
  if (hidden == 0) {
    if (!w1.empty() || !b1.empty()) fail("a logistic-regression head must not have hidden-layer weights");
    if (w2.size() != k * d || b2.size() != k) fail("output layer does not match classes x dim");
  } else {
    if (w1.size() != m * d || b1.size() != m) fail("hidden layer does not match hidden x dim");
    if (w2.size() != k * m || b2.size() != k) fail("output layer does not match classes x hidden");
  }
  if (!thresholds.empty() && thresholds.size() != k) fail("thresholds do not match the classes");
  for (const auto* v : {&mean, &inv_std, &w1, &b1, &w2, &b2})
    for (float x : *v)
      if (!std::isfinite(x)) fail("the weights contain non-finite values (corrupt or diverged training)");
  if (!(pool_columns >= 1 && pool_columns % 2 == 1 && chunk_s > 0 && context_s >= 0))
    fail("bad frame settings (chunk_s, context_s, pool_columns)");
}

void Head::logits(const float* emb, size_t n, float* out) const {
  const size_t d = size_t(dim), k = classes.size(), m = size_t(hidden);
  std::vector<float> x(d), h(m);
  for (size_t i = 0; i < n; ++i) {
    const float* e = emb + i * d;
    for (size_t j = 0; j < d; ++j) x[j] = (e[j] - mean[j]) * inv_std[j];
    const float* in = x.data();
    size_t in_dim = d;
    if (m > 0) {
      for (size_t u = 0; u < m; ++u) {
        const float* w = w1.data() + u * d;
        float s = b1[u];
        for (size_t j = 0; j < d; ++j) s += w[j] * x[j];
        h[u] = std::max(0.0f, s);
      }
      in = h.data();
      in_dim = m;
    }
    for (size_t c = 0; c < k; ++c) {
      const float* w = w2.data() + c * in_dim;
      float s = b2[c];
      for (size_t j = 0; j < in_dim; ++j) s += w[j] * in[j];
      out[i * k + c] = s;
    }
  }
}

void Head::save(const std::string& dir) const {
  check();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the head folder (" + ec.message() + ")");
  std::string bytes;
  bytes.reserve(weight_count(*this) * 4);
  auto put = [&](const std::vector<float>& v) {
    for (float f : v) {
      uint32_t u;
      std::memcpy(&u, &f, 4);
      if constexpr (std::endian::native == std::endian::big) u = __builtin_bswap32(u);
      const char b[4] = {char(u & 0xff), char((u >> 8) & 0xff), char((u >> 16) & 0xff), char((u >> 24) & 0xff)};
      bytes.append(b, 4);
    }
  };
  for (const auto* v : {&mean, &inv_std, &w1, &b1, &w2, &b2}) put(*v);
  const std::string wpath = (fs::path(dir) / kWeightsFile).string();
  {
    std::ofstream f(wpath, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
    if (!f) throw Error(wpath + ": cannot write the head weights (folder writable? disk full?)");
  }
  json j;
  j["format"] = kHeadFormat;
  j["version"] = kHeadFormatVersion;
  j["classes"] = classes;
  j["embedding"] = {{"layer", kHeadEmbeddingLayer},
                    {"dim", dim},
                    {"frames", {{"method", "columns"}, {"chunk_s", chunk_s}, {"context_s", context_s},
                                {"pool_columns", pool_columns}}}};
  if (column_norm_max >= 0) j["embedding"]["frames"]["column_norm_max"] = column_norm_max;
  j["backbone"] = {{"name", backbone}, {"checkpoint_sha256", backbone_sha256}};
  j["architecture"] = {{"type", hidden == 0 ? "logistic_regression" : "mlp"}, {"hidden", hidden},
                       {"activation", hidden == 0 ? "none" : "relu"}, {"output", "sigmoid per class"},
                       {"exclusive", exclusive}};
  json th = json::object();
  for (size_t c = 0; c < thresholds.size(); ++c)
    if (thresholds[c] >= 0) th[classes[c]] = thresholds[c];
  j["thresholds"] = th;
  j["weights"] = {{"file", kWeightsFile}, {"dtype", "float32-le"}, {"count", weight_count(*this)},
                  {"bytes", bytes.size()}, {"sha256", sha256_bytes(bytes)},
                  {"order", hidden == 0 ? json::array({"mean", "inv_std", "w", "b"})
                                        : json::array({"mean", "inv_std", "w1", "b1", "w2", "b2"})}};
  json training = json::parse(training_json, nullptr, false);
  j["training"] = training.is_discarded() ? json::object() : training;
  const std::string hpath = (fs::path(dir) / "head.json").string();
  std::ofstream f(hpath, std::ios::binary | std::ios::trunc);
  f << j.dump(2) << "\n";
  if (!f) throw Error(hpath + ": cannot write (folder writable? disk full?)");
}

Head Head::load(const std::string& path) {
  std::error_code ec;
  const fs::path hpath = fs::is_directory(path, ec) ? fs::path(path) / "head.json" : fs::path(path);
  const std::string hs = hpath.string();
  if (!fs::is_regular_file(hpath, ec))
    throw Error(hs + ": no such head file; give the folder `earmark train -o` wrote (it holds head.json and " +
                kWeightsFile + ")");
  json j = json::parse(util::read_file_bounded(hs, util::kMaxHeadJsonBytes, "head file"), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(hs + ": not valid JSON; the head file is corrupt, train the head again");
  Head h;
  h.source = hs;
  try {
    if (j.value("format", std::string()) != kHeadFormat)
      throw Error(hs + ": not an Earmark head (\"format\" is not \"" + kHeadFormat + "\")");
    const int version = j.at("version").get<int>();
    if (version != kHeadFormatVersion)
      throw Error(hs + ": head format version " + std::to_string(version) + " is not supported (this Earmark reads version " +
                  std::to_string(kHeadFormatVersion) + "); train the head again with this Earmark");
    h.classes = j.at("classes").get<std::vector<std::string>>();
    const auto& e = j.at("embedding");
    if (e.at("layer").get<std::string>() != kHeadEmbeddingLayer)
      throw Error(hs + ": the head expects embedding layer '" + e.at("layer").get<std::string>() + "', this Earmark gives '" +
                  kHeadEmbeddingLayer + "'");
    h.dim = e.at("dim").get<int>();
    const auto& fr = e.at("frames");
    if (fr.value("method", std::string("columns")) != "columns") throw Error(hs + ": unsupported frames.method in the head");
    h.chunk_s = fr.at("chunk_s").get<double>();
    h.context_s = fr.at("context_s").get<double>();
    h.pool_columns = fr.at("pool_columns").get<int>();
    h.column_norm_max = fr.value("column_norm_max", -1.0);
    h.backbone = j.at("backbone").value("name", std::string());
    h.backbone_sha256 = j.at("backbone").at("checkpoint_sha256").get<std::string>();
    h.hidden = j.at("architecture").at("hidden").get<int>();
    h.exclusive = j.at("architecture").value("exclusive", false);
    h.thresholds.assign(h.classes.size(), -1.0);
    if (j.contains("thresholds")) {
      for (const auto& [name, v] : j.at("thresholds").items()) {
        const auto it = std::find(h.classes.begin(), h.classes.end(), name);
        if (it == h.classes.end()) throw Error(hs + ": threshold for unknown class '" + name + "'");
        const double t = v.get<double>();
        if (!(t >= 0 && t <= 1)) throw Error(hs + ": threshold of '" + name + "' must be between 0 and 1");
        h.thresholds[size_t(it - h.classes.begin())] = t;
      }
    }
    if (j.contains("training")) h.training_json = j.at("training").dump();
    const auto& w = j.at("weights");
    const std::string wname = w.at("file").get<std::string>();
    if (wname.empty() || wname.find_first_of("/\\") != std::string::npos || wname == "." || wname == "..")
      throw Error(hs + ": the weights file '" + wname + "' must be a plain file name beside head.json");
    const fs::path wpath = hpath.parent_path() / wname;
    const std::string ws = wpath.string();
    if (!fs::exists(wpath, ec))
      throw Error(ws + ": cannot read the head weights (missing?); copy the whole head folder");
    const std::string bytes = util::read_file_bounded(ws, util::kMaxHeadWeightsBytes, "head weights file");
    if (sha256_bytes(bytes) != w.at("sha256").get<std::string>())
      throw Error(ws + ": checksum mismatch with head.json; the weights file is corrupt or from another head, train again");
    h.source = hs;
    const size_t d = size_t(h.dim), k = h.classes.size(), m = size_t(std::max(0, h.hidden));
    // Bounded before the size arithmetic below, which must not overflow.
    if (h.dim <= 0 || h.dim > 65536 || h.hidden < 0 || h.hidden > 65536 || k == 0 || k > 100000)
      throw Error(hs + ": bad dim, hidden or classes (dim and hidden at most 65536, 1 to 100000 classes)");
    const size_t want = weight_count(h);
    if (bytes.size() != want * 4)
      throw Error(ws + ": holds " + std::to_string(bytes.size()) + " bytes, the head needs " + std::to_string(want * 4));
    size_t pos = 0;
    auto take = [&](std::vector<float>& v, size_t n) {
      v.resize(n);
      for (size_t i = 0; i < n; ++i, pos += 4) {
        uint32_t u = uint32_t(uint8_t(bytes[pos])) | uint32_t(uint8_t(bytes[pos + 1])) << 8 |
                     uint32_t(uint8_t(bytes[pos + 2])) << 16 | uint32_t(uint8_t(bytes[pos + 3])) << 24;
        if constexpr (std::endian::native == std::endian::big) u = __builtin_bswap32(u);
        std::memcpy(&v[i], &u, 4);
      }
    };
    take(h.mean, d);
    take(h.inv_std, d);
    if (m > 0) {
      take(h.w1, m * d);
      take(h.b1, m);
      take(h.w2, k * m);
    } else {
      take(h.w2, k * d);
    }
    take(h.b2, k);
  } catch (const json::exception& e) {
    throw Error(hs + ": missing or malformed field (" + std::string(e.what()) + "); the head file is corrupt, train again");
  }
  h.check();
  return h;
}

void Head::check_compatible(const std::string& checkpoint_sha256, int embedding_dim, const FramesConfig& frames) const {
  if (backbone_sha256 != checkpoint_sha256)
    throw Error(source + ": this head was trained on another network (" + (backbone.empty() ? "?" : backbone) +
                ", checkpoint sha256 " + backbone_sha256.substr(0, 12) + "...), the detector runs checkpoint sha256 " +
                checkpoint_sha256.substr(0, 12) + "...: use the model it was trained with (--model " + backbone +
                ") or train the head again on this one");
  if (dim != embedding_dim)
    throw Error(source + ": the head expects " + std::to_string(dim) + "-dim embeddings, the network gives " +
                std::to_string(embedding_dim));
  if (frames.method != "columns")
    throw Error(source + ": custom-class heads need frames.method 'columns' (the configuration has '" + frames.method + "')");
  auto differs = [](double a, double b) { return std::abs(a - b) > 1e-9; };
  if (differs(frames.chunk_s, chunk_s) || differs(frames.context_s, context_s) || frames.pool_columns != pool_columns)
    throw Error(source + ": the head was trained with frames chunk_s " + std::to_string(chunk_s) + ", context_s " +
                std::to_string(context_s) + ", pool_columns " + std::to_string(pool_columns) +
                "; the configuration differs: use those settings or train the head with yours");
  if (column_norm_max >= 0 && differs(frames.column_norm_max, column_norm_max))
    throw Error(source + ": the head was trained with frames.column_norm_max " + std::to_string(column_norm_max) +
                ", the configuration has " + std::to_string(frames.column_norm_max) +
                ": use that setting or train the head with yours");
}

}  // namespace earmark::model
