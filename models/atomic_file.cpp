#include "attnlab/models/atomic_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <streambuf>
#include <vector>

#include "attnlab/tensor/error.hpp"

namespace attnlab {
namespace {

// A buffered output streambuf over a POSIX file descriptor that remembers the
// first write error (errno), so the caller can report it after the callback.
class FdStreambuf : public std::streambuf {
 public:
  explicit FdStreambuf(int fd) : fd_(fd), buffer_(1 << 16) {
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }
  int error() const { return error_; }
  // Writes out what is buffered; false (and error() set) on failure.
  bool flush() { return sync() == 0; }

 protected:
  int_type overflow(int_type ch) override {
    if (sync() != 0) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n >= static_cast<std::streamsize>(buffer_.size())) {  // large: bypass the buffer
      if (sync() != 0 || !write_all(s, static_cast<size_t>(n))) return 0;
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }
  int sync() override {
    const size_t n = static_cast<size_t>(pptr() - pbase());
    if (n > 0 && !write_all(pbase(), n)) return -1;
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return 0;
  }

 private:
  bool write_all(const char* p, size_t n) {
    if (error_ != 0) return false;
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        error_ = w < 0 ? errno : EIO;
        return false;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  int fd_;
  std::vector<char> buffer_;
  int error_ = 0;
};

std::string errno_text(int e) {
  return std::strerror(e);
}

// Opens a fresh temporary file beside `path`; returns its fd and sets `tmp`.
int open_temporary(const std::string& path, std::string& tmp) {
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST)
      throw Error(fmt::format("cannot write '{}': cannot create the temporary file '{}': {}", path,
                              tmp, errno_text(errno)));
  }
  throw Error(fmt::format("cannot write '{}': no free temporary file name", path));
}

// fsync of the directory holding `path`, so that the rename is durable.
// File systems that cannot sync a directory (EINVAL) are let be.
void sync_directory(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = std::filesystem::path(".");
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // the file is written; nothing more we can do for the directory
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL && e != EROFS)
    throw Error(fmt::format("wrote '{}' but could not sync its directory '{}': {}", path,
                            dir.string(), errno_text(e)));
}

}  // namespace

void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write) {
  ATTN_CHECK(!path.empty(), "cannot write a file with an empty path");
  std::string tmp;
  int fd = open_temporary(path, tmp);
  // On any failure from here on: close (if open), remove the temporary, throw.
  auto fail = [&](const std::string& reason) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(fmt::format("cannot write '{}': {}", path, reason));
  };
  {
    FdStreambuf buf(fd);
    std::ostream out(&buf);
    try {
      write(out);
    } catch (...) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw;
    }
    if (!buf.flush() || !out) fail(errno_text(buf.error() != 0 ? buf.error() : EIO));
  }
  if (::fsync(fd) != 0) fail(fmt::format("fsync failed: {}", errno_text(errno)));
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0) fail(fmt::format("close failed: {}", errno_text(errno)));
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    fail(fmt::format("cannot rename '{}' over it: {}", tmp, errno_text(errno)));
  sync_directory(path);
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
}

}  // namespace attnlab
