// Read-only memory mapping of a whole file; model weights are used in place, never copied.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dip {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  // Wraps bytes already in memory (fuzzing, tests); `name` stands for the path in messages.
  MappedFile(const std::string& name, std::vector<uint8_t> bytes);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::vector<uint8_t> owned_;  // in-memory mode
};

// Reads a whole (small) file into a string; fails with the path and errno text.
std::string read_text_file(const std::string& path);

// Opens path for reading; fails, naming it, unless it is a regular file (a directory or a FIFO
// is an error, never an empty read or a wait). Sets *size when given. The caller closes the fd.
// A tensor's bytes in a file: [begin, end).
struct ByteRange {
  uint64_t begin, end;
  const std::string* name;
};
// Fails, naming the file and both tensors, when two ranges overlap: each tensor owns its bytes,
// and overlapping data is a corrupt or hostile file, never two views of one tensor.
void check_disjoint(std::vector<ByteRange> ranges, const std::string& path);

int open_regular_file(const std::string& path, uint64_t* size = nullptr);

// Lets go of the whole pages inside [p, p + n) of a read-only file mapping (MADV_DONTNEED):
// they leave the process's resident set and are read from the file again if touched.
void release_mapped_pages(const void* p, size_t n);

}  // namespace dip
