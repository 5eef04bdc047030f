// SPDX-License-Identifier: Apache-2.0
// Glob: shell-style patterns for policy objects (file paths, tensor names) and subjects
// (executables, cgroups, comm). Compiled once (syntax errors are found when a config is read),
// matched many times without allocating.
//
// Syntax: `*` any run of characters, `?` one character, `[abc]` `[a-z]` `[!a-z]` (also `[^..]`)
// one character of a set, `\x` the character x. What `*` and `?` may cross depends on the kind:
//   kName: any character, '/' included (tensor names, comm, hashes).
//   kPath: never '/'; `**` as a whole path segment ("**/", "/**", or alone) matches zero or
//          more whole segments. A pattern with no '/' matches the last segment (the base name)
//          at any depth, as in .gitignore: "*.json" matches "config.json" and "llama/config.json";
//          "llama/*.json" matches only directly under llama/. A leading '/' anchors at the root
//          and is ignored otherwise; a leading '/' of the text is ignored too, so absolute
//          paths (executables, cgroups) match patterns written with or without it.
// Errors (InvalidArgument, naming the pattern and the offset): empty pattern, an unclosed '[',
// an empty set "[]", a trailing '\', a NUL byte, a `**` that is not a whole path segment
// (kPath), more than 4096 bytes.
// Thread safety: immutable after Compile; Match is thread-safe.
#ifndef CTFS_BASE_GLOB_H_
#define CTFS_BASE_GLOB_H_

#include <string>
#include <string_view>

#include "base/result.h"

namespace ctfs {

class Glob {
 public:
  enum class Kind { kName, kPath };
  static Result<Glob> Compile(std::string_view pattern, Kind kind);
  bool Match(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }
  Kind kind() const { return kind_; }
  // literal: the pattern has no special character (Match is a string compare).
  bool literal() const { return literal_; }

 private:
  Glob() = default;
  std::string pattern_;  // as given
  std::string program_;  // compiled form (implementation-defined)
  Kind kind_ = Kind::kName;
  bool literal_ = false;
  bool basename_only_ = false;  // kPath without '/': match the last segment
};

}  // namespace ctfs

#endif  // CTFS_BASE_GLOB_H_
