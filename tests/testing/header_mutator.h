// SPDX-License-Identifier: Apache-2.0
// Structural changes to a CryptoTensors header, for tests and fuzzers that re-sign what they
// changed (tests/testing/resign.h): random edits of the JSON inside the reserved metadata
// values, and of the tensor table. Every choice comes from the caller's std::mt19937_64, so a
// seed reproduces its changes. Shared by tests/unit/fs/signed_mutation_test.cc and
// tests/fuzz/open_file_fuzzer.cc; no GoogleTest dependency.
#ifndef CTFS_TESTS_TESTING_HEADER_MUTATOR_H_
#define CTFS_TESTS_TESTING_HEADER_MUTATOR_H_

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "format/base64.h"
#include "format/crypt_metadata.h"
#include "format/dtype.h"
#include "format/safetensors_header.h"

namespace ctfs::testing {

// Member order matters to the texts being changed, so the ordered variant is used (inputs
// are small: its linear member search costs nothing here).
using OrderedJson = nlohmann::ordered_json;

// JsonMutator makes one random structural change to a JSON value.
class JsonMutator {
 public:
  explicit JsonMutator(std::mt19937_64& rng) : rng_(rng) {}

  void Mutate(OrderedJson& root) {
    std::vector<Node> nodes;
    Collect(root, nullptr, "", 0, nodes);
    Node n = nodes[Pick(nodes.size())];
    switch (Pick(6)) {
      case 0:
        *n.value = Interesting();
        break;
      case 1:  // delete (the root is replaced instead)
        if (n.parent && n.parent->is_object()) {
          n.parent->erase(n.key);
        } else if (n.parent && n.parent->is_array()) {
          n.parent->erase(n.index);
        } else {
          *n.value = Interesting();
        }
        break;
      case 2: {  // copy another node here, or into this container
        OrderedJson copy = *nodes[Pick(nodes.size())].value;
        if (n.value->is_object() && Pick(2) == 0) {
          (*n.value)[Pick(2) == 0 ? std::string("extra") : RandomKeyOf(*n.value)] = copy;
        } else if (n.value->is_array()) {
          n.value->insert(n.value->begin() + static_cast<long>(Pick(n.value->size() + 1)), copy);
        } else {
          *n.value = copy;
        }
        break;
      }
      case 3:
        if (n.value->is_string())
          *n.value = TweakString(n.value->get<std::string>());
        else
          *n.value = Interesting();
        break;
      case 4:
        if (n.value->is_number_integer())
          *n.value = TweakNumber(*n.value);
        else
          *n.value = Interesting();
        break;
      default:
        if (n.value->is_array() && n.value->size() >= 2) {
          std::swap((*n.value)[Pick(n.value->size())], (*n.value)[Pick(n.value->size())]);
        } else if (n.value->is_array() || n.value->is_object()) {
          n.value->clear();
        } else {
          *n.value = Interesting();
        }
    }
  }

  // TweakString: truncated, a character changed or added, or (for base64) decoded, changed by
  // a bit or a byte and encoded again, so that it still decodes.
  std::string TweakString(std::string s) {
    auto decoded = format::Base64Decode(s);
    if (decoded.ok() && !s.empty() && Pick(2) == 0) {
      Bytes b = *decoded;
      switch (Pick(3)) {
        case 0:
          if (!b.empty()) b[Pick(b.size())] ^= static_cast<uint8_t>(1u << Pick(8));
          break;
        case 1:
          if (!b.empty()) b.pop_back();
          break;
        default:
          b.push_back(static_cast<uint8_t>(Pick(256)));
      }
      return format::Base64Encode(b);
    }
    switch (Pick(4)) {
      case 0:
        return s.substr(0, Pick(s.size() + 1));
      case 1:
        if (!s.empty()) s[Pick(s.size())] = static_cast<char>(Pick(256));
        return s;
      case 2:
        s.insert(Pick(s.size() + 1), 1, "x\n=.{}\"\\\0 "[Pick(11)]);
        return s;
      default:
        return s + s;
    }
  }

 private:
  struct Node {
    OrderedJson* value;
    OrderedJson* parent;
    std::string key;
    size_t index;
  };

