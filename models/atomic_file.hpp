// Writing a file so that it is never seen half-written: the bytes go to a
// temporary file beside the target (`<path>.tmp.<pid>.<n>`, same directory, so
// the rename cannot cross file systems), which is flushed, fsync'ed, closed and
// renamed over the target; then the directory is fsync'ed so the rename itself
// survives a crash. On any failure the temporary file is removed, the target
// is left as it was, and an Error naming the path and the reason is thrown
// (an exception thrown by the writer callback is rethrown unchanged).
//
// Generic file plumbing; it lives in models/ (its first user, checkpoints) until
// a lower layer needs it.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace attnlab {

// `write` fills the stream; the stream is unformatted binary output.
void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write);
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace attnlab
