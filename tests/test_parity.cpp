// Parity with the upstream Python implementation on real recordings: the C++ log-mel must
// match ../shared/golden/*.mel.f32 to 1e-4 and the network's logits *.logits.f32 to 1e-3,
// with the same top-5 labels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <numeric>
#include <thread>

#include "features/logmel.hpp"
#include "model/network.hpp"
#include "test_support.hpp"

namespace {

using namespace earmark;
using earmark::testing::read_f32;
using earmark::testing::shared_dir;

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

std::vector<int> top_k(const std::vector<float>& v, int k) {
  std::vector<int> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) { return v[size_t(a)] > v[size_t(b)]; });
  idx.resize(size_t(k));
  return idx;
}

class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, MelAndLogitsMatchReference) {
  EARMARK_REQUIRE_SHARED();
  const std::string name = GetParam();
  const auto audio = earmark::testing::read_wav16(shared_dir() / "audio" / (name + ".wav"));
  ASSERT_EQ(audio.size(), 320000u);

  size_t frames = 0;
  const auto mel = features::log_mel(audio, &frames);
  ASSERT_EQ(frames, 1000u);
  const auto golden_mel = read_f32(shared_dir() / "golden" / (name + ".mel.f32"));
  EXPECT_LE(max_abs_diff(mel, golden_mel), 1e-4f);

  // Both convolution backends (model.backend), each against the reference.
  static const model::Network xnnpack((earmark::testing::models_dir() / "mn04_as_mAP_432.pt").string(), 0, 1,
                                      model::ConvBackend::xnnpack);
  static const model::Network onednn((earmark::testing::models_dir() / "mn04_as_mAP_432.pt").string(), 0, 1,
                                     model::ConvBackend::onednn);
  EXPECT_EQ(xnnpack.info().backend, "xnnpack");
  EXPECT_EQ(onednn.info().backend, "onednn");
  const auto golden_logits = read_f32(shared_dir() / "golden" / (name + ".logits.f32"));
  for (const model::Network* net : {&xnnpack, &onednn}) {
    SCOPED_TRACE(net->info().backend);
    EXPECT_DOUBLE_EQ(net->info().width, 0.4);
    EXPECT_EQ(net->info().num_classes, 527);
    EXPECT_EQ(net->info().parameters, 312);
    std::vector<float> logits(527), emb(size_t(net->info().embedding_dim));
    // Feed the golden mel so the network is checked on its own, then ours end to end.
    net->clip(golden_mel.data(), 1, 1000, logits.data(), emb.data());
    EXPECT_LE(max_abs_diff(logits, golden_logits), 1e-3f);
    EXPECT_LE(max_abs_diff(emb, read_f32(shared_dir() / "golden" / (name + ".embedding.f32"))), 1e-3f);
    net->clip(mel.data(), 1, 1000, logits.data(), nullptr);
    EXPECT_LE(max_abs_diff(logits, golden_logits), 1e-3f);
    EXPECT_EQ(top_k(logits, 5), top_k(golden_logits, 5));
  }
  // The detector's use: a batch of short chunks, column by column. The backends agree.
  const int chunk = 384, batch = 2;
  std::vector<float> chunks(size_t(128 * chunk * batch));
  for (int b = 0; b < batch; ++b)
    for (int m = 0; m < 128; ++m)
      for (int t = 0; t < chunk; ++t)
        chunks[size_t((b * 128 + m) * chunk + t)] = golden_mel[size_t(m * 1000 + b * 500 + t)];
  std::vector<float> fx, fo;
  int cx = 0, co = 0;
  xnnpack.column_features(chunks.data(), batch, chunk, fx, cx);
  onednn.column_features(chunks.data(), batch, chunk, fo, co);
  EXPECT_EQ(cx, 12);
  EXPECT_EQ(cx, co);
  EXPECT_LE(max_abs_diff(fx, fo), 1e-4f);

