#include "kernels/dtype.h"

#include "gtest/gtest.h"

namespace slm::kernels {
namespace {

TEST(DTypeTest, ParsesEveryNameItPrints) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kInt8}) {
    absl::StatusOr<DType> parsed = ParseDType(DTypeName(dtype));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, dtype);
  }
  EXPECT_EQ(DTypeName(DType::kF32), "f32");
  EXPECT_EQ(DTypeName(DType::kBF16), "bf16");
  EXPECT_EQ(DTypeName(DType::kInt8), "int8");
}

TEST(DTypeTest, RejectsUnknownNamesAndSaysWhatIsExpected) {
  for (const char* name : {"", "F32", "fp32", "float", "int4", "bf16 ", "s8"}) {
    absl::StatusOr<DType> parsed = ParseDType(name);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("\"bf16\""), std::string::npos);
  }
}

}  // namespace
}  // namespace slm::kernels
