// The one error type of CloudDetect. Code below main() throws it; main() and the HTTP layer catch
// it, and the HTTP layer turns `code` into a status in exactly one function (http::status_for).
#pragma once

#include <stdexcept>
#include <string>

namespace clouddetect {

enum class ErrorCode {
  kInvalidArgument,       // malformed input: bad JSON, bad base64, bad cfg, bad flag
  kNotFound,              // a file or a route that does not exist
  kPayloadTooLarge,       // body or image over a configured limit
  kUnsupportedMediaType,  // wrong Content-Type
  kUnprocessable,         // well-formed request whose bytes are not a decodable image
  kUnavailable,           // overloaded or shutting down; retry later
  kInternal,              // a bug or a library failure
};

const char* to_string(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace clouddetect
