// SPDX-License-Identifier: Apache-2.0
#include "fs/key_lease_keeper.h"

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <utility>

#include "crypto/constant_time.h"

namespace ctfs::fs {
namespace {

std::string Join(const std::vector<std::string>& kids) {
  std::string out;
  for (const std::string& k : kids) out += (out.empty() ? "" : ",") + (k.empty() ? "(no kid)" : k);
  return out;
}

// A refresh without an exp makes the key unleased from then on: far enough never to come.
constexpr int64_t kNoExp = INT64_MAX / 4;

}  // namespace

std::unique_ptr<KeyLeaseKeeper> KeyLeaseKeeper::Create(
    const keys::KeySourceOptions& sources,
    const std::vector<keys::KeyResolver::ProviderInfo>& resolver_providers,
    const KeyLeaseOptions& options, ServedTree* tree, AccessControl* access, LogFn log) {
  std::unique_ptr<KeyLeaseKeeper> k(new KeyLeaseKeeper());
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const keys::KeyResolver::ProviderInfo& p : resolver_providers) {
    // Only exec helpers lease keys: an "exp" in a key file or credential is ignored (re-reading
    // a passphrase-protected file could prompt on a terminal and stall the lease thread).
    if (!p.exp_unix || p.source_index < 0 ||
        static_cast<size_t>(p.source_index) >= sources.sources.size() ||
        sources.sources[static_cast<size_t>(p.source_index)].exec.empty()) {
      continue;
    }
    Lease lease;
    lease.spec = sources.sources[static_cast<size_t>(p.source_index)];
    lease.provider = p.description;
    lease.kids = p.kids;
    lease.digest = p.key_digest;
    lease.times = {.granted_at = now, .exp = *p.exp_unix, .grace_s = options.grace_s};
    lease.last_try = now;
    k->leases_.push_back(std::move(lease));
  }
  if (k->leases_.empty()) return nullptr;
  k->sources_ = sources;
  k->options_ = options;
  k->tree_ = tree;
  k->access_ = access;
  k->log_ = log ? std::move(log) : [](bool, const std::string&) {};
  k->Publish(now);
  return k;
}

Status KeyLeaseKeeper::Refresh(Lease& lease, int64_t now, bool* withdrawn) const {
  *withdrawn = false;
  CTFS_ASSIGN_OR_RETURN(std::unique_ptr<keys::KeyProvider> provider,
                        keys::MakeKeyProvider(lease.spec));
  CTFS_ASSIGN_OR_RETURN(keys::ProvidedKeys got, provider->Load());
  if (got.withdrawn) {
    *withdrawn = true;
    return PermissionDeniedError(lease.provider + " says the key is withdrawn (exit status " +
                                 std::to_string(keys::kExitKeyWithdrawn) + ")");
  }
  // The same key set, or the served files' data keys would no longer be what the provider
  // vouches for. The digest is compared in constant time (it is derived from key bytes).
  const std::string digest = keys::KeyDigest(got.keys);
  if (digest.size() != lease.digest.size() ||
      !crypto::ConstantTimeEquals(AsBytes(digest), AsBytes(lease.digest))) {
    return FailedPreconditionError(lease.provider + " yielded a different key set (kids " +
                                   Join([&] {
                                     std::vector<std::string> kids;
                                     for (const auto& key : got.keys) kids.push_back(key.kid.value_or(""));
                                     return kids;
                                   }()) +
                                   ", expected " + Join(lease.kids) + ")");
  }
  lease.times = {.granted_at = now, .exp = got.exp_unix.value_or(kNoExp),
                 .grace_s = options_.grace_s};
  return Status::Ok();
}

