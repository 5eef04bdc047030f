// SPDX-License-Identifier: Apache-2.0
// Clang thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html).
// Under clang each macro is the matching attribute, checked at compile time with
// -Wthread-safety (cmake/CtfsTargets.cmake turns it on for clang builds); under other
// compilers they expand to nothing, so gcc builds are unaffected.
//
// A "capability" is a lock: a class marked CTFS_CAPABILITY (base/mutex.h Mutex, SharedMutex).
// std::mutex carries no annotations in libstdc++, so annotated code locks base/mutex.h types.
//
//   class Counter {
//    public:
//     void Add(int n) CTFS_EXCLUDES(mu_) { MutexLock lock(mu_); n_ += n; }
//    private:
//     void AddLocked(int n) CTFS_REQUIRES(mu_) { n_ += n; }
//     Mutex mu_;
//     int n_ CTFS_GUARDED_BY(mu_) = 0;
//   };
#ifndef CTFS_BASE_THREAD_ANNOTATIONS_H_
#define CTFS_BASE_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define CTFS_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define CTFS_THREAD_ANNOTATION_(x)
#endif

// On a class: its objects are capabilities; `name` ("mutex") appears in the warnings.
#define CTFS_CAPABILITY(name) CTFS_THREAD_ANNOTATION_(capability(name))
// On a class: an RAII object that holds a capability from construction to destruction.
#define CTFS_SCOPED_CAPABILITY CTFS_THREAD_ANNOTATION_(scoped_lockable)

// On a data member: read and written only while `mu` is held (read: held shared at least).
#define CTFS_GUARDED_BY(mu) CTFS_THREAD_ANNOTATION_(guarded_by(mu))
// On a pointer member: the data it points to is guarded by `mu` (the pointer itself is not).
#define CTFS_PT_GUARDED_BY(mu) CTFS_THREAD_ANNOTATION_(pt_guarded_by(mu))

// On a lock member: the order in which locks are taken (checked with -Wthread-safety-beta).
#define CTFS_ACQUIRED_BEFORE(...) CTFS_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define CTFS_ACQUIRED_AFTER(...) CTFS_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))

// On a function: the caller must hold the capabilities (exclusively / at least shared).
#define CTFS_REQUIRES(...) CTFS_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define CTFS_REQUIRES_SHARED(...) CTFS_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
// On a function: the caller must not hold them (the function takes them itself).
#define CTFS_EXCLUDES(...) CTFS_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))

// On a function: it acquires / releases the capabilities (none named: `this`).
#define CTFS_ACQUIRE(...) CTFS_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define CTFS_ACQUIRE_SHARED(...) CTFS_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define CTFS_RELEASE(...) CTFS_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define CTFS_RELEASE_SHARED(...) CTFS_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
// Releases a capability however it was held (the destructor of a scoped shared lock).
#define CTFS_RELEASE_GENERIC(...) CTFS_THREAD_ANNOTATION_(release_generic_capability(__VA_ARGS__))
// On a function returning bool: CTFS_TRY_ACQUIRE(ok, capabilities...): it acquired them iff
// it returned `ok` (no capability named: `this`).
#define CTFS_TRY_ACQUIRE(...) CTFS_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#define CTFS_TRY_ACQUIRE_SHARED(...) \
  CTFS_THREAD_ANNOTATION_(try_acquire_shared_capability(__VA_ARGS__))

// On a function: it checks (aborts otherwise) that the capability is held; the analysis
// assumes so afterwards.
#define CTFS_ASSERT_CAPABILITY(mu) CTFS_THREAD_ANNOTATION_(assert_capability(mu))
#define CTFS_ASSERT_SHARED_CAPABILITY(mu) CTFS_THREAD_ANNOTATION_(assert_shared_capability(mu))

// On a function: it returns a reference to the capability `mu` (an accessor for a lock).
#define CTFS_RETURN_CAPABILITY(mu) CTFS_THREAD_ANNOTATION_(lock_returned(mu))

// On a function: not analysed. For code whose locking the analysis cannot follow (say why).
#define CTFS_NO_THREAD_SAFETY_ANALYSIS CTFS_THREAD_ANNOTATION_(no_thread_safety_analysis)

#endif  // CTFS_BASE_THREAD_ANNOTATIONS_H_
