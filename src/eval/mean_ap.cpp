#include "eval/mean_ap.h"

#include <algorithm>
#include <random>
#include <set>

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

struct Ranked {
  float score;
  std::size_t image;
  const Box* box;
};

// `images` are pointers so that a bootstrap sample can hold the same image more than once.
using ImageSet = std::vector<const ImageResult*>;

double average_precision(const ImageSet& images, int class_id, float iou_threshold) {
  std::size_t truth_count = 0;
  std::vector<std::vector<const GroundTruth*>> truth(images.size());
  std::vector<Ranked> ranked;
  for (std::size_t i = 0; i < images.size(); ++i) {
    for (const GroundTruth& g : images[i]->truth) {
      if (g.class_id == class_id) truth[i].push_back(&g);
    }
    truth_count += truth[i].size();
    for (const Detection& d : images[i]->detections) {
      if (d.class_id == class_id) ranked.push_back({d.score, i, &d.box});
    }
  }
  if (ranked.empty()) return 0.0;
  std::stable_sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) { return a.score > b.score; });
  std::vector<std::vector<bool>> used(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) used[i].assign(truth[i].size(), false);
  // Precision and recall after each ranked detection.
  std::vector<double> recall, precision;
  std::size_t true_positives = 0;
  for (std::size_t k = 0; k < ranked.size(); ++k) {
    double best = 0.0;
    int best_j = -1;
    const auto& candidates = truth[ranked[k].image];
    for (std::size_t j = 0; j < candidates.size(); ++j) {
      const double overlap = iou(*ranked[k].box, candidates[j]->box);
      if (overlap > best) best = overlap, best_j = static_cast<int>(j);
    }
    if (best >= iou_threshold && !used[ranked[k].image][static_cast<std::size_t>(best_j)]) {
      used[ranked[k].image][static_cast<std::size_t>(best_j)] = true;
      ++true_positives;
    }
    recall.push_back(static_cast<double>(true_positives) / static_cast<double>(truth_count));
    precision.push_back(static_cast<double>(true_positives) / static_cast<double>(k + 1));
  }
  // All-point interpolation: precision made monotone from the right, summed over recall steps.
  std::vector<double> mrec{0.0}, mpre{0.0};
  mrec.insert(mrec.end(), recall.begin(), recall.end());
  mpre.insert(mpre.end(), precision.begin(), precision.end());
  mrec.push_back(1.0);
  mpre.push_back(0.0);
  for (std::size_t i = mpre.size() - 1; i-- > 0;) mpre[i] = std::max(mpre[i], mpre[i + 1]);
  double ap = 0.0;
  for (std::size_t i = 0; i + 1 < mrec.size(); ++i) {
    if (mrec[i + 1] != mrec[i]) ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1];
  }
  return ap;
}

double mean_average_precision(const ImageSet& images, float iou_threshold) {
  std::set<int> classes;
  for (const ImageResult* image : images) {
    for (const GroundTruth& g : image->truth) classes.insert(g.class_id);
  }
  if (classes.empty()) return 0.0;
  double sum = 0.0;
  for (int class_id : classes) sum += average_precision(images, class_id, iou_threshold);
  return sum / static_cast<double>(classes.size());
}

}  // namespace

double mean_average_precision(const std::vector<ImageResult>& images, float iou_threshold) {
  ImageSet all;
  for (const ImageResult& image : images) all.push_back(&image);
  return mean_average_precision(all, iou_threshold);
}

Interval bootstrap_map_difference(const std::vector<ImageResult>& a, const std::vector<ImageResult>& b,
                                  float iou_threshold, int resamples, unsigned seed) {
  if (a.size() != b.size() || a.empty() || resamples < 1) {
    throw Error(ErrorCode::kInvalidArgument, "bootstrap: both systems must be scored on the same, non-empty images");
  }
  std::mt19937 random(seed);
  std::uniform_int_distribution<std::size_t> pick(0, a.size() - 1);
  std::vector<double> differences;
  ImageSet sample_a(a.size()), sample_b(b.size());
  for (int r = 0; r < resamples; ++r) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::size_t k = pick(random);
      sample_a[i] = &a[k];
      sample_b[i] = &b[k];
    }
    differences.push_back(mean_average_precision(sample_a, iou_threshold) -
                          mean_average_precision(sample_b, iou_threshold));
  }
  std::sort(differences.begin(), differences.end());
  auto quantile = [&](double q) {
    return differences[static_cast<std::size_t>(q * static_cast<double>(differences.size() - 1) + 0.5)];
  };
  return {quantile(0.025), quantile(0.975)};
}

}  // namespace clouddetect::eval
