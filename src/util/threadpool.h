// A small fork-join pool for the many short parallel loops of one token.
//
// Work is split into numbered chunks that any thread may take, and the caller takes chunks too:
// a loop ends when its chunks are done, never when every worker has shown up. A worker that the
// OS has descheduled (more threads than free cores, a second process on the machine) therefore
// costs at most the chunk it already holds, instead of stalling every loop of the token.
// Idle workers spin briefly (back-to-back loops of one token need no wake-up), yielding the core,
// and then sleep on a condition variable; the caller, once it finds no chunk left, waits the same
// way. No more workers are awake at once than the process has cores besides the caller's, so a
// thread count above the core count costs little.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dip {

// Threads this process may run on (its CPU affinity mask), at least 1.
int available_cores();

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(i, size()) once for every i in [0, size()) and returns when all have returned.
  // Which thread runs which i is not fixed (the caller may run several), so fn must not
  // depend on running on a particular thread.
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks (multiples of `grain`) and runs fn(begin, end).
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

 private:
  // Runs chunk(c) for every c in [0, n_chunks) on the caller and any worker that joins.
  void run_chunks(uint32_t n_chunks, const std::function<void(uint32_t)>& chunk);
  // Claims and runs chunks of the job published as `job` until none is left.
  void work_on(uint64_t job);
  void worker();

  int n_threads_;
  int max_awake_;  // workers that may run at once: one core is the caller's
  std::vector<std::thread> threads_;
  // The current job in one word: sequence number (high 24 bits), chunk count (20 bits), next
  // unclaimed chunk (20 bits). A chunk is claimed by a compare-and-swap on the whole word, so a
  // worker that wakes after its job ended can never claim a chunk of the next one by mistake.
  // (job_ and done_ on cache lines of their own: every thread writes both in every loop.)
  alignas(64) std::atomic<uint64_t> job_{0};
  const std::function<void(uint32_t)>* chunk_fn_ = nullptr;  // valid while a chunk is claimed
  alignas(64) std::atomic<uint32_t> done_{0};                // chunks of the current job finished
  alignas(64) int padding_after_done_ = 0;
  std::atomic<bool> caller_waiting_{false};
  std::atomic<int> sleepers_{0};
  std::atomic<int> awake_{0};  // workers not asleep on wake_
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;      // workers: a new job or stop
  std::condition_variable finished_;  // caller: the last chunk is done
};

}  // namespace dip