KeyLeaseKeeper::Action KeyLeaseKeeper::Step(int64_t now) {
  bool newly_lost = false;
  for (Lease& lease : leases_) {
    if (now >= keys::NextAttemptAt(lease.times, lease.last_try)) {
      lease.last_try = now;
      bool withdrawn = false;
      Status st = Refresh(lease, now, &withdrawn);
      if (st.ok()) {
        if (!lease.last_error.empty() && !lease.lost) {
          log_(false, "key lease of " + Join(lease.kids) + " (" + lease.provider +
                          ") renewed after failures");
        }
        lease.last_error.clear();
        lease.lost = false;  // restored below, once every lease is back
        continue;
      }
      lease.last_error = st.message();
      if (!lease.lost) {
        log_(true, "key lease of " + Join(lease.kids) + ": refresh failed: " + st.message());
      }
      if (withdrawn && !lease.lost) {
        lease.lost = true;
        newly_lost = true;
        if (access_ != nullptr) {
          access_->Audit("key_lease_lost", "kid " + Join(lease.kids) + ", " + lease.provider +
                                               ": withdrawn: " + st.message());
        }
        log_(true, "key lease of " + Join(lease.kids) + " lost: withdrawn");
        continue;
      }
    }
    if (!lease.lost && keys::PhaseAt(lease.times, now) == keys::LeasePhase::kLost) {
      lease.lost = true;
      newly_lost = true;
      const std::string why = "not renewed within the grace period (exp " +
                              std::to_string(lease.times.exp) + ", grace " +
                              std::to_string(options_.grace_s) + " s): " +
                              (lease.last_error.empty() ? "no refresh" : lease.last_error);
      if (access_ != nullptr) {
        access_->Audit("key_lease_lost", "kid " + Join(lease.kids) + ", " + lease.provider +
                                             ": " + why);
      }
      log_(true, "key lease of " + Join(lease.kids) + " lost: " + why);
    }
  }
  const bool any_lost = std::any_of(leases_.begin(), leases_.end(),
                                    [](const Lease& l) { return l.lost; });
  Action action = Action::kNone;
  if (newly_lost) {
    if (options_.on_key_loss == KeyLossAction::kUnmount) {
      action = Action::kUnmount;
    } else {
      tree_->Suspend("the key lease of " + [&] {
        std::string kids;
        for (const Lease& l : leases_) {
          if (l.lost) kids += (kids.empty() ? "" : ",") + Join(l.kids);
        }
        return kids;
      }() + " ended");
      action = Action::kInvalidate;
    }
  } else if (!any_lost && tree_->suspended() && options_.on_key_loss == KeyLossAction::kDeny) {
    // Every lease is back: load the keys as at mount (all providers) and verify again.
    auto resolver = keys::KeyResolver::Create(sources_);
    Status st = resolver.ok() ? tree_->Resume(*resolver) : resolver.status();
    if (st.ok()) {
      if (access_ != nullptr) {
        access_->Audit("key_lease_restored", "keys renewed; encrypted files verified and served again");
      }
      log_(false, "key lease restored: encrypted files verified and served again");
      action = Action::kRestored;
      // Pages read under the loss (EACCES) are not cached; nothing to invalidate.
    } else {
      log_(true, "key lease renewed but the files could not be re-opened: " + st.message());
    }
  }
  Publish(now);
  return action;
}

int64_t KeyLeaseKeeper::NextStepAt() const {
  int64_t next = INT64_MAX;
  for (const Lease& lease : leases_) {
    next = std::min(next, keys::NextAttemptAt(lease.times, lease.last_try));
    if (!lease.lost) {
      next = std::min(next, lease.times.exp + lease.times.grace_s + 1);
    }
  }
  return next;
}

void KeyLeaseKeeper::Publish(int64_t now) {
  std::vector<KeyLeaseInfo> out;
  for (const Lease& lease : leases_) {
    KeyLeaseInfo info;
    info.kids = Join(lease.kids);
    info.provider = lease.provider;
    info.exp_unix = lease.times.exp;
    if (lease.lost) {
      info.state = "lost";
    } else {
      info.state = keys::PhaseAt(lease.times, now) == keys::LeasePhase::kValid ? "valid"
                                                                               : "refreshing";
    }
    out.push_back(std::move(info));
  }
  MutexLock lock(mu_);
  published_ = std::move(out);
}

std::vector<KeyLeaseInfo> KeyLeaseKeeper::Leases() const {
  MutexLock lock(mu_);
  return published_;
}

}  // namespace ctfs::fs
