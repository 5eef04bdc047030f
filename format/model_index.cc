// SPDX-License-Identifier: Apache-2.0
#include "format/model_index.h"

#include "format/internal/strict_json.h"

namespace ctfs::format {
namespace {

using internal::Json;

constexpr char kWeightMap[] = "weight_map";

// Dump never throws: the tree holds only valid UTF-8 (checked by the parser or built here), and
// invalid bytes would be replaced rather than raise.
std::string Dump(const Json& j) {
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<Json> ParseIndex(std::string_view json, std::string_view what) {
  CTFS_ASSIGN_OR_RETURN(Json j, internal::ParseStrictJson(json, what));
  if (!j.is_object()) return InvalidArgumentError(std::string(what) + ": not a JSON object");
  auto it = j.find(kWeightMap);
  if (it == j.end() || !it->is_object()) {
    return InvalidArgumentError(std::string(what) + ": no \"weight_map\" object");
  }
  for (const auto& [name, file] : it->items()) {
    if (!file.is_string()) {
      return InvalidArgumentError(std::string(what) + ": weight_map[\"" + name +
                                  "\"] is not a string");
    }
  }
  return j;
}

}  // namespace

Result<std::map<std::string, std::string>> ParseWeightMap(std::string_view json,
                                                          std::string_view what) {
  CTFS_ASSIGN_OR_RETURN(Json j, ParseIndex(json, what));
  std::map<std::string, std::string> out;
  for (const auto& [name, file] : j[kWeightMap].items()) out[name] = file.get<std::string>();
  return out;
}

Result<std::string> RewriteWeightMap(std::string_view json,
                                     const std::map<std::string, std::string>& moves,
                                     std::string_view what) {
  CTFS_ASSIGN_OR_RETURN(Json j, ParseIndex(json, what));
  Json& map = j[kWeightMap];
  for (const auto& [name, file] : moves) {
    auto it = map.find(name);
    if (it == map.end()) {
      return InvalidArgumentError(std::string(what) + ": weight_map does not list tensor \"" +
                                  name + "\"");
    }
    *it = file;
  }
  return Dump(j);
}

std::string NewModelIndex(uint64_t total_size,
                          const std::map<std::string, std::string>& weight_map) {
  Json j = Json::object();
  j["metadata"] = Json::object({{"total_size", total_size}});
  Json map = Json::object();
  for (const auto& [name, file] : weight_map) map[name] = file;
  j[kWeightMap] = std::move(map);
  return Dump(j);
}

}  // namespace ctfs::format
