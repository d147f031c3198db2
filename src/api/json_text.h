// Helpers to write JSON text by hand (responses, log lines). Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace clouddetect::api {

// Appends `text` as a quoted JSON string: escapes quotes, backslashes and control characters and
// replaces bytes that are not valid UTF-8 with U+FFFD, so the output is always valid JSON.
void append_json_string(std::string& out, std::string_view text);

// Appends a JSON number with up to `significant_digits` digits (shortest form, e.g. 0.97, 1e-07);
// NaN and infinities, which JSON cannot represent, are written as 0.
void append_json_number(std::string& out, double value, int significant_digits = 6);

}  // namespace clouddetect::api
