// SPDX-License-Identifier: Apache-2.0
// faultio: an LD_PRELOAD library that injects faults into one process's positional reads of
// chosen files, below everything the process does: the real-mount counterpart of
// tests/testing/faulty_file.h (and of a device-mapper error/flakey target, which needs a
// kernel with device-mapper). tests/mount/test_mount_faults.py runs the mount daemon with it.
//
// It interposes pread, pread64, preadv and preadv2 (the daemon reads its backing files with
// pread only, buffered and O_DIRECT; read(), mmap and io_uring are not covered, so the tests
// assert that each fault was reached). Rules come from the file named by $CTFS_FAULTIO_CONTROL,
// re-read whenever its identity, size or mtime changes (write a new file and rename it over
// the old one), so a test can arm faults after the mount has verified the headers. One rule a
// line, '#' starts a comment:
//
//   KIND PATH OFF LEN [fd=direct|buffered] [ms=N]
//
// PATH: a file (matched by device and inode, resolved when the rules are read) or '*' (every
// regular file). [OFF, OFF+LEN) is the byte range of that file (LEN '-': to the end); a read
// whose range overlaps it gets the fault of the first matching rule:
//   eio    fails with EIO, reads nothing;
//   short  returns the first half of what was asked (correct bytes; on an O_DIRECT descriptor
//          whole pages, and a read of one page is not shortened): callers must retry;
//   eof    the file seems to end at OFF (LEN is ignored);
//   flip   the real read, with the lowest bit of every byte inside the range flipped;
//   delay  only waits (ms=N; default 100): a slow disk.
// fd=direct / fd=buffered: only reads through O_DIRECT / other descriptors. ms=N: wait N
// milliseconds before the fault (e.g. a slow failing read, so that other threads queue on it).
//
// Every hit appends one line to $CTFS_FAULTIO_LOG (if set): "hit KIND PATH OFF LEN direct=D";
// a rule that cannot be used appends "error ..." (and goes to stderr). Thread-safe: one mutex
// guards the rule table; the reads themselves run outside it. Not async-signal-safe (a signal
// handler that preads while its thread holds the mutex would deadlock); the daemon reads
// backing files from no signal handler.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum fault_kind { KIND_EIO, KIND_SHORT, KIND_EOF, KIND_FLIP, KIND_DELAY };
enum fd_select { FD_ANY, FD_DIRECT, FD_BUFFERED };

struct rule {
  enum fault_kind kind;
  enum fd_select fds;
  int any_file;
  dev_t dev;
  ino_t ino;
  uint64_t off;
  uint64_t end;  // exclusive; UINT64_MAX: to the end of the file
  unsigned delay_ms;
  char path[256];  // for the log
};

enum { kMaxRules = 64, kMaxControlLen = 64 * 1024, kDirectAlign = 4096 };

static const char* const kKindNames[] = {"eio", "short", "eof", "flip", "delay"};

typedef ssize_t (*pread_fn)(int, void*, size_t, off_t);
typedef ssize_t (*preadv_fn)(int, const struct iovec*, int, off_t);
typedef ssize_t (*preadv2_fn)(int, const struct iovec*, int, off_t, int);

static pread_fn real_pread, real_pread64;
static preadv_fn real_preadv;
static preadv2_fn real_preadv2;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static const char* control_path;  // $CTFS_FAULTIO_CONTROL, read once
static const char* log_path;      // $CTFS_FAULTIO_LOG, read once

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct rule rules[kMaxRules];  // guarded by mu
static int num_rules;                 // guarded by mu
static struct stat control_seen;      // guarded by mu: the control file the rules came from
static int control_present;           // guarded by mu

static void resolve(void) {
  real_pread = (pread_fn)dlsym(RTLD_NEXT, "pread");
  real_pread64 = (pread_fn)dlsym(RTLD_NEXT, "pread64");
  real_preadv = (preadv_fn)dlsym(RTLD_NEXT, "preadv");
  real_preadv2 = (preadv2_fn)dlsym(RTLD_NEXT, "preadv2");
  control_path = getenv("CTFS_FAULTIO_CONTROL");
  log_path = getenv("CTFS_FAULTIO_LOG");
}

// log_line appends `line` to $CTFS_FAULTIO_LOG (one write: O_APPEND keeps lines whole).
static void log_line(const char* line) {
  if (log_path == NULL || *log_path == '\0') return;
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t ignored = write(fd, line, strlen(line));
  (void)ignored;
  close(fd);
}

static void log_error(const char* what, const char* detail) {
  char line[512];
  snprintf(line, sizeof line, "error %s: %.400s\n", what, detail);
  fprintf(stderr, "faultio: %s", line);
  log_line(line);
}

