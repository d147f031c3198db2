#include "api/json_codec.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/json_text.h"

namespace clouddetect::api {
namespace {
namespace json = boost::json;

// Parses `body` expecting a RequestError; returns it.
RequestError parse_error(std::string_view body, const RequestLimits& limits = {}) {
  try {
    parse_detect_request(body, limits);
  } catch (const RequestError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e;
  }
  ADD_FAILURE() << "no error for " << body;
  return RequestError(std::nullopt, "");
}

TEST(ParseDetectRequest, ReadsIdImageAndAnnotate) {
  const DetectRequest r = parse_detect_request(R"({"id": "img-1", "image": "Zm9vYmFy"})");
  EXPECT_EQ(r.id, "img-1");
  EXPECT_EQ(std::string(r.image.begin(), r.image.end()), "foobar");
  EXPECT_FALSE(r.annotate);

  const DetectRequest a =
      parse_detect_request(R"({"image": "data:image/jpeg;base64,Zm9v", "annotate": true, "extra": [1, 2], "id": ""})");
  EXPECT_EQ(a.id, "");
  EXPECT_EQ(a.image.size(), 3u);
  EXPECT_TRUE(a.annotate);
}

TEST(ParseDetectRequest, UnescapesId) {
  const DetectRequest r = parse_detect_request(R"({"id": "a\"b\u00e9\n", "image": "Zg=="})");
  EXPECT_EQ(r.id, "a\"b\xc3\xa9\n");
}

TEST(ParseDetectRequest, RejectsNonJson) {
  for (const char* body : {"", "not json", "{\"id\": \"x\",", "{\"id\": \"x\"} trailing", "\xff"}) {
    const RequestError e = parse_error(body);
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
    EXPECT_FALSE(e.id().has_value());
  }
}

TEST(ParseDetectRequest, RejectsNonObject) {
  EXPECT_STREQ(parse_error("[1]").what(), "request body must be a JSON object, got an array");
  EXPECT_STREQ(parse_error("\"x\"").what(), "request body must be a JSON object, got a string");
  EXPECT_STREQ(parse_error("null").what(), "request body must be a JSON object, got null");
}

TEST(ParseDetectRequest, RejectsMissingOrNonStringId) {
  RequestError e = parse_error(R"({"image": "Zg=="})");
  EXPECT_STREQ(e.what(), "missing field \"id\" (a string)");
  EXPECT_FALSE(e.id());
  e = parse_error(R"({"id": 42, "image": "Zg=="})");
  EXPECT_STREQ(e.what(), "field \"id\" must be a string, got a number");
  EXPECT_FALSE(e.id());
  e = parse_error(R"({"id": null, "image": "Zg=="})");
  EXPECT_STREQ(e.what(), "field \"id\" must be a string, got null");
}

TEST(ParseDetectRequest, RejectsTooLongId) {
  RequestLimits limits;
  limits.max_id_bytes = 4;
  EXPECT_EQ(parse_detect_request(R"({"id": "abcd", "image": "Zg=="})", limits).id, "abcd");
  const RequestError e = parse_error(R"({"id": "abcde", "image": "Zg=="})", limits);
  EXPECT_STREQ(e.what(), "field \"id\" is longer than 4 bytes");
  EXPECT_FALSE(e.id());
}

TEST(ParseDetectRequest, RejectsBadImageAndKeepsId) {
  RequestError e = parse_error(R"({"id": "x"})");
  EXPECT_STREQ(e.what(), "missing field \"image\" (a base64 string)");
  EXPECT_EQ(e.id(), "x");
  e = parse_error(R"({"id": "x", "image": 12})");
  EXPECT_STREQ(e.what(), "field \"image\" must be a base64 string, got a number");
  EXPECT_EQ(e.id(), "x");
  e = parse_error(R"({"id": "x", "image": ""})");
  EXPECT_STREQ(e.what(), "field \"image\" is empty");
  e = parse_error(R"({"id": "x", "image": "data:image/png;base64,"})");
  EXPECT_STREQ(e.what(), "field \"image\" is empty");
  e = parse_error(R"({"id": "x", "image": "Zm9v$"})");
  EXPECT_STREQ(e.what(), "field \"image\": invalid base64: invalid character '$' at position 4");
  EXPECT_EQ(e.id(), "x");
}

TEST(ParseDetectRequest, RejectsNonBoolAnnotate) {
  const RequestError e = parse_error(R"({"id": "x", "image": "Zg==", "annotate": "yes"})");
  EXPECT_STREQ(e.what(), "field \"annotate\" must be a boolean, got a string");
  EXPECT_EQ(e.id(), "x");
}

TEST(ParseDetectRequest, EnforcesMaxDepth) {
  RequestLimits limits;
  limits.max_json_depth = 3;
  EXPECT_NO_THROW(parse_detect_request(R"({"id": "x", "image": "Zg==", "e": [[1]]})", limits));
  const RequestError e = parse_error(R"({"id": "x", "image": "Zg==", "e": [[[1]]]})", limits);
  EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos);
  // Deep nesting with default limits does not recurse without bound.
  EXPECT_FALSE(parse_error(std::string(100000, '[')).id());
}

