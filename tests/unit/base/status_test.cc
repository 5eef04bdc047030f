// SPDX-License-Identifier: Apache-2.0
#include "base/status.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "base/result.h"

namespace ctfs {
namespace {

TEST(Status, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "ok");
  Status s = DataLossError("tensor \"w\" chunk 3: authentication failed");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.ToString(), "data_loss: tensor \"w\" chunk 3: authentication failed");
  EXPECT_EQ(s.WithContext("model.safetensors").message(),
            "model.safetensors: tensor \"w\" chunk 3: authentication failed");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
  EXPECT_EQ(AlreadyExistsError("out").ToString(), "already_exists: out");
  EXPECT_EQ(BusyError("/mnt/x").ToString(), "busy: /mnt/x");
}

TEST(Status, ErrnoMapping) {
  EXPECT_EQ(ErrnoError(ENOENT, "open a").code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoError(EACCES, "open a").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoError(EIO, "read a").code(), StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoError(EEXIST, "mkdir a").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoError(EBUSY, "umount a").code(), StatusCode::kBusy);
  EXPECT_NE(ErrnoError(ENOENT, "open a").message().find("open a: "), std::string::npos);
}

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Status UseHalf(int x, int* out) {
  CTFS_ASSIGN_OR_RETURN(*out, Half(x));
  return Status::Ok();
}

TEST(Result, ValueAndErrorPropagation) {
  int v = 0;
  EXPECT_TRUE(UseHalf(8, &v).ok());
  EXPECT_EQ(v, 4);
  Status s = UseHalf(7, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(v, 4);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  Result<int> r = NotFoundError("x");
  EXPECT_DEATH((void)r.value(), "CTFS_CHECK failed");
}

}  // namespace
}  // namespace ctfs
