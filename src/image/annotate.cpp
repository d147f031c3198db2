#include "image/annotate.h"

#include <turbojpeg.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <opencv2/imgproc.hpp>

#include "core/error.h"

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
    cv::rectangle(out, cv::Rect(origin.x, origin.y - size.height - baseline, size.width, size.height + baseline), color,
                  cv::FILLED);
    cv::putText(out, text, cv::Point(origin.x, origin.y - baseline), cv::FONT_HERSHEY_SIMPLEX, font_scale,
                cv::Scalar(255, 255, 255), thickness, cv::LINE_AA);
  }
  return out;
}

std::string encode_jpeg(const cv::Mat& bgr) {
  std::unique_ptr<void, int (*)(tjhandle)> handle(tjInitCompress(), tjDestroy);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  cv::Mat contiguous = bgr.isContinuous() ? bgr : bgr.clone();
  if (!handle || tjCompress2(handle.get(), contiguous.data, contiguous.cols, 0, contiguous.rows, TJPF_BGR, &buffer,
                             &size, TJSAMP_420, 90, 0) != 0) {
    tjFree(buffer);
    throw Error(ErrorCode::kInternal, "cannot encode the annotated image as JPEG");
  }
  std::string bytes(reinterpret_cast<const char*>(buffer), size);
  tjFree(buffer);
  return bytes;
}

}  // namespace clouddetect::image