  void Collect(OrderedJson& v, OrderedJson* parent, const std::string& key, size_t index,
               std::vector<Node>& out) {
    out.push_back({&v, parent, key, index});
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) Collect(it.value(), &v, it.key(), 0, out);
    } else if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) Collect(v[i], &v, "", i, out);
    }
  }

  OrderedJson Interesting() {
    switch (Pick(16)) {
      case 0:
        return nullptr;
      case 1:
        return true;
      case 2:
        return 0;
      case 3:
        return -1;
      case 4:
        return 1;
      case 5:
        return uint64_t{1} << 32;
      case 6:
        return (uint64_t{1} << 53) + 1;
      case 7:
        return ~uint64_t{0};
      case 8:
        return 1.5;
      case 9:
        return 1e308;
      case 10:
        return "";
      case 11:
        return "AAAA";
      case 12:
        return std::string(5000, 'A');
      case 13:
        return OrderedJson::array();
      case 14:
        return OrderedJson::object();
      default:
        return "2";
    }
  }

  OrderedJson TweakNumber(const OrderedJson& v) {
    if (v.is_number_unsigned()) {
      uint64_t x = v.get<uint64_t>();
      const uint64_t options[] = {x + 1, x - 1, x * 2, x / 2, 0, x << 20};
      return options[Pick(6)];
    }
    int64_t x = v.get<int64_t>();
    const int64_t options[] = {x + 1, x - 1, -x, 0};
    return options[Pick(4)];
  }

  std::string RandomKeyOf(const OrderedJson& obj) {
    if (obj.empty()) return "k";
    auto it = obj.begin();
    std::advance(it, static_cast<long>(Pick(obj.size())));
    return it.key();
  }

  size_t Pick(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }

  std::mt19937_64& rng_;
};

// MutateCryptoJson changes one of __crypto_keys__, __encryption__ and __policy__ of `h`: removes
// it (1 in 20), changes its text (1 in 20, or when it is not JSON), or makes one structural
// change to its JSON (JsonMutator::Mutate) and writes it back compactly.
inline void MutateCryptoJson(format::SafetensorsHeader& h, std::mt19937_64& rng,
                             JsonMutator& mutator) {
  std::vector<format::MetadataEntry*> targets;
  for (auto& m : h.metadata) {
    if (m.key == format::kCryptoKeysKey || m.key == format::kEncryptionKey ||
        m.key == format::kPolicyKey) {
      targets.push_back(&m);
    }
  }
  if (targets.empty()) return;
  format::MetadataEntry& m = *targets[rng() % targets.size()];
  const uint64_t roll = rng() % 20;
  if (roll == 0) {  // the entry gone
    std::erase_if(h.metadata, [&](const auto& e) { return &e == &m; });
    return;
  }
  OrderedJson j = OrderedJson::parse(m.value, nullptr, /*allow_exceptions=*/false);
  if (roll == 1 || j.is_discarded()) {  // text-level change: often no longer JSON
    m.value = mutator.TweakString(m.value);
    return;
  }
  mutator.Mutate(j);
  m.value = j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

// MutateTensorTable changes one tensor of `h`: its dtype, a dimension, its end offset, its
// name, swaps its offsets, or removes it.
inline void MutateTensorTable(format::SafetensorsHeader& h, std::mt19937_64& rng) {
  if (h.tensors.empty()) return;
  format::TensorInfo& t = h.tensors[rng() % h.tensors.size()];
  switch (rng() % 6) {
    case 0:
      t.dtype = static_cast<format::Dtype>(rng() % (static_cast<int>(format::Dtype::kF16) + 1));
      break;
    case 1:
      if (!t.shape.empty()) t.shape[rng() % t.shape.size()] += rng() % 3 ? 1 : ~uint64_t{0};
      break;
    case 2:
      t.end += rng() % 2 ? 1 : ~uint64_t{0};
      break;
    case 3:
      t.name += "x";
      break;
    case 4:
      std::swap(t.begin, t.end);
      break;
    default:
      h.tensors.erase(h.tensors.begin() + static_cast<long>(rng() % h.tensors.size()));
  }
}

}  // namespace ctfs::testing

#endif  // CTFS_TESTS_TESTING_HEADER_MUTATOR_H_
