// SPDX-License-Identifier: Apache-2.0
// Tests for crypto/openssl_error.cc: the OpenSSL error queue becomes an Internal Status and is
// left empty. (A crypto-layer test, so it may include OpenSSL to queue an error.)
#include "crypto/openssl_error.h"

#include <gtest/gtest.h>
#include <openssl/err.h>

#include "base/status.h"

namespace ctfs::crypto {
namespace {

TEST(OpenSslErrorTest, EmptyQueue) {
  ERR_clear_error();
  Status st = OpenSslError("doing x");
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_EQ(st.message(), "doing x: no OpenSSL error queued");
}

TEST(OpenSslErrorTest, DrainsQueuedErrors) {
  ERR_clear_error();
  ERR_raise(ERR_LIB_EVP, ERR_R_PASSED_NULL_PARAMETER);
  ERR_raise(ERR_LIB_EVP, ERR_R_MALLOC_FAILURE);
  Status st = OpenSslError("doing y");
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_EQ(st.message().rfind("doing y: error:", 0), 0u) << st.message();
  EXPECT_NE(st.message().find("; "), std::string::npos) << st.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(OpenSslErrorTest, ManyErrorsAreCappedAndDrained) {
  ERR_clear_error();
  for (int i = 0; i < 10; ++i) ERR_raise(ERR_LIB_EVP, ERR_R_PASSED_NULL_PARAMETER);
  Status st = OpenSslError("z");
  size_t separators = 0;
  for (size_t pos = 0; (pos = st.message().find("; ", pos)) != std::string::npos; pos += 2) {
    ++separators;
  }
  EXPECT_EQ(separators, 3u) << st.message();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(OpenSslErrorTest, ClearEmptiesQueue) {
  ERR_raise(ERR_LIB_EVP, ERR_R_PASSED_NULL_PARAMETER);
  ClearOpenSslErrors();
  EXPECT_EQ(ERR_peek_error(), 0u);
}

}  // namespace
}  // namespace ctfs::crypto
