// UTC timestamps as the service writes and reads them ("2026-11-25T12:00:00Z").
#pragma once

#include <ctime>
#include <optional>
#include <string>

namespace earmark::util {

// "2026-11-25T12:00:00Z" -> seconds since the epoch. Fractions of a second and a "+00:00"
// offset are accepted (AWS writes both); anything else, or trailing text, gives nullopt.
std::optional<std::time_t> parse_utc_iso(const std::string& s);

// The current time as "2026-11-25T12:00:00Z", what parse_utc_iso reads back.
std::string utc_now_iso();

}  // namespace earmark::util
