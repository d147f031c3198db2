#include "http/memory_budget.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace clouddetect::http {

MemoryBudget::MemoryBudget(std::function<std::int64_t()> capacity, double waiting_share)
    : capacity_(std::move(capacity)), waiting_share_(std::clamp(waiting_share, 0.0, 1.0)) {}

MemoryBudget::Reservation MemoryBudget::reservation(Use use) {
  Reservation reservation;
  reservation.budget_ = this;
  reservation.use_ = use;
  return reservation;
}

std::int64_t MemoryBudget::capacity() const {
  if (!capacity_) return std::numeric_limits<std::int64_t>::max();
  return std::max<std::int64_t>(0, capacity_());
}

std::int64_t MemoryBudget::held() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return held_;
}

std::int64_t MemoryBudget::waiting_held() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return waiting_held_;
}

bool MemoryBudget::try_add(std::int64_t bytes, Use use) {
  const std::int64_t total = capacity();  // outside the lock: it may read /proc or atomics
  const auto waiting_cap = static_cast<std::int64_t>(static_cast<double>(total) * waiting_share_);
  std::lock_guard<std::mutex> lock(mutex_);
  if (capacity_ && held_ + bytes > total) return false;
  if (capacity_ && use == Use::kWaiting && waiting_held_ + bytes > waiting_cap) return false;
  held_ += bytes;
  if (use == Use::kWaiting) waiting_held_ += bytes;
  return true;
}

void MemoryBudget::release(std::int64_t bytes, Use use) {
  std::lock_guard<std::mutex> lock(mutex_);
  held_ -= bytes;
  if (use == Use::kWaiting) waiting_held_ -= bytes;
}

MemoryBudget::Reservation& MemoryBudget::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    reset();
    budget_ = std::exchange(other.budget_, nullptr);
    use_ = other.use_;
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool MemoryBudget::Reservation::try_grow(std::int64_t more) {
  if (more <= 0) return true;
  if (budget_ == nullptr || !budget_->try_add(more, use_)) return false;
  bytes_ += more;
  return true;
}

void MemoryBudget::Reservation::shrink_to(std::int64_t bytes) {
  if (budget_ == nullptr || bytes >= bytes_) return;
  budget_->release(bytes_ - std::max<std::int64_t>(bytes, 0), use_);
  bytes_ = std::max<std::int64_t>(bytes, 0);
}

}  // namespace clouddetect::http
