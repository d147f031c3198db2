// libFuzzer target for the request codec: any input must parse or throw clouddetect::Error, and
// what parses must survive a base64/serialization round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/base64.h"
#include "api/json_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace clouddetect::api;
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  try {
    const DetectRequest request = parse_detect_request(body);
    const std::string encoded = base64_encode(request.image.data(), request.image.size());
    if (base64_decode(encoded) != request.image) std::abort();
    const std::optional<std::string> id = try_extract_id(body);
    if (!id || *id != request.id) std::abort();
    DetectResponse response;
    response.id = request.id;
    (void)serialize_detect_response(response);
  } catch (const clouddetect::Error&) {
  }

  try {
    const std::vector<unsigned char> bytes = base64_decode(body);
    if (base64_decode(base64_encode(bytes.data(), bytes.size())) != bytes) std::abort();
  } catch (const clouddetect::Error&) {
  }
  (void)error_body(try_extract_id(body), body);
  return 0;
}