static int parse_u64(const char* s, uint64_t* out) {
  char* end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || *s == '-') return -1;
  *out = (uint64_t)v;
  return 0;
}

// parse_rule fills `r` from one control line; returns 0, or -1 after logging why not.
static int parse_rule(char* line, struct rule* r) {
  char whole[512];
  snprintf(whole, sizeof whole, "%s", line);
  char* save = NULL;
  char* kind = strtok_r(line, " \t", &save);
  char* path = strtok_r(NULL, " \t", &save);
  char* off = strtok_r(NULL, " \t", &save);
  char* len = strtok_r(NULL, " \t", &save);
  if (kind == NULL || path == NULL || off == NULL || len == NULL) {
    log_error("rule needs KIND PATH OFF LEN", whole);
    return -1;
  }
  memset(r, 0, sizeof *r);
  int k;
  for (k = 0; k < (int)(sizeof kKindNames / sizeof kKindNames[0]); ++k) {
    if (strcmp(kind, kKindNames[k]) == 0) break;
  }
  if (k == (int)(sizeof kKindNames / sizeof kKindNames[0])) {
    log_error("unknown fault kind", kind);
    return -1;
  }
  r->kind = (enum fault_kind)k;
  r->delay_ms = r->kind == KIND_DELAY ? 100 : 0;
  uint64_t len_v = 0;
  if (parse_u64(off, &r->off) != 0 || (strcmp(len, "-") != 0 && parse_u64(len, &len_v) != 0)) {
    log_error("bad offset or length", whole);
    return -1;
  }
  r->end = (strcmp(len, "-") == 0 || len_v > UINT64_MAX - r->off) ? UINT64_MAX : r->off + len_v;
  for (char* opt; (opt = strtok_r(NULL, " \t", &save)) != NULL;) {
    uint64_t ms = 0;
    if (strcmp(opt, "fd=direct") == 0) {
      r->fds = FD_DIRECT;
    } else if (strcmp(opt, "fd=buffered") == 0) {
      r->fds = FD_BUFFERED;
    } else if (strncmp(opt, "ms=", 3) == 0 && parse_u64(opt + 3, &ms) == 0 && ms < 60000) {
      r->delay_ms = (unsigned)ms;
    } else {
      log_error("unknown option", opt);
      return -1;
    }
  }
  snprintf(r->path, sizeof r->path, "%s", path);
  if (strcmp(path, "*") == 0) {
    r->any_file = 1;
    return 0;
  }
  struct stat st;
  if (stat(path, &st) != 0) {
    log_error("cannot stat the rule's file", path);
    return -1;
  }
  r->dev = st.st_dev;
  r->ino = st.st_ino;
  return 0;
}

