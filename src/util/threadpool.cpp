#include "util/threadpool.h"

#include <sched.h>

#include <algorithm>
#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#define DIP_PAUSE() _mm_pause()
#else
#define DIP_PAUSE() std::this_thread::yield()
#endif

namespace dip {

namespace {
// How long an idle thread spins before it sleeps. Long enough to bridge the gap between the
// loops of one token (a few microseconds), short enough that spinning threads on an
// oversubscribed machine give their core back to the threads doing the work.
constexpr auto kSpinTime = std::chrono::microseconds(500);
// The first part of the wait only pauses: the next loop of a token usually comes within it, and
// a yield (a system call) would delay noticing it.
constexpr auto kPauseTime = std::chrono::microseconds(20);

constexpr int kChunkBits = 20;
constexpr uint64_t kChunkMask = (uint64_t(1) << kChunkBits) - 1;
constexpr uint32_t kMaxChunks = uint32_t(kChunkMask);

uint64_t seq_of(uint64_t job) { return job >> (2 * kChunkBits); }
uint32_t count_of(uint64_t job) { return uint32_t((job >> kChunkBits) & kChunkMask); }
uint32_t next_of(uint64_t job) { return uint32_t(job & kChunkMask); }

// Waits actively until pred() or kSpinTime has passed; true when pred() held. After a short
// pause loop it yields the core between checks, so that on a machine with more runnable
// threads than cores a waiting thread hands its time to one that has work.
template <typename Pred>
bool spin_until(Pred pred) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (pred()) return true;
    if ((i & 31) == 31) {
      const auto waited = std::chrono::steady_clock::now() - start;
      if (waited > kSpinTime) return pred();
      if (waited > kPauseTime) sched_yield();
    }
    DIP_PAUSE();
  }
}
}  // namespace

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads)), max_awake_(std::min(n_threads_, available_cores()) - 1) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::work_on(uint64_t job) {
  while (next_of(job) < count_of(job)) {
    if (!job_.compare_exchange_weak(job, job + 1, std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      continue;  // `job` now holds the current word: another chunk was claimed, or a new job began
    }
    // The claimed chunk keeps this job (and chunk_fn_) alive until done_ counts it.
    (*chunk_fn_)(next_of(job));
    if (done_.fetch_add(1, std::memory_order_seq_cst) + 1 == count_of(job) &&
        caller_waiting_.load(std::memory_order_seq_cst)) {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_.notify_one();
    }
    job = job_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker() {
  uint64_t seen = job_.load(std::memory_order_acquire) & ~kChunkMask;
  awake_.fetch_add(1, std::memory_order_seq_cst);
  while (true) {
    auto fresh = [&] { return (job_.load(std::memory_order_seq_cst) & ~kChunkMask) != seen; };
    // More awake workers than free cores would only take turns on them: the extra ones sleep.
    const bool may_spin = awake_.load(std::memory_order_relaxed) <= max_awake_;
    if (!may_spin ||
        !spin_until([&] { return fresh() || stop_.load(std::memory_order_relaxed); })) {
      std::unique_lock<std::mutex> lock(mutex_);
      awake_.fetch_sub(1, std::memory_order_seq_cst);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return fresh() || stop_.load(); });
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      awake_.fetch_add(1, std::memory_order_seq_cst);
    }
    if (stop_.load()) return;
    const uint64_t job = job_.load(std::memory_order_acquire);
    seen = job & ~kChunkMask;
    work_on(job);
  }
}

void ThreadPool::run_chunks(uint32_t n_chunks, const std::function<void(uint32_t)>& chunk) {
  if (n_chunks == 0) return;
  if (max_awake_ == 0 || n_chunks == 1) {
    for (uint32_t c = 0; c < n_chunks; ++c) chunk(c);
    return;
  }
  chunk_fn_ = &chunk;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t seq = seq_of(job_.load(std::memory_order_relaxed)) + 1;
  const uint64_t job = (seq << (2 * kChunkBits)) | (uint64_t(n_chunks) << kChunkBits);
  job_.store(job, std::memory_order_seq_cst);
  if (const int sleeping = sleepers_.load(std::memory_order_seq_cst); sleeping > 0) {
    const int wanted = std::min(sleeping, max_awake_ - awake_.load(std::memory_order_seq_cst));
    if (wanted > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      for (int i = 0; i < wanted; ++i) wake_.notify_one();
    }
  }
  work_on(job);
  auto all_done = [&] { return done_.load(std::memory_order_seq_cst) == n_chunks; };
  if (!spin_until(all_done)) {
    std::unique_lock<std::mutex> lock(mutex_);
    caller_waiting_.store(true, std::memory_order_seq_cst);
    finished_.wait(lock, all_done);
    caller_waiting_.store(false, std::memory_order_relaxed);
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  const std::function<void(uint32_t)> chunk = [&](uint32_t i) { fn(int(i), n_threads_); };
  run_chunks(uint32_t(n_threads_), chunk);
}

void ThreadPool::parallel_for(size_t n, size_t grain,
                              const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(1, grain);
  const size_t n_grains = (n + grain - 1) / grain;
  if (max_awake_ == 0 || n_grains == 1) {
    fn(0, n);
    return;
  }
  // About 8 chunks per thread that can run at once: a thread that is descheduled or slower takes
  // fewer chunks instead of holding up the rest.
  const size_t parallel = size_t(max_awake_) + 1;
  size_t chunk = grain * std::max<size_t>(1, n_grains / (parallel * 8));
  while ((n + chunk - 1) / chunk > kMaxChunks) chunk += grain;
  const uint32_t n_chunks = uint32_t((n + chunk - 1) / chunk);
  const std::function<void(uint32_t)> body = [&](uint32_t c) {
    fn(size_t(c) * chunk, std::min(n, (size_t(c) + 1) * chunk));
  };
  run_chunks(n_chunks, body);
}
}  // namespace dip
