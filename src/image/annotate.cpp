#include "image/annotate.h"

#include <algorithm>
#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace clouddetect::image {

cv::Mat annotate(const cv::Mat& bgr, const std::vector<Detection>& detections,
                 const std::vector<std::string>& class_names) {
  cv::Mat out = bgr.clone();
  const int thickness = std::max(1, std::min(out.cols, out.rows) / 300);
  const double font_scale = std::max(0.4, std::min(out.cols, out.rows) / 1000.0);
  for (const Detection& d : detections) {
    // A stable colour per class, so the same label looks the same on every image.
    cv::Scalar color((d.class_id * 67) % 256, (d.class_id * 151 + 80) % 256, (d.class_id * 37 + 160) % 256);
    cv::Rect box(cv::Point(static_cast<int>(d.box.x), static_cast<int>(d.box.y)),
                 cv::Point(static_cast<int>(d.box.x + d.box.w), static_cast<int>(d.box.y + d.box.h)));
    cv::rectangle(out, box, color, thickness);
    char text[128];
    const std::string& label = d.class_id < static_cast<int>(class_names.size()) ? class_names[d.class_id] : "?";
    std::snprintf(text, sizeof(text), "%s %.2f", label.c_str(), d.score);
    int baseline = 0;
    cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font_scale, thickness, &baseline);
    cv::Point origin(box.x, std::max(box.y, size.height + baseline));
    cv::rectangle(out, cv::Rect(origin.x, origin.y - size.height - baseline, size.width, size.height + baseline),
                  color, cv::FILLED);
    cv::putText(out, text, cv::Point(origin.x, origin.y - baseline), cv::FONT_HERSHEY_SIMPLEX, font_scale,
                cv::Scalar(255, 255, 255), thickness, cv::LINE_AA);
  }
  return out;
}

std::string encode_jpeg(const cv::Mat& bgr) {
  std::vector<unsigned char> bytes;
  cv::imencode(".jpg", bgr, bytes, {cv::IMWRITE_JPEG_QUALITY, 90});
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace clouddetect::image