// reload_locked re-reads the control file if it changed since the rules were read from it.
static void reload_locked(void) {
  const char* control = control_path;
  struct stat st;
  if (control == NULL || stat(control, &st) != 0) {
    control_present = 0;
    num_rules = 0;
    return;
  }
  if (control_present && st.st_dev == control_seen.st_dev && st.st_ino == control_seen.st_ino &&
      st.st_size == control_seen.st_size && st.st_mtim.tv_sec == control_seen.st_mtim.tv_sec &&
      st.st_mtim.tv_nsec == control_seen.st_mtim.tv_nsec) {
    return;
  }
  control_present = 1;
  control_seen = st;
  num_rules = 0;
  static char text[kMaxControlLen + 1];
  int fd = open(control, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  size_t len = 0;
  for (ssize_t n; len < kMaxControlLen && (n = read(fd, text + len, kMaxControlLen - len)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    len += (size_t)n;
  }
  close(fd);
  text[len] = '\0';
  char* save = NULL;
  for (char* line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    char* hash = strchr(line, '#');
    if (hash != NULL) *hash = '\0';
    if (strspn(line, " \t\r") == strlen(line)) continue;
    if (num_rules == kMaxRules) {
      log_error("too many rules", control);
      break;
    }
    if (parse_rule(line, &rules[num_rules]) == 0) ++num_rules;
  }
}

// find_rule: the first rule for a read of [off, off+len) through `fd`; 0 if none.
static int find_rule(int fd, uint64_t off, size_t len, struct rule* out, int* direct) {
  pthread_mutex_lock(&mu);
  reload_locked();
  const int any = num_rules > 0;
  pthread_mutex_unlock(&mu);
  if (!any || len == 0) return 0;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  const int flags = fcntl(fd, F_GETFL);
  *direct = flags >= 0 && (flags & O_DIRECT) != 0;
  const uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
  int found = 0;
  pthread_mutex_lock(&mu);
  for (int i = 0; i < num_rules && !found; ++i) {
    const struct rule* r = &rules[i];
    if (!r->any_file && (r->dev != st.st_dev || r->ino != st.st_ino)) continue;
    if ((r->fds == FD_DIRECT && !*direct) || (r->fds == FD_BUFFERED && *direct)) continue;
    const uint64_t r_end = r->kind == KIND_EOF ? UINT64_MAX : r->end;
    if (off >= r_end || end <= r->off) continue;
    *out = *r;
    found = 1;
  }
  pthread_mutex_unlock(&mu);
  return found;
}

// faulted_pread: `real` at [off, off+len) with rule `r` applied.
static ssize_t faulted_pread(pread_fn real, int fd, void* buf, size_t len, uint64_t off,
                             const struct rule* r, int direct) {
  char line[512];
  snprintf(line, sizeof line, "hit %s %s %llu %zu direct=%d\n", kKindNames[r->kind], r->path,
           (unsigned long long)off, len, direct);
  log_line(line);
  if (r->delay_ms > 0) {
    struct timespec ts = {(time_t)(r->delay_ms / 1000), (long)(r->delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
  switch (r->kind) {
    case KIND_EIO:
      errno = EIO;
      return -1;
    case KIND_SHORT: {
      size_t want = len / 2;
      if (direct) want -= want % kDirectAlign;
      if (want == 0) want = direct ? len : 1;
      return real(fd, buf, want, (off_t)off);
    }
    case KIND_EOF: {
      ssize_t n = real(fd, buf, len, (off_t)off);
      if (n < 0) return n;
      const uint64_t left = off >= r->off ? 0 : r->off - off;
      return (uint64_t)n > left ? (ssize_t)left : n;
    }
    case KIND_FLIP: {
      ssize_t n = real(fd, buf, len, (off_t)off);
      if (n <= 0) return n;
      const uint64_t lo = off > r->off ? off : r->off;
      const uint64_t hi = off + (uint64_t)n < r->end ? off + (uint64_t)n : r->end;
      for (uint64_t p = lo; p < hi; ++p) ((unsigned char*)buf)[p - off] ^= 1;
      return n;
    }
    case KIND_DELAY:
      return real(fd, buf, len, (off_t)off);
  }
  errno = EIO;
  return -1;
}

static ssize_t pread_common(pread_fn real, int fd, void* buf, size_t len, off_t off) {
  struct rule r;
  int direct = 0;
  if (off < 0 || !find_rule(fd, (uint64_t)off, len, &r, &direct)) return real(fd, buf, len, off);
  return faulted_pread(real, fd, buf, len, (uint64_t)off, &r, direct);
}

ssize_t pread(int fd, void* buf, size_t len, off_t off) {
  pthread_once(&resolve_once, resolve);
  return pread_common(real_pread, fd, buf, len, off);
}

// x86-64 (the only target): off64_t is off_t, and glibc's pread64 is pread.
_Static_assert(sizeof(off64_t) == sizeof(off_t), "pread64 takes the same offset as pread");

ssize_t pread64(int fd, void* buf, size_t len, off64_t off) {
  pthread_once(&resolve_once, resolve);
  return pread_common(real_pread64, fd, buf, len, (off_t)off);
}

// preadv_common: a faulted vector read goes through one bounce buffer (aligned, for O_DIRECT).
static ssize_t preadv_common(int fd, const struct iovec* iov, int iovcnt, off_t off, int flags,
                             int v2) {
  size_t len = 0;
  for (int i = 0; i < iovcnt; ++i) len += iov[i].iov_len;
  struct rule r;
  int direct = 0;
  if (off < 0 || iovcnt <= 0 || !find_rule(fd, (uint64_t)off, len, &r, &direct)) {
    return v2 ? real_preadv2(fd, iov, iovcnt, off, flags) : real_preadv(fd, iov, iovcnt, off);
  }
  void* bounce = NULL;
  if (posix_memalign(&bounce, kDirectAlign, len) != 0) {
    errno = ENOMEM;
    return -1;
  }
  ssize_t n = faulted_pread(real_pread, fd, bounce, len, (uint64_t)off, &r, direct);
  for (size_t done = 0, i = 0; n > 0 && done < (size_t)n; ++i) {
    const size_t take = iov[i].iov_len < (size_t)n - done ? iov[i].iov_len : (size_t)n - done;
    memcpy(iov[i].iov_base, (char*)bounce + done, take);
    done += take;
  }
  const int saved = errno;
  free(bounce);
  errno = saved;
  return n;
}

ssize_t preadv(int fd, const struct iovec* iov, int iovcnt, off_t off) {
  pthread_once(&resolve_once, resolve);
  return preadv_common(fd, iov, iovcnt, off, 0, 0);
}

ssize_t preadv2(int fd, const struct iovec* iov, int iovcnt, off_t off, int flags) {
  pthread_once(&resolve_once, resolve);
  return preadv_common(fd, iov, iovcnt, off, flags, 1);
}
