#include "util/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/error.h"

namespace dip {

namespace fs = std::filesystem;

namespace {

std::string parent_folder(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

void require_folder(const std::string& path) {
  const std::string dir = parent_folder(path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: the output folder {} does not exist", path, dir);
}

std::string temp_name(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  const fs::path p(path);
  const std::string name =
      fmt::format(".{}.tmp-{}-{}", p.filename().string(), ::getpid(), counter.fetch_add(1));
  return (p.parent_path() / name).string();
}

// The same file: same device and inode (hard links and symbolic links alike).
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool inside(const fs::path& child, const fs::path& folder) {
  std::error_code ec;
  const fs::path c = fs::weakly_canonical(child, ec), f = fs::weakly_canonical(folder, ec);
  if (ec) return false;
  auto ci = c.begin();
  for (auto fi = f.begin(); fi != f.end(); ++fi, ++ci) {
    if (fi->empty()) continue;  // a trailing separator
    if (ci == c.end() || *ci != *fi) return false;
  }
  return true;
}

}  // namespace

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {
  require_folder(path_);
  struct stat st;
  if (::stat(path_.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    fail("{}: is a folder, not a file", path_);
  temp_ = temp_name(path_);
  const int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create: {}", path_, std::strerror(errno));
  file_ = ::fdopen(fd, "wb");
  if (!file_) {
    ::close(fd);
    ::unlink(temp_.c_str());
    fail("{}: cannot create: {}", path_, std::strerror(errno));
  }
}

OutputFile::~OutputFile() {
  if (file_) {
    std::fclose(file_);
    ::unlink(temp_.c_str());
  }
}

int OutputFile::fd() const { return ::fileno(file_); }

void OutputFile::write(const void* p, size_t n) {
  if (n && std::fwrite(p, 1, n, file_) != n)
    fail("{}: write failed: {}", path_, std::strerror(errno));
}

void OutputFile::pwrite_all(const void* p, size_t n, uint64_t off) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd(), b, n, off_t(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("{}: write failed at offset {}: {}", path_, off, std::strerror(errno));
    b += w;
    off += uint64_t(w);
    n -= size_t(w);
  }
}

void OutputFile::commit(int64_t size) {
  bool ok = std::fflush(file_) == 0;
  if (ok && size >= 0) ok = ::ftruncate(fd(), off_t(size)) == 0;
  ok = ok && ::fsync(fd()) == 0;
  const int saved = errno;
  if (std::fclose(file_) != 0) ok = false;
  file_ = nullptr;
  if (!ok || ::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = ok ? errno : saved;
    ::unlink(temp_.c_str());
    fail("{}: cannot finish writing: {}", path_, std::strerror(err));
  }
  // The rename itself is durable once the folder is synced.
  const int dir = ::open(parent_folder(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  OutputFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

void check_output_path(const std::string& output, const std::vector<std::string>& inputs,
                       bool is_folder) {
  if (output.empty()) fail("the output path is empty");
  std::error_code ec;
  if (!is_folder) {
    require_folder(output);
    if (fs::is_directory(output, ec)) fail("{}: is a folder, not a file", output);
  } else {
    fs::path folder = fs::path(output).lexically_normal();
    if (!folder.has_filename()) folder = folder.parent_path();  // "out/" names "out"
    if (fs::exists(folder, ec) && !fs::is_directory(folder, ec))
      fail("{}: is a file, not a folder", output);
    if (!fs::is_directory(parent_folder(folder.string()), ec)) {
      fail("{}: the output folder's parent {} does not exist", output,
           parent_folder(folder.string()));
    }
  }
  for (const std::string& in : inputs) {
    if (in.empty()) continue;
    if (same_file(output, in))
      fail("{}: is one of this run's inputs ({}); write the output elsewhere", output, in);
    if (!is_folder &&
        fs::is_directory(in, ec)) {  // a Hugging Face folder: its files are the inputs
      for (const auto& e : fs::directory_iterator(in, ec)) {
        if (same_file(output, e.path().string())) {
          fail("{}: is one of this run's inputs ({}); write the output elsewhere", output,
               e.path().string());
        }
      }
    }
    if (is_folder && inside(in, output)) {
      fail("{}: holds one of this run's inputs ({}); write the output elsewhere", output, in);
    }
  }
}

void check_output_files(const std::string& folder, const std::vector<std::string>& names,
                        const std::vector<std::string>& inputs) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    check_output_path(folder, inputs, true);
    return;
  }
  for (const std::string& n : names) check_output_path((fs::path(folder) / n).string(), inputs);
}

}  // namespace dip