  // Two phases (frames.shared_passes): even columns are the columns above; odd columns are
  // those of the input shifted by half a column (16 frames), run on its own, up to the input's
  // edges and the shared layers' squeeze-excitation means (over the unshifted input).
  // The yardstick: how much a column's features already depend on where its chunk starts (the
  // same column from a chunk one column later).
  auto moved = [&](int frames_later) {
    std::vector<float> v(chunks.size());
    for (int b = 0; b < batch; ++b)
      for (int m = 0; m < 128; ++m)
        for (int t = 0; t < chunk; ++t)
          v[size_t((b * 128 + m) * chunk + t)] = golden_mel[size_t(m * 1000 + b * 500 + frames_later + t)];
    return v;
  };
  const std::vector<float> shifted = moved(16), later = moved(32);
  const size_t dim = size_t(xnnpack.info().embedding_dim);
  for (const model::Network* net : {&xnnpack, &onednn}) {
    SCOPED_TRACE(net->info().backend);
    std::vector<float> one, both, alone, next;
    int c1 = 0, c2 = 0, cs = 0, cn = 0;
    net->column_features(chunks.data(), batch, chunk, one, c1);
    net->column_features(chunks.data(), batch, chunk, both, c2, 2);
    net->column_features(shifted.data(), batch, chunk, alone, cs);
    net->column_features(later.data(), batch, chunk, next, cn);
    ASSERT_EQ(c2, 2 * c1);
    auto relative = [&](const float* x, const float* ref) {
      double d = 0, n = 0;
      for (size_t k = 0; k < dim; ++k) {
        d += (double(x[k]) - ref[k]) * (double(x[k]) - ref[k]);
        n += double(ref[k]) * ref[k];
      }
      return std::sqrt(d / n);
    };
    double worst_even = 0, worst_odd = 0, chunking = 0, odd_sum = 0, misaligned_sum = 0;
    for (int b = 0; b < batch; ++b)
      for (int c = 0; c < c1; ++c) {
        const float* even = both.data() + (size_t(b) * size_t(c2) + size_t(2 * c)) * dim;
        const float* odd = even + dim;
        const float* ref_even = one.data() + (size_t(b) * size_t(c1) + size_t(c)) * dim;
        const float* ref_odd = alone.data() + (size_t(b) * size_t(cs) + size_t(c)) * dim;
        double de = 0;
        for (size_t k = 0; k < dim; ++k) de = std::max(de, double(std::fabs(even[k] - ref_even[k])));
        worst_even = std::max(worst_even, de);
        if (c >= 2 && c < c1 - 2) {  // away from the edges
          worst_odd = std::max(worst_odd, relative(odd, ref_odd));
          odd_sum += relative(odd, ref_odd);
          misaligned_sum += relative(even, ref_odd);  // half a column off
          chunking = std::max(chunking, relative(ref_even + dim, next.data() + (size_t(b) * size_t(cn) + size_t(c)) * dim));
        }
      }
    EXPECT_LE(worst_even, 1e-4);
    EXPECT_GT(chunking, 0.0);
    EXPECT_LE(worst_odd, chunking) << "an odd column differs from the shifted input's own by more than a column "
                                            "differs between two chunkings";
    EXPECT_LT(odd_sum, 0.6 * misaligned_sum) << "odd columns are not where a shifted pass puts its columns";
    std::cout << net->info().backend << ": mean relative difference from the shifted pass " << odd_sum / misaligned_sum
              << " of that of the column half a column earlier\n";
    std::cout << net->info().backend << ": two phases, even columns within " << worst_even
              << ", odd columns within " << worst_odd << " (relative) of a shifted pass; one column from two "
              << "chunkings: " << chunking << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(GoldenClips, Parity, ::testing::Values("music", "speech", "typing"));

// Files detected at once share one network; each thread runs its own XNNPACK contexts (a
// context holds its last input's setup), so threads do not disturb each other's results.
TEST(ParityThreads, ThreadsSharingTheNetworkGetTheirOwnResults) {
  EARMARK_REQUIRE_SHARED();
  const model::Network net((earmark::testing::models_dir() / "mn04_as_mAP_432.pt").string(), 0, 1);
  std::vector<std::vector<float>> inputs;
  for (const char* name : {"music", "speech", "typing"}) inputs.push_back(read_f32(shared_dir() / "golden" / (std::string(name) + ".mel.f32")));
  std::vector<std::vector<float>> alone(inputs.size(), std::vector<float>(527));
  for (size_t i = 0; i < inputs.size(); ++i) net.clip(inputs[i].data(), 1, 1000, alone[i].data(), nullptr);
  std::vector<std::vector<float>> together(inputs.size() * 4, std::vector<float>(527));
  std::vector<std::thread> threads;
  for (size_t k = 0; k < together.size(); ++k)
    threads.emplace_back([&, k] {
      model::Network::prepare_thread();
      for (int r = 0; r < 5; ++r) net.clip(inputs[k % inputs.size()].data(), 1, 1000, together[k].data(), nullptr);
    });
  for (auto& t : threads) t.join();
  for (size_t k = 0; k < together.size(); ++k) EXPECT_LE(max_abs_diff(together[k], alone[k % inputs.size()]), 1e-5f) << k;
}

}  // namespace
