// Fuzzes the custom-class head loader (model::Head::load): head.json plus weights.bin.
// Input: 2 bytes little-endian length n, then n bytes of head.json, then the weights file.
// head.json's weights.sha256 is set to the real checksum of the weights bytes (when the
// JSON has such a field), so that the fuzzer reaches the weight parsing behind the checksum.
// Properties: only earmark::Error escapes; a head that loads passes check() and scores.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "earmark/earmark.hpp"
#include "fuzz_support.hpp"
#include "model/head.hpp"
#include "util/sha256.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t n = std::min(size - 2, size_t(data[0]) | size_t(data[1]) << 8);
  std::string head(reinterpret_cast<const char*>(data + 2), n);
  const std::string weights(reinterpret_cast<const char*>(data + 2 + n), size - 2 - n);
  std::string weights_name = "weights.bin";
  auto j = nlohmann::json::parse(head, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("weights") && j["weights"].is_object()) {
    earmark::util::Sha256 sha;
    sha.update(weights);
    j["weights"]["sha256"] = sha.hex();
    const auto& f = j["weights"].contains("file") ? j["weights"]["file"] : nlohmann::json();
    if (f.is_string()) {
      const std::string name = f.get<std::string>();
      if (!name.empty() && name.size() < 100 && name.find_first_of("/\\") == std::string::npos && name != "." &&
          name != ".." && name != "head.json")
        weights_name = name;
    }
    head = j.dump();
  }
  const auto dir = earmark::fuzz::scratch() / "head";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  earmark::fuzz::write_file(dir / "head.json", head);
  earmark::fuzz::write_file(dir / weights_name, weights);
  try {
    const auto h = earmark::model::Head::load(dir.string());
    h.check();
    const std::vector<float> x(size_t(h.dim) * 2, 0.5f);
    std::vector<float> out(h.classes.size() * 2);
    h.logits(x.data(), 2, out.data());
  } catch (const earmark::Error&) {
  }
  return 0;
}
