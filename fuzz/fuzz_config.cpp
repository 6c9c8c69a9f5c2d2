// Fuzzes the configuration loader: YAML/JSON text -> Config -> validate -> to_yaml.
// Properties: only earmark::Error escapes; a configuration that validates prints YAML that
// reads back to the same configuration.
#include <cstdio>
#include <string>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  earmark::Config c;
  try {
    c = earmark::Config::from_yaml_text(text, "fuzz.yaml");
    c.validate();
  } catch (const earmark::Error&) {
    return 0;
  }
  const std::string printed = c.to_yaml();
  earmark::Config back;
  try {
    back = earmark::Config::from_yaml_text(printed, "printed.yaml");
    back.validate();
  } catch (const earmark::Error& e) {
    std::fprintf(stderr, "printed configuration does not load: %s\n%s\n", e.what(), printed.c_str());
    std::abort();
  }
  EARMARK_FUZZ_CHECK(back.to_yaml() == printed);
  return 0;
}
