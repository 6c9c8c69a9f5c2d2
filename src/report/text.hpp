// report: small text helpers shared by the HTML/Markdown report and the pictures.
#pragma once

#include <string>
#include <string_view>

namespace earmark::report {

// Paths and labels are bytes and need not be UTF-8; Cairo refuses invalid UTF-8 (and stops
// drawing) and browsers show mojibake, so bad bytes become U+FFFD.
std::string valid_utf8(std::string_view s);

// &, <, >, " and ' as entities (safe in element text and in quoted attributes), after valid_utf8.
std::string html_escape(std::string_view s);

// For Markdown table cells: '|' escaped, line breaks as spaces, HTML-significant characters as
// entities (Markdown renderers pass raw HTML through).
std::string md_escape(std::string_view s);

// RFC 4648 base64 with padding.
std::string base64(std::string_view bytes);
// Inverse of base64(); whitespace is skipped. Returns false for other characters outside
// the alphabet or a bad length.
bool base64_decode(std::string_view text, std::string& bytes);

}  // namespace earmark::report
