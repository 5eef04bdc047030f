// SPDX-License-Identifier: Apache-2.0
#include "fs/lock_split.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "base/file_io.h"
#include "base/glob.h"
#include "format/locked_shard.h"
#include "format/model_index.h"

namespace ctfs::fs {
namespace {

constexpr char kSafetensorsSuffix[] = ".safetensors";

// LockGlobs matches tensor names against the lock globs (base/glob.h kName: `*` and `?` cross
// every character) and counts the hits of each.
class LockGlobs {
 public:
  static Result<LockGlobs> Compile(const std::vector<std::string>& patterns) {
    LockGlobs g;
    for (const std::string& p : patterns) {
      auto glob = Glob::Compile(p, Glob::Kind::kName);
      if (!glob.ok()) return glob.status().WithContext("--lock");
      g.globs_.push_back(std::move(*glob));
    }
    g.hits_.assign(g.globs_.size(), 0);
    return g;
  }
  bool Match(const std::string& name) {
    bool any = false;
    for (size_t i = 0; i < globs_.size(); ++i) {
      if (globs_[i].Match(name)) {
        ++hits_[i];
        any = true;
      }
    }
    return any;
  }
  Status CheckAllMatched() const {
    for (size_t i = 0; i < globs_.size(); ++i) {
      if (hits_[i] == 0) {
        return InvalidArgumentError("--lock '" + globs_[i].pattern() +
                                    "' matches no tensor of the model");
      }
    }
    return Status::Ok();
  }
  std::string Label() const {
    std::string s;
    for (size_t i = 0; i < globs_.size(); ++i) s += (i ? "," : "") + globs_[i].pattern();
    return s;
  }

 private:
  LockGlobs() = default;
  std::vector<Glob> globs_;
  std::vector<size_t> hits_;
};

std::vector<format::MetadataEntry> UserMetadata(const format::SafetensorsHeader& h) {
  std::vector<format::MetadataEntry> out;
  for (const format::MetadataEntry& e : h.metadata) {
    if (e.key != format::kLockedKey) out.push_back(e);
  }
  return out;
}

std::vector<format::TensorInfo> ByOffset(std::vector<format::TensorInfo> v) {
  std::stable_sort(
      v.begin(), v.end(),
      [](const format::TensorInfo& a, const format::TensorInfo& b) { return a.begin < b.begin; });
  return v;
}

}  // namespace

Result<LockSplitPlan> PlanLockSplit(const std::vector<SourceShard>& shards,
                                    const std::vector<SourceIndex>& indexes,
                                    const std::vector<std::string>& lock_globs,
                                    const std::vector<std::string>& existing) {
  if (lock_globs.empty()) return InvalidArgumentError("no --lock pattern");
  if (indexes.size() > 1) {
    return InvalidArgumentError("--lock: the model directory has " +
                                std::to_string(indexes.size()) + " index files (" +
                                indexes[0].name + ", " + indexes[1].name + "); expected one");
  }
  std::map<std::string, const SourceShard*> by_name;
  for (const SourceShard& s : shards) by_name[s.name] = &s;

  LockSplitPlan plan;
  std::string stem;
  std::vector<const SourceShard*> used;  // the model's shards, in name order
  std::map<std::string, std::string> weight_map;
  bool new_index = indexes.empty();
  if (!new_index) {
    const SourceIndex& idx = indexes[0];
    stem = idx.name.substr(0, idx.name.size() - std::string_view(format::kModelIndexSuffix).size());
    CTFS_ASSIGN_OR_RETURN(weight_map, format::ParseWeightMap(idx.text, idx.name));
    std::set<std::string> files;
    for (const auto& [tensor, file] : weight_map) files.insert(file);
    for (const std::string& f : files) {
      auto it = by_name.find(f);
      if (it == by_name.end()) {
        return InvalidArgumentError(idx.name + ": weight_map names " + f +
                                    ", which is not a *.safetensors file at the top of the model "
                                    "directory");
      }
      used.push_back(it->second);
    }
    plan.replaced.push_back(idx.name);
  } else {
    if (shards.size() != 1) {
      return InvalidArgumentError(
          "--lock: the model directory has " + std::to_string(shards.size()) +
          " *.safetensors files at its top and no *.safetensors.index.json; --lock needs an "
          "index, or a single-file model");
    }
    stem = shards[0].name.substr(
        0, shards[0].name.size() - std::string_view(kSafetensorsSuffix).size());
    used.push_back(&shards[0]);
  }
  if (stem.empty()) return InvalidArgumentError("--lock: model file name has an empty stem");
  plan.locked_name = stem + "-locked" + kSafetensorsSuffix;
  plan.index_name = stem + format::kModelIndexSuffix;

  CTFS_ASSIGN_OR_RETURN(LockGlobs globs, LockGlobs::Compile(lock_globs));
  LockSplitPlan::Output locked;
  locked.name = plan.locked_name;
  locked.locked = true;
  std::map<std::string, std::string> moves;
  uint64_t total_size = 0;
  for (const SourceShard* s : used) {
    LockSplitPlan::Piece keep{s->name, s->header.data_start(), {}};
    LockSplitPlan::Piece lock{s->name, s->header.data_start(), {}};
    for (const format::TensorInfo& t : ByOffset(s->header.tensors)) {
      total_size += t.byte_len();
      if (!new_index) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end() || it->second != s->name) {
          // A tensor the index does not map to this shard is not loaded from it: leave it.
          if (globs.Match(t.name)) {
            return InvalidArgumentError(s->name + ": tensor \"" + t.name +
                                        "\" matches --lock but the index does not map it to "
                                        "this file");
          }
          keep.tensors.push_back(t);
          continue;
        }
      }
      if (globs.Match(t.name)) {
        lock.tensors.push_back(t);
        moves[t.name] = plan.locked_name;
      } else {
        keep.tensors.push_back(t);
      }
    }
    if (lock.tensors.empty() && !new_index) continue;  // shard unchanged: copied as it is
    plan.locked_tensors += lock.tensors.size();
    if (!lock.tensors.empty()) {
      if (locked.pieces.empty()) locked.metadata = UserMetadata(s->header);
      locked.pieces.push_back(std::move(lock));
    }
    plan.replaced.push_back(s->name);
    if (keep.tensors.empty()) continue;  // every tensor locked: the shard is dropped
    LockSplitPlan::Output rest;
    rest.name = new_index ? stem + "-00001-of-00001" + kSafetensorsSuffix : s->name;
    rest.metadata = UserMetadata(s->header);
    if (new_index) {
      for (const format::TensorInfo& t : keep.tensors) weight_map[t.name] = rest.name;
    }
    rest.pieces.push_back(std::move(keep));
    plan.outputs.push_back(std::move(rest));
  }
  CTFS_RETURN_IF_ERROR(globs.CheckAllMatched());
  locked.metadata.push_back({format::kLockedKey, globs.Label()});
  plan.outputs.push_back(std::move(locked));

  // Output names must not collide with source files that are kept.
  std::set<std::string> replaced(plan.replaced.begin(), plan.replaced.end());
  for (const std::string& name : existing) {
    if (replaced.count(name)) continue;
    for (const LockSplitPlan::Output& o : plan.outputs) {
      if (o.name == name) {
        return InvalidArgumentError("--lock: the model directory already has a file named " + name);
      }
    }
    if (new_index && name == plan.index_name) {
      return InvalidArgumentError("--lock: the model directory already has a file named " + name);
    }
  }

  if (new_index) {
    for (const auto& [tensor, file] : moves) weight_map[tensor] = file;
    plan.index_text = format::NewModelIndex(total_size, weight_map);
  } else {
    CTFS_ASSIGN_OR_RETURN(plan.index_text,
                          format::RewriteWeightMap(indexes[0].text, moves, indexes[0].name));
  }
  return plan;
}

