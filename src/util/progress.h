// Progress of long work and one-line notes, through a sink an application may replace (as
// llama.cpp's log callback): by default a bar on stderr when it is a terminal, one line per
// update otherwise; notes go to stderr.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace dip {

struct ProgressSink {
  // what: the work ("perplexity", "[2/9] dip density 0.5"); detail: e.g. "ppl 12.3456".
  std::function<void(const std::string& what, size_t done, size_t total, const std::string& detail)>
      progress;
  std::function<void()> end;                          // the work is over (ends a terminal bar)
  std::function<void(const std::string& line)> note;  // a finished result, a skipped point
};

// Replaces the sink (empty functions silence that kind); returns the previous one.
ProgressSink set_progress_sink(ProgressSink sink);
ProgressSink stderr_progress_sink();

void print_progress(const std::string& what, size_t done, size_t total, const std::string& detail);
void end_progress();
void print_note(const std::string& line);

}  // namespace dip
