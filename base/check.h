// SPDX-License-Identifier: Apache-2.0
// CTFS_CHECK: abort loudly on a broken internal invariant (a bug). Never use it on anything
// derived from file bytes, configuration, key material or a kernel request: hostile input
// must become a Status, not an abort.
#ifndef CTFS_BASE_CHECK_H_
#define CTFS_BASE_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define CTFS_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "%s:%d: CTFS_CHECK failed (bug): %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

#endif  // CTFS_BASE_CHECK_H_
