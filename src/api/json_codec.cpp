#include "api/json_codec.h"

#include <boost/json.hpp>

#include "api/base64.h"
#include "api/json_text.h"

namespace clouddetect::api {
namespace json = boost::json;

namespace {

const char* kind_name(json::kind k) {
  switch (k) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "unknown";
}

// Parses `body` into `storage`-allocated JSON. Throws RequestError (no id) with the byte offset.
json::value parse_json(std::string_view body, const RequestLimits& limits, json::storage_ptr storage) {
  json::parse_options options;
  options.max_depth = limits.max_json_depth;
  json::stream_parser parser(storage, options);
  json::error_code ec;
  const std::size_t consumed = parser.write(body.data(), body.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    throw RequestError(std::nullopt,
                       "request body is not valid JSON (at byte " + std::to_string(consumed) + "): " + ec.message());
  }
  return parser.release();
}

// The id of `object`, or nullopt when it is missing, not a string or too long; `problem` says why.
std::optional<std::string> read_id(const json::object& object, const RequestLimits& limits, std::string* problem) {
  const json::value* id = object.if_contains("id");
  if (id == nullptr) {
    *problem = "missing field \"id\" (a string)";
    return std::nullopt;
  }
  if (!id->is_string()) {
    *problem = std::string("field \"id\" must be a string, got ") + kind_name(id->kind());
    return std::nullopt;
  }
  const json::string& text = id->get_string();
  if (text.size() > limits.max_id_bytes) {
    *problem = "field \"id\" is longer than " + std::to_string(limits.max_id_bytes) + " bytes";
    return std::nullopt;
  }
  return std::string(text.data(), text.size());
}

}  // namespace

DetectRequest parse_detect_request(std::string_view body, const RequestLimits& limits) {
  json::monotonic_resource resource;
  const json::value root = parse_json(body, limits, &resource);
  if (!root.is_object()) {
    throw RequestError(std::nullopt, std::string("request body must be a JSON object, got ") + kind_name(root.kind()));
  }
  const json::object& object = root.get_object();

  std::string problem;
  std::optional<std::string> id = read_id(object, limits, &problem);
  if (!id) throw RequestError(std::nullopt, problem);

  DetectRequest request;
  request.id = *id;

  const json::value* image = object.if_contains("image");
  if (image == nullptr) {
    throw RequestError(id, "missing field \"image\" (a base64 string)");
  }
  if (!image->is_string()) {
    throw RequestError(id, std::string("field \"image\" must be a base64 string, got ") + kind_name(image->kind()));
  }
  const json::string& text = image->get_string();
  try {
    request.image = base64_decode(std::string_view(text.data(), text.size()));
  } catch (const Error& e) {
    throw RequestError(id, std::string("field \"image\": ") + e.what());
  }
  if (request.image.empty()) throw RequestError(id, "field \"image\" is empty");

  if (const json::value* annotate = object.if_contains("annotate")) {
    if (!annotate->is_bool()) {
      throw RequestError(id, std::string("field \"annotate\" must be a boolean, got ") + kind_name(annotate->kind()));
    }
    request.annotate = annotate->get_bool();
  }
  return request;
}

std::optional<std::string> try_extract_id(std::string_view body, const RequestLimits& limits) {
  try {
    json::monotonic_resource resource;
    const json::value root = parse_json(body, limits, &resource);
    if (!root.is_object()) return std::nullopt;
    std::string problem;
    return read_id(root.get_object(), limits, &problem);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string serialize_detect_response(const DetectResponse& response) {
  std::string out;
  out.reserve(64 + response.objects.size() * 96 + response.annotated_jpeg.size() * 4 / 3);
  out += "{\"id\":";
  append_json_string(out, response.id);
  out += ",\"objects\":[";
  bool first = true;
  for (const DetectedObject& object : response.objects) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"label\":";
    append_json_string(out, object.label);
    out += ",\"accuracy\":";
    append_json_number(out, object.accuracy);
    const Rectangle& r = object.rectangle;
    out += ",\"rectangle\":{\"height\":" + std::to_string(r.height) + ",\"left\":" + std::to_string(r.left) +
           ",\"top\":" + std::to_string(r.top) + ",\"width\":" + std::to_string(r.width) + "}}";
  }
  out += ']';
  if (!response.annotated_jpeg.empty()) {
    out += ",\"annotated_image\":\"";
    out += base64_encode(response.annotated_jpeg);
    out += '"';
  }
  out += '}';
  return out;
}

std::string error_body(const std::optional<std::string>& id, std::string_view message) {
  std::string out = "{\"id\":";
  if (id) {
    append_json_string(out, *id);
  } else {
    out += "null";
  }
  out += ",\"error\":";
  append_json_string(out, message);
  out += '}';
  return out;
}

}  // namespace clouddetect::api
