#include "eval/mean_ap.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>
#include <random>

#include "core/error.h"

namespace clouddetect::eval {

namespace {

double iou(const Box& a, const Box& b) {
  const double ix = std::max(0.0, std::min<double>(a.x + a.w, b.x + b.w) - std::max<double>(a.x, b.x));
  const double iy = std::max(0.0, std::min<double>(a.y + a.h, b.y + b.h) - std::max<double>(a.y, b.y));
  const double inter = ix * iy;
  const double uni = static_cast<double>(a.w) * a.h + static_cast<double>(b.w) * b.h - inter;
  return uni > 0 ? inter / uni : 0.0;
}

// One class's detections over all images, ranked by score, each already marked hit or miss. Whether
// a detection hits depends only on its own image's truth and higher-ranked detections of that image,
// so the marks hold for any bootstrap sample: a sample is then just a weight per image (how often it
// was drawn), and scoring 1000 samples of 1000 images costs 1000 passes over these lists.
struct ClassRanking {
  std::vector<float> score;
  std::vector<std::uint32_t> image;  // ranked by score, ties in image order
  std::vector<bool> hit;
  std::vector<std::uint32_t> truth;  // per image: boxes of this class
};

class Scorer {
 public:
  Scorer(const std::vector<ImageResult>& images, float iou_threshold) : images_(images.size()) {
    for (std::size_t i = 0; i < images.size(); ++i) {
      for (const GroundTruth& g : images[i].truth) ranking(g.class_id).truth[i]++;
    }
    for (std::size_t i = 0; i < images.size(); ++i) mark_hits(images[i], i, iou_threshold);
    for (auto& [class_id, r] : classes_) rank(r);
  }

  // mAP with image i counted weight[i] times (all ones: the plain mAP).
  double score(const std::vector<std::uint32_t>& weight) const {
    double sum = 0.0;
    std::size_t present = 0;
    for (const auto& [class_id, r] : classes_) {
      std::uint64_t truth = 0;
      for (std::size_t i = 0; i < images_; ++i) truth += static_cast<std::uint64_t>(weight[i]) * r.truth[i];
      if (truth == 0) continue;  // the mean is over the classes present in this sample's truth
      ++present;
      sum += average_precision(r, weight, truth);
    }
    return present ? sum / static_cast<double>(present) : 0.0;
  }

 private:
  ClassRanking& ranking(int class_id) {
    ClassRanking& r = classes_[class_id];
    if (r.truth.empty()) r.truth.assign(images_, 0);
    return r;
  }

  // Within one image, per class, in score order: each detection takes the best-overlapping truth
  // box; one already taken makes it a false positive.
  void mark_hits(const ImageResult& image, std::size_t index, float iou_threshold) {
    std::vector<std::size_t> order(image.detections.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return image.detections[a].score > image.detections[b].score;
    });
    std::vector<bool> used(image.truth.size(), false);
    for (std::size_t k : order) {
      const Detection& d = image.detections[k];
      double best = 0.0;
      std::size_t best_j = 0;
      for (std::size_t j = 0; j < image.truth.size(); ++j) {
        if (image.truth[j].class_id != d.class_id) continue;
        const double overlap = iou(d.box, image.truth[j].box);
        if (overlap > best) best = overlap, best_j = j;
      }
      const bool hit = best >= iou_threshold && !used[best_j];
      if (hit) used[best_j] = true;
      ClassRanking& r = ranking(d.class_id);
      r.image.push_back(static_cast<std::uint32_t>(index));
      r.hit.push_back(hit);
      r.score.push_back(d.score);
    }
  }

  static void rank(ClassRanking& r) {
    const std::vector<float>& score = r.score;
    std::vector<std::size_t> order(r.image.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return score[a] > score[b] || (score[a] == score[b] && r.image[a] < r.image[b]);
    });
    ClassRanking ranked{{}, {}, {}, r.truth};
    for (std::size_t k : order) {
      ranked.score.push_back(score[k]), ranked.image.push_back(r.image[k]), ranked.hit.push_back(r.hit[k]);
    }
    r = std::move(ranked);
  }

  // All-point interpolation: precision made monotone from the right, summed over recall steps.
  static double average_precision(const ClassRanking& r, const std::vector<std::uint32_t>& weight,
                                  std::uint64_t truth) {
    thread_local std::vector<double> recall, precision;
    recall.assign(1, 0.0);
    precision.assign(1, 0.0);
    std::uint64_t hits = 0, seen = 0;
    for (std::size_t k = 0; k < r.image.size(); ++k) {
      const std::uint32_t w = weight[r.image[k]];
      if (w == 0) continue;
      seen += w;
      if (r.hit[k]) hits += w;
      recall.push_back(static_cast<double>(hits) / static_cast<double>(truth));
      precision.push_back(static_cast<double>(hits) / static_cast<double>(seen));
    }
    if (seen == 0) return 0.0;
    recall.push_back(1.0);
    precision.push_back(0.0);
    for (std::size_t i = precision.size() - 1; i-- > 0;) precision[i] = std::max(precision[i], precision[i + 1]);
    double ap = 0.0;
    for (std::size_t i = 0; i + 1 < recall.size(); ++i) {
      if (recall[i + 1] != recall[i]) ap += (recall[i + 1] - recall[i]) * precision[i + 1];
    }
    return ap;
  }

  std::size_t images_;
  std::map<int, ClassRanking> classes_;
};

}  // namespace

double mean_average_precision(const std::vector<ImageResult>& images, float iou_threshold) {
  return Scorer(images, iou_threshold).score(std::vector<std::uint32_t>(images.size(), 1));
}

std::vector<ImageResult> above_threshold(const std::vector<ImageResult>& images, float score_threshold) {
  std::vector<ImageResult> result(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    result[i].truth = images[i].truth;
    for (const Detection& d : images[i].detections) {
      if (d.score > score_threshold) result[i].detections.push_back(d);
    }
  }
  return result;
}

Interval bootstrap_map_difference(const std::vector<ImageResult>& a, const std::vector<ImageResult>& b,
                                  float iou_threshold, int resamples, unsigned seed) {
  if (a.size() != b.size() || a.empty() || resamples < 1) {
    throw Error(ErrorCode::kInvalidArgument, "bootstrap: both systems must be scored on the same, non-empty images");
  }
  const Scorer score_a(a, iou_threshold), score_b(b, iou_threshold);
  std::mt19937 random(seed);
  std::uniform_int_distribution<std::size_t> pick(0, a.size() - 1);
  std::vector<double> differences;
  std::vector<std::uint32_t> weight(a.size());
  for (int r = 0; r < resamples; ++r) {
    std::fill(weight.begin(), weight.end(), 0);
    for (std::size_t i = 0; i < a.size(); ++i) ++weight[pick(random)];
    differences.push_back(score_a.score(weight) - score_b.score(weight));
  }
  std::sort(differences.begin(), differences.end());
  auto quantile = [&](double q) {
    return differences[static_cast<std::size_t>(q * static_cast<double>(differences.size() - 1) + 0.5)];
  };
  return {quantile(0.025), quantile(0.975)};
}

}  // namespace clouddetect::eval
