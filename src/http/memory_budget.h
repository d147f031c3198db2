// Bytes that admitted requests may hold (connections, bodies, decoded images, answers), counted
// before they are allocated: a reservation that does not fit is refused (503), so the process
// never grows past its container's limit.
// Threading: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

namespace clouddetect::http {

class MemoryBudget {
 public:
  // What a reservation is for. Waiting work (connections, request bodies) may hold at most
  // `waiting_share` of the capacity, so that the workers always find room for what they decode.
  enum class Use { kWaiting, kWorking };

  // Bytes held by one request or connection; given back when destroyed. Movable, not copyable.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& other) noexcept { *this = std::move(other); }
    Reservation& operator=(Reservation&& other) noexcept;
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    ~Reservation() { reset(); }

    std::int64_t bytes() const { return bytes_; }
    // Adds `more` bytes if they fit (always true without a budget); false and unchanged otherwise.
    bool try_grow(std::int64_t more);
    // Gives back what is above `bytes` (never grows).
    void shrink_to(std::int64_t bytes);
    void reset() { shrink_to(0); }

   private:
    friend class MemoryBudget;
    MemoryBudget* budget_ = nullptr;
    Use use_ = Use::kWaiting;
    std::int64_t bytes_ = 0;
  };

  // `capacity` returns the bytes available to requests now (it may change, e.g. once the model is
  // loaded; negative = 0). An empty function: unlimited.
  explicit MemoryBudget(std::function<std::int64_t()> capacity = {}, double waiting_share = 0.5);

  // An empty reservation for `use`, to grow.
  Reservation reservation(Use use);

  bool limited() const { return static_cast<bool>(capacity_); }
  std::int64_t capacity() const;  // INT64_MAX when unlimited
  std::int64_t held() const;
  std::int64_t waiting_held() const;

 private:
  bool try_add(std::int64_t bytes, Use use);
  void release(std::int64_t bytes, Use use);

  std::function<std::int64_t()> capacity_;
  double waiting_share_;
  mutable std::mutex mutex_;
  std::int64_t held_ = 0;
  std::int64_t waiting_held_ = 0;
};

}  // namespace clouddetect::http
