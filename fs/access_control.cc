// SPDX-License-Identifier: Apache-2.0
#include "fs/access_control.h"

#include <ctime>
#include <set>

namespace ctfs::fs {
namespace {

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

const char* DecisionWord(const policy::Decision& d) {
  if (d.rules_allow) return "allow";
  return d.allow ? "would-deny" : "deny";
}

}  // namespace

AccessControl::AccessControl(Options options, std::vector<PolicyFile> files,
                             std::shared_ptr<const policy::AccessPolicy> policy,
                             std::unique_ptr<AuditLog> audit)
    : options_(std::move(options)),
      files_(std::move(files)),
      callers_(options_.caller),
      audit_(std::move(audit)),
      policy_(std::move(policy)) {
  for (size_t i = 0; i < files_.size(); ++i) {
    const uint64_t ino = files_[i].ino;
    if (ino >= index_of_ino_.size()) index_of_ino_.resize(ino + 1, -1);
    index_of_ino_[ino] = static_cast<int64_t>(i);
  }
}

AccessControl::~AccessControl() = default;

std::shared_ptr<const policy::AccessPolicy> AccessControl::policy() const {
  MutexLock lock(mu_);
  return policy_;
}

const PolicyFile* AccessControl::FileOf(uint64_t ino, size_t* index) const {
  if (ino >= index_of_ino_.size() || index_of_ino_[ino] < 0) return nullptr;
  *index = static_cast<size_t>(index_of_ino_[ino]);
  return &files_[*index];
}

AuditEvent AccessControl::EventFor(const policy::Subject* s, const PolicyFile* file,
                                   const policy::Decision& d, bool permissive) const {
  AuditEvent e;
  if (file != nullptr) e.path = file->object.rel_path;
  e.decision = DecisionWord(d);
  e.rule = d.rule;
  e.reason = d.reason;
  e.mode = permissive ? "permissive" : "enforce";
  if (s != nullptr) {
    e.has_subject = true;
    e.uid = s->uid;
    e.gid = s->gid;
    e.pid = s->pid;
    e.exe = s->exe;
    e.cgroup = s->cgroup;
  }
  return e;
}

Result<std::shared_ptr<const AccessGrant>> AccessControl::CheckOpen(const CallerId& caller,
                                                                    uint64_t ino) {
  size_t index = 0;
  const PolicyFile* file = FileOf(ino, &index);
  if (file == nullptr) return PermissionDeniedError("not a served file");
  for (;;) {
    std::shared_ptr<const policy::AccessPolicy> p;
    uint64_t generation = 0;
    {
      MutexLock lock(mu_);
      p = policy_;
      generation = generation_;
    }
    auto subject = callers_.Read(caller, p != nullptr && p->NeedsExeHash());
    policy::Decision d;
    if (!subject.ok()) {
      // Nobody to decide for: fail closed under a policy; without one the mount behaves as
      // without a config (file modes decide).
      d.allow = d.rules_allow = p == nullptr;
      d.reason = subject.status().message();
      if (audit_ != nullptr) {
        AuditEvent e = EventFor(nullptr, file, d, p != nullptr && p->permissive());
        e.has_subject = true;
        e.uid = caller.uid;
        e.gid = caller.gid;
        e.pid = caller.pid;
        audit_->Record(e);
      }
      if (!d.allow) return PermissionDeniedError(d.reason);
      return std::shared_ptr<const AccessGrant>();  // nothing to re-decide without a subject
    }
    if (p != nullptr) {
      d = p->Decide(index, *subject, NowUnix());
    } else {
      d.allow = d.rules_allow = true;
      d.reason = "no policy";
    }
    auto grant = std::make_shared<AccessGrant>();
    grant->subject_ = std::move(*subject);
    grant->file_index_ = index;
    grant->ino_ = ino;
    {
      MutexLock lock(mu_);
      // A re-decision (reload, window) that ran since this one was made has not seen this
      // open: decide again under what it installed.
      if (generation != generation_) continue;
      if (d.allow) {
        if (grants_.size() >= 1024 && (grants_.size() & (grants_.size() - 1)) == 0) {
          std::erase_if(grants_, [](const std::weak_ptr<AccessGrant>& g) { return g.expired(); });
        }
        grants_.push_back(grant);
      }
    }
    if (audit_ != nullptr) {
      audit_->Record(EventFor(&grant->subject_, file, d, p != nullptr && p->permissive()));
    }
    if (!d.allow) return PermissionDeniedError(d.reason);
    return std::shared_ptr<const AccessGrant>(std::move(grant));
  }
}

bool AccessControl::Hides() const {
  std::shared_ptr<const policy::AccessPolicy> p = policy();
  return p != nullptr && p->HidesFiles();
}

std::function<bool(uint64_t)> AccessControl::VisibilityFor(const CallerId& caller) {
  std::shared_ptr<const policy::AccessPolicy> p = policy();
  if (p == nullptr || !p->HidesFiles()) return {};
  auto subject = callers_.Read(caller, p->NeedsExeHash());
  const int64_t now = NowUnix();
  return [this, p, now, subject = std::move(subject)](uint64_t ino) {
    size_t index = 0;
    if (FileOf(ino, &index) == nullptr) return true;  // a directory
    if (!subject.ok()) return false;
    return !p->Decide(index, *subject, now).hide;
  };
}

void AccessControl::AuditRefusal(const CallerId& caller, uint64_t ino, const std::string& why) {
  if (audit_ == nullptr) return;
  size_t index = 0;
  policy::Decision d;
  d.reason = why;
  AuditEvent e = EventFor(nullptr, FileOf(ino, &index), d, false);
  e.decision = "deny";
  e.mode.clear();
  e.has_subject = true;
  e.uid = caller.uid;
  e.gid = caller.gid;
  e.pid = caller.pid;
  audit_->Record(e);
}

std::optional<int64_t> AccessControl::NextTransition() const {
  std::shared_ptr<const policy::AccessPolicy> p = policy();
  if (p == nullptr) return std::nullopt;
  return p->NextTransition(NowUnix());
}

std::vector<uint64_t> AccessControl::Reevaluate(int64_t now_unix, const std::string& event) {
  std::shared_ptr<const policy::AccessPolicy> p;
  std::vector<std::shared_ptr<AccessGrant>> live;
  {
    MutexLock lock(mu_);
    p = policy_;
    ++generation_;  // opens decided before this point and not yet registered decide again
    std::erase_if(grants_, [](const std::weak_ptr<AccessGrant>& g) { return g.expired(); });
    for (const auto& w : grants_) {
      if (auto g = w.lock()) live.push_back(std::move(g));
    }
  }
  std::set<uint64_t> inos;
  size_t withdrawn = 0;
  for (const auto& g : live) {
    if (g->withdrawn() || p == nullptr) continue;
    policy::Decision d = p->Decide(g->file_index_, g->subject_, now_unix);
    if (d.rules_allow) continue;
    AuditEvent e = EventFor(&g->subject_, &files_[g->file_index_], d, p->permissive());
    e.event = event;
    if (audit_ != nullptr) audit_->Record(e);
    if (d.allow) continue;  // permissive: audited only
    g->withdrawn_.store(true, std::memory_order_release);
    inos.insert(g->ino_);
    ++withdrawn;
  }
  // Files no rule can allow any more: drop their plaintext from the page cache too, though no
  // open holds them now.
  if (p != nullptr && !p->permissive()) {
    for (size_t i = 0; i < files_.size(); ++i) {
      if (!p->CanAllow(i, now_unix)) inos.insert(files_[i].ino);
    }
  }
  Audit(event, std::to_string(withdrawn) + " open(s) withdrawn, " + std::to_string(inos.size()) +
                   " file(s) invalidated");
  return {inos.begin(), inos.end()};
}

std::vector<uint64_t> AccessControl::Replace(std::shared_ptr<const policy::AccessPolicy> policy) {
  {
    MutexLock lock(mu_);
    policy_ = std::move(policy);
  }
  return Reevaluate(NowUnix(), "reload");
}

void AccessControl::Audit(const std::string& event, const std::string& reason) {
  if (audit_ == nullptr) return;
  AuditEvent e;
  e.event = event;
  e.reason = reason;
  std::shared_ptr<const policy::AccessPolicy> p = policy();
  if (p != nullptr) e.mode = p->permissive() ? "permissive" : "enforce";
  audit_->Record(e);
}

void AccessControl::Flush() {
  if (audit_ != nullptr) audit_->Flush();
}

}  // namespace ctfs::fs
