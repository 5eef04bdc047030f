// SPDX-License-Identifier: Apache-2.0
// KeyLeaseKeeper: the remote kill switch of README "Key leases". Keys a provider yielded with
// an "exp" are leased: before exp the keeper asks that provider again (keys/key_lease.h gives
// the schedule); a refresh must yield the same key set (same kids and key bytes, compared by
// digest in constant time) and extends the lease to its new exp. The key is lost when
//   - no refresh has succeeded by exp + grace_s (a helper that fails, times out, prints
//     garbage or a different key set is a failed refresh), or
//   - the provider says it is withdrawn (exec helper exit status 77): at once, no grace.
// On loss the keeper audits "key_lease_lost" and suspends the tree (fs/served_tree.h: opens
// and reads of encrypted files answer EACCES, data keys and cached plaintext are wiped); the
// daemon then drops the kernel's pages of every file (mapped pages too) or, with
// on_key_loss: unmount, revokes and unmounts as on SIGTERM. In deny mode the keeper goes on
// asking once a second; when every lease is renewed it re-opens and re-verifies the tree
// with freshly loaded keys (all providers asked again, as at mount) and audits
// "key_lease_restored".
// No FUSE types here: the daemon's lease thread calls Step() and does what it returns.
// Thread safety: Step() from one thread at a time; Leases() from any thread.
#ifndef CTFS_FS_KEY_LEASE_KEEPER_H_
#define CTFS_FS_KEY_LEASE_KEEPER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "fs/access_control.h"
#include "fs/served_tree.h"
#include "keys/key_lease.h"
#include "keys/key_resolver.h"

namespace ctfs::fs {

enum class KeyLossAction { kDeny, kUnmount };

struct KeyLeaseOptions {
  int64_t grace_s = 30;
  KeyLossAction on_key_loss = KeyLossAction::kDeny;
};

// One lease as `ctfs status` shows it.
struct KeyLeaseInfo {
  std::string kids;      // the provider's key ids, comma-separated
  std::string provider;  // KeyProvider::Describe()
  int64_t exp_unix = 0;
  std::string state;  // "valid", "refreshing" (refresh point passed, not renewed yet), "lost"
};

class KeyLeaseKeeper {
 public:
  // What the daemon must do after a Step.
  enum class Action {
    kNone,
    kInvalidate,  // the tree was suspended: drop the kernel's pages of every served file
    kUnmount,     // on_key_loss: unmount: revoke and unmount as on SIGTERM
    kRestored,    // every lease was renewed and the tree serves encrypted files again
  };
  using LogFn = std::function<void(bool error, const std::string& line)>;

  // Create: a keeper for the providers of `resolver_providers` that reported an exp (they
  // come from `sources`, the options the resolver was created with); nullptr when none did.
  // `access` (may be null) receives the audit events; `log` the log lines.
  static std::unique_ptr<KeyLeaseKeeper> Create(
      const keys::KeySourceOptions& sources,
      const std::vector<keys::KeyResolver::ProviderInfo>& resolver_providers,
      const KeyLeaseOptions& options, ServedTree* tree, AccessControl* access, LogFn log);

  // Step does what is due at `now` (Unix seconds): refreshes (each blocks up to its
  // provider's timeout), loss, restore.
  Action Step(int64_t now);
  // NextStepAt: the Unix time Step next has work (at most a second away while a lease is
  // refreshing or lost).
  int64_t NextStepAt() const;

  // Leases: the leases as of the last Step.
  std::vector<KeyLeaseInfo> Leases() const;

 private:
  struct Lease {
    keys::KeySourceSpec spec;
    std::string provider;
    std::vector<std::string> kids;
    std::string digest;
    keys::LeaseTimes times;
    int64_t last_try = INT64_MIN;
    bool lost = false;
    std::string last_error;
  };
  KeyLeaseKeeper() = default;
  // Refresh asks the lease's provider; OK extends `times`; *withdrawn says why it failed.
  Status Refresh(Lease& lease, int64_t now, bool* withdrawn) const;

  void Publish(int64_t now);

  keys::KeySourceOptions sources_;
  KeyLeaseOptions options_;
  ServedTree* tree_ = nullptr;
  AccessControl* access_ = nullptr;
  LogFn log_;
  std::vector<Lease> leases_;  // only the Step thread touches these
  mutable Mutex mu_;
  std::vector<KeyLeaseInfo> published_ CTFS_GUARDED_BY(mu_);  // as of the last Step
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_KEY_LEASE_KEEPER_H_
