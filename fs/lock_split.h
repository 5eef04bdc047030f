// SPDX-License-Identifier: Apache-2.0
// Locked layers, the writer's half (`ctfs encrypt --lock GLOB --lock-key K`): move the tensors
// whose names match a lock glob out of a model's shards into one locked shard per model
// directory, and rewrite the transformers index so loaders still find every tensor. This file
// plans and writes the *plain* split; the caller then encrypts the locked shard under the lock
// key (with the format/locked_shard.h marker) and the rest as usual.
//
// Layout rules (one model directory, top level only):
//   - With an index `<stem>.safetensors.index.json` (at most one): the shards are the files its
//     weight_map names. Shards that hold locked tensors are rewritten without them (a shard left
//     with no tensor is dropped); weight_map is rewritten to point locked tensors at
//     `<stem>-locked.safetensors`.
//   - Without an index, exactly one `<stem>.safetensors`: it becomes
//     `<stem>-00001-of-00001.safetensors` (unless every tensor is locked), and a new index
//     `<stem>.safetensors.index.json` is written. The original name must disappear: transformers
//     prefers `model.safetensors` to the index and would load it without the locked tensors.
//   - Every lock glob must match at least one tensor; the output names must not exist already.
// Tensors keep their dtype, shape and bytes; offsets are recomputed (a rewritten shard is not
// byte-identical to its source, but loads the same tensors).
#ifndef CTFS_FS_LOCK_SPLIT_H_
#define CTFS_FS_LOCK_SPLIT_H_

#include <string>
#include <vector>

#include "base/result.h"
#include "format/safetensors_header.h"

namespace ctfs::fs {

// A top-level file of the source directory that the planner may use.
struct SourceShard {
  std::string name;                  // file name (no '/'), e.g. "model-00001-of-00002.safetensors"
  format::SafetensorsHeader header;  // its validated header
};
struct SourceIndex {
  std::string name;  // e.g. "model.safetensors.index.json"
  std::string text;
};

struct LockSplitPlan {
  // One output shard: the tensors it takes, from which source files, in this order.
  struct Piece {
    std::string source;                       // source shard name
    uint64_t source_data_start = 0;           // where its data region starts
    std::vector<format::TensorInfo> tensors;  // with the source's offsets
  };
  struct Output {
    std::string name;
    std::vector<format::MetadataEntry> metadata;  // user metadata (+ the marker if locked)
    std::vector<Piece> pieces;
    bool locked = false;
  };
  std::vector<Output> outputs;        // shards to write: rewritten rests, then the locked shard
  std::vector<std::string> replaced;  // source names not to copy (split, dropped, old index)
  std::string locked_name;            // the locked shard's name
  std::string index_name;             // the index to write
  std::string index_text;             // its content
  size_t locked_tensors = 0;
};

// PlanLockSplit plans the split of `shards` (every top-level *.safetensors file) under the
// index `indexes` (every top-level *.safetensors.index.json file: none or one). `lock_globs`
// are tensor-name globs; `existing` lists every top-level name in the source (for clashes).
// InvalidArgument naming the problem: no glob, a glob matching nothing, two indexes, several
// shards without an index, an index naming a missing shard or tensor, a name clash.
Result<LockSplitPlan> PlanLockSplit(const std::vector<SourceShard>& shards,
                                    const std::vector<SourceIndex>& indexes,
                                    const std::vector<std::string>& lock_globs,
                                    const std::vector<std::string>& existing);

// WritePlainShard writes output `out` as a plain safetensors file at `dst_path`, reading the
// tensors from `src_dir`/<piece.source>. Mode: that of the first source.
Status WritePlainShard(const LockSplitPlan::Output& out, const std::string& src_dir,
                       const std::string& dst_path);

}  // namespace ctfs::fs

#endif  // CTFS_FS_LOCK_SPLIT_H_