Status WritePlainShard(const LockSplitPlan::Output& out, const std::string& src_dir,
                       const std::string& dst_path) {
  format::SafetensorsHeader h;
  h.has_metadata = !out.metadata.empty();
  h.metadata = out.metadata;
  uint64_t off = 0;
  for (const LockSplitPlan::Piece& p : out.pieces) {
    for (format::TensorInfo t : p.tensors) {
      const uint64_t len = t.byte_len();
      t.begin = off;
      t.end = off + len;
      off += len;
      h.tensors.push_back(std::move(t));
    }
  }
  const Bytes prefix = format::BuildHeaderPrefix(format::SerializeHeaderJson(h));
  mode_t mode = 0644;
  std::vector<UniqueFd> fds;
  for (const LockSplitPlan::Piece& p : out.pieces) {
    const std::string path = src_dir + "/" + p.source;
    CTFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenReadOnly(path));
    struct stat st;
    if (fds.empty() && ::fstat(fd.get(), &st) == 0) mode = st.st_mode & 0777;
    fds.push_back(std::move(fd));
  }
  CTFS_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::Create(dst_path, mode));
  CTFS_RETURN_IF_ERROR(w.Write(prefix));
  Bytes buf(1 << 20);
  for (size_t i = 0; i < out.pieces.size(); ++i) {
    const LockSplitPlan::Piece& p = out.pieces[i];
    const std::string path = src_dir + "/" + p.source;
    for (const format::TensorInfo& t : p.tensors) {
      for (uint64_t done = 0; done < t.byte_len();) {
        const size_t len = static_cast<size_t>(std::min<uint64_t>(buf.size(), t.byte_len() - done));
        MutableByteSpan b(buf.data(), len);
        CTFS_RETURN_IF_ERROR(
            PreadExact(fds[i].get(), b, p.source_data_start + t.begin + done, path));
        CTFS_RETURN_IF_ERROR(w.Write(b));
        done += len;
      }
    }
  }
  return w.Commit();
}

}  // namespace ctfs::fs
