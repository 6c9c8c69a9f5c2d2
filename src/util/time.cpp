#include "util/time.hpp"

#include <cctype>
#include <cstring>

namespace earmark::util {

std::optional<std::time_t> parse_utc_iso(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return std::nullopt;
  if (*end == '.') {
    ++end;
    if (!std::isdigit(static_cast<unsigned char>(*end))) return std::nullopt;
    while (std::isdigit(static_cast<unsigned char>(*end))) ++end;
  }
  if (std::strcmp(end, "Z") != 0 && std::strcmp(end, "+00:00") != 0) return std::nullopt;
  return timegm(&tm);
}

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return when;
}

}  // namespace earmark::util
