// JSON codec of the detection API (Boost.JSON). Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "api/detect_types.h"
#include "core/error.h"

namespace clouddetect::api {

// A malformed detection request (code kInvalidArgument). Carries the request id when it could be
// read, so the error body can echo it.
class RequestError : public Error {
 public:
  RequestError(std::optional<std::string> id, const std::string& message)
      : Error(ErrorCode::kInvalidArgument, message), id_(std::move(id)) {}
  const std::optional<std::string>& id() const { return id_; }

 private:
  std::optional<std::string> id_;
};

// Parses `{"id": "<string>", "image": "<base64, optional data: URL prefix>", "annotate": <bool,
// optional>}`. `id` must be a JSON string (numbers are rejected) of at most limits.max_id_bytes
// bytes; `image` must decode to at least one byte. Unknown fields are ignored. Throws RequestError
// on any problem.
DetectRequest parse_detect_request(std::string_view body, const RequestLimits& limits = {});

// The "id" string of `body` if it is a JSON object with a valid id, else nullopt. Never throws.
std::optional<std::string> try_extract_id(std::string_view body, const RequestLimits& limits = {});

// `{"id": ..., "objects": [{"label", "accuracy", "rectangle": {"height","left","top","width"}}]}`
// plus `"annotated_image": "<base64 JPEG>"` when response.annotated_jpeg is not empty.
std::string serialize_detect_response(const DetectResponse& response);

// `{"id": <string, or null when unknown>, "error": "<message>"}`.
std::string error_body(const std::optional<std::string>& id, std::string_view message);

}  // namespace clouddetect::api
