// Output files that never leave a half-written file under the target's name, and never
// overwrite one of the run's own inputs.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace dip {

// A file written under a temporary name in the target's folder; commit() flushes it to disk
// and renames it over the target. Destroyed without commit() (an error, an exception), it
// removes the temporary file and leaves the target as it was.
class OutputFile {
 public:
  // Fails, naming `path`, when its folder does not exist or the file cannot be created.
  explicit OutputFile(std::string path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  const std::string& path() const { return path_; }
  std::FILE* stream() { return file_; }  // buffered writes
  int fd() const;                        // positioned writes (pwrite_all); do not mix with stream()

  void write(const void* p, size_t n);  // appends through stream(); fails naming the file
  void pwrite_all(const void* p, size_t n, uint64_t offset);
  // Flushes, truncates to `size` when given, fsyncs, and renames over the target.
  void commit(int64_t size = -1);

 private:
  std::string path_, temp_;
  std::FILE* file_ = nullptr;
};

// Writes `bytes` to `path` through an OutputFile.
void write_file_atomically(const std::string& path, std::string_view bytes);

// Fails before any work is done when `output` (a file, or with `is_folder` a folder) cannot be
// written: its parent folder is missing, or it is (following links) one of `inputs`, or for a
// folder, one of the inputs lies inside it.
void check_output_path(const std::string& output, const std::vector<std::string>& inputs,
                       bool is_folder = false);

// For a command that writes the files `names` into `folder` (made when missing): fails when the
// folder's parent is missing or one of those files is one of `inputs`.
void check_output_files(const std::string& folder, const std::vector<std::string>& names,
                        const std::vector<std::string>& inputs);

}  // namespace dip
