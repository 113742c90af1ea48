// The device choice: names, what auto means on this build, the error for cuda where it
// cannot run, and which GPU a process of a multi-process launch takes.
#include "backend/select.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.h"

namespace lathe {
namespace {

std::string error_of(const std::string& device) {
  try {
    resolve_device(device);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DeviceChoice, CpuIsAlwaysTheCpu) {
  EXPECT_EQ(resolve_device("cpu"), "cpu");
  EXPECT_EQ(make_backend("cpu", 1)->name(), "cpu");
  EXPECT_TRUE(make_backend("cpu", 1)->host_accessible());
  EXPECT_NE(make_backend("cpu", 1)->description().find("cpu"), std::string::npos);
}

TEST(DeviceChoice, UnknownNamesSayWhatIsAccepted) {
  const std::string e = error_of("gpu");
  EXPECT_NE(e.find("unknown device 'gpu'"), std::string::npos) << e;
  EXPECT_NE(e.find("cpu, cuda or auto"), std::string::npos) << e;
}

#ifndef LATHE_HAVE_CUDA
TEST(DeviceChoice, WithoutCudaAutoIsTheCpuAndCudaSaysHowToGetIt) {
  EXPECT_EQ(resolve_device("auto"), "cpu");
  const std::string e = error_of("cuda");
  EXPECT_NE(e.find("-DLATHE_CUDA=ON"), std::string::npos) << e;
}
#else
TEST(DeviceChoice, WithCudaAutoFollowsTheVisibleGpus) {
  EXPECT_EQ(resolve_device("auto"), cuda_device_count() > 0 ? "cuda" : "cpu");
  if (cuda_device_count() == 0) {
    EXPECT_NE(error_of("cuda").find("no GPU is visible"), std::string::npos);
  }
}
#endif

TEST(DeviceChoice, LocalRankPicksTheGpu) {
  for (const char* v : {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"}) unsetenv(v);
  EXPECT_EQ(local_device_index(4), 0);
  setenv("SLURM_LOCALID", "6", 1);
  EXPECT_EQ(local_device_index(4), 2);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);  // before SLURM_LOCALID
  EXPECT_EQ(local_device_index(4), 1);
  setenv("LOCAL_RANK", "3", 1);  // first of all
  EXPECT_EQ(local_device_index(4), 3);
  EXPECT_EQ(local_device_index(0), 0);
  setenv("LOCAL_RANK", "x", 1);
  EXPECT_THROW(local_device_index(4), Error);
  for (const char* v : {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"}) unsetenv(v);
}

}  // namespace
}  // namespace lathe
