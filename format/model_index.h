// SPDX-License-Identifier: Apache-2.0
// The sharded-model index of Hugging Face transformers (`model.safetensors.index.json`):
// {"metadata": {"total_size": N, ...}, "weight_map": {"<tensor>": "<shard file>", ...}}.
// Loaders read the shard set from weight_map's values, so moving tensors into another shard
// (`ctfs encrypt --lock`) means rewriting weight_map.
#ifndef CTFS_FORMAT_MODEL_INDEX_H_
#define CTFS_FORMAT_MODEL_INDEX_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace ctfs::format {

// The suffix that names an index file.
inline constexpr char kModelIndexSuffix[] = ".safetensors.index.json";

// ParseWeightMap returns weight_map (tensor name -> shard file name) of index text `json`.
// InvalidArgument (prefixed with `what`) for bad JSON, a missing or non-object weight_map, or a
// non-string value.
Result<std::map<std::string, std::string>> ParseWeightMap(std::string_view json,
                                                          std::string_view what);

// RewriteWeightMap returns index text `json` with weight_map[t] = f for every (t, f) in `moves`
// (each t must already be listed: InvalidArgument otherwise); every other member is kept.
// Written like transformers writes it: keys sorted, two-space indent, trailing newline.
Result<std::string> RewriteWeightMap(std::string_view json,
                                     const std::map<std::string, std::string>& moves,
                                     std::string_view what);

// NewModelIndex returns the text of a fresh index for `weight_map` (same layout as above).
std::string NewModelIndex(uint64_t total_size,
                          const std::map<std::string, std::string>& weight_map);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_MODEL_INDEX_H_