TEST(TryExtractId, ReturnsIdWhenReadable) {
  EXPECT_EQ(try_extract_id(R"({"id": "x", "image": 5})"), "x");
  EXPECT_EQ(try_extract_id(R"({"id": 5})"), std::nullopt);
  EXPECT_EQ(try_extract_id("nope"), std::nullopt);
  EXPECT_EQ(try_extract_id("[]"), std::nullopt);
}

TEST(SerializeDetectResponse, MatchesContractShape) {
  DetectResponse response;
  response.id = "img \"1\"";
  response.objects.push_back({"dog", 0.97, {380, 363, 254, 114}});
  response.objects.push_back({"cat", 0.5f, {1, 2, 3, 4}});
  EXPECT_EQ(serialize_detect_response(response),
            R"({"id":"img \"1\"","objects":[)"
            R"({"label":"dog","accuracy":0.97,"rectangle":{"height":114,"left":380,"top":363,"width":254}},)"
            R"({"label":"cat","accuracy":0.5,"rectangle":{"height":4,"left":1,"top":2,"width":3}}]})");
}

TEST(SerializeDetectResponse, EmptyObjectsAndAnnotatedImage) {
  DetectResponse response;
  response.id = "x";
  EXPECT_EQ(serialize_detect_response(response), R"({"id":"x","objects":[]})");
  response.annotated_jpeg = "foobar";
  EXPECT_EQ(serialize_detect_response(response), R"({"id":"x","objects":[],"annotated_image":"Zm9vYmFy"})");
}

TEST(SerializeDetectResponse, IsValidJsonForAnyStrings) {
  DetectResponse response;
  response.id = std::string("\x01\x1f\"\\/\xff\xc3(\xe2\x82\xac", 11);
  response.objects.push_back({"\t\xed\xa0\x80", 1.0 / 3.0, {0, 0, 1, 1}});
  const json::value v = json::parse(serialize_detect_response(response));
  EXPECT_EQ(v.at("id").as_string(), "\x01\x1f\"\\/\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac");
  EXPECT_DOUBLE_EQ(v.at("objects").at(0).at("accuracy").as_double(), 0.333333);
}

TEST(ErrorBody, EchoesIdOrNull) {
  EXPECT_EQ(error_body(std::string("a\"b"), "bad \"thing\""), R"({"id":"a\"b","error":"bad \"thing\""})");
  EXPECT_EQ(error_body(std::nullopt, "oops"), R"({"id":null,"error":"oops"})");
}

TEST(JsonText, NumbersAreShortAndFinite) {
  auto number = [](double v) {
    std::string out;
    append_json_number(out, v);
    return out;
  };
  EXPECT_EQ(number(0.97), "0.97");
  EXPECT_EQ(number(static_cast<double>(0.97f)), "0.97");
  EXPECT_EQ(number(1), "1");
  EXPECT_EQ(number(0), "0");
  EXPECT_EQ(number(std::numeric_limits<double>::quiet_NaN()), "0");
  EXPECT_EQ(number(std::numeric_limits<double>::infinity()), "0");
}

}  // namespace
}  // namespace clouddetect::api
