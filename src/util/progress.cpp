#include "util/progress.h"

#include <unistd.h>

#include <cstdio>
#include <mutex>

namespace dip {

namespace {
std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}
ProgressSink& current_sink() {
  static ProgressSink s = stderr_progress_sink();
  return s;
}
}  // namespace

ProgressSink stderr_progress_sink() {
  ProgressSink s;
  s.progress = [](const std::string& what, size_t done, size_t total, const std::string& detail) {
    if (isatty(2)) {
      const int width = 30, filled = total ? int(width * done / total) : width;
      std::fprintf(stderr, "\r%s [%s%s] %zu/%zu %s", what.c_str(), std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), done, total, detail.c_str());
    } else if (total <= 20 || done == total || done * 20 / total != (done - 1) * 20 / total) {
      // A log, not a terminal: one line per 5% of long work.
      std::fprintf(stderr, "%s [%zu/%zu] %s\n", what.c_str(), done, total, detail.c_str());
    }
  };
  s.end = [] {
    if (isatty(2)) std::fputs("\n", stderr);
  };
  s.note = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  return s;
}

ProgressSink set_progress_sink(ProgressSink sink) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  std::swap(current_sink(), sink);
  return sink;
}

void print_progress(const std::string& what, size_t done, size_t total, const std::string& detail) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  if (current_sink().progress) current_sink().progress(what, done, total, detail);
}

void end_progress() {
  std::lock_guard<std::mutex> lock(sink_mutex());
  if (current_sink().end) current_sink().end();
}

void print_note(const std::string& line) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  if (current_sink().note) current_sink().note(line);
}

}  // namespace dip
