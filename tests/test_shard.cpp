// earmark detect --shard INDEX/COUNT: the shards of an indexed Kubernetes Job (deploy/helm) must
// together process every input file exactly once, and a bad shard spec is a usage error.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace {

using earmark::testing::fs::path;
using earmark::testing::shared_dir;
using earmark::testing::TempDir;

using earmark::testing::run;

std::string detect(const path& in, const path& out, const std::string& shard, int* status) {
  return run("EARMARK_MODELS='" + earmark::testing::models_dir().string() + "' '" +
                 earmark::testing::cli_path().string() + "' detect '" + in.string() + "' -o '" + out.string() +
                 "' --shard=" + shard + " --threads 1 --format json --no-report",
             status);
}

// The input paths listed in <out>/events.json.
std::multiset<std::string> processed(const path& out) {
  std::ifstream f(out / "events.json");
  const auto root = nlohmann::json::parse(f);
  std::multiset<std::string> files;
  for (const auto& file : root.at("files")) files.insert(path(file.at("path").get<std::string>()).filename().string());
  return files;
}

TEST(Shard, ShardsCoverEveryFileOnce) {
  EARMARK_REQUIRE_SHARED();
  TempDir dir;
  const path in = dir.path() / "in";
  earmark::testing::fs::create_directories(in);
  for (const char* name : {"music.wav", "speech.wav", "typing.wav"})
    earmark::testing::fs::copy_file(shared_dir() / "audio" / name, in / name);

  std::multiset<std::string> all;
  size_t nonempty = 0;
  for (int i = 0; i < 2; ++i) {
    int status = -1;
    const path out = dir.path() / ("out" + std::to_string(i));
    const auto log = detect(in, out, std::to_string(i) + "/2", &status);
    ASSERT_EQ(status, 0) << log;
    EXPECT_NE(log.find("shard " + std::to_string(i) + "/2"), std::string::npos) << log;
    const auto mine = processed(out);
    nonempty += mine.empty() ? 0 : 1;
    all.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(nonempty, 2u);
  EXPECT_EQ(all, (std::multiset<std::string>{"music.wav", "speech.wav", "typing.wav"}));

  // Round robin over the sorted list: shard 1/2 gets the second file only.
  int status = -1;
  detect(in, dir.path() / "out1b", "1/2", &status);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(processed(dir.path() / "out1b"), (std::multiset<std::string>{"speech.wav"}));

  // More shards than files: the extra shard has nothing to do and succeeds with an empty result.
  detect(in, dir.path() / "out7", "7/8", &status);
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(processed(dir.path() / "out7").empty());
}

TEST(Shard, BadSpecIsAUsageError) {
  TempDir dir;
  for (const std::string bad : {"2/2", "0/0", "1", "a/b", "-1/2", "1/2/3"}) {
    int status = -1;
    const auto log = detect(dir.path(), dir.path() / "out", "'" + bad + "'", &status);
    EXPECT_EQ(status, 2) << bad << ": " << log;
    EXPECT_NE(log.find("expected INDEX/COUNT"), std::string::npos) << bad << ": " << log;
  }
}

}  // namespace
