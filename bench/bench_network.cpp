// Times the network alone on a 10 s input (clip) and the frame scorer's chunking, to separate
// network cost from the rest of the pipeline, on each convolution backend (model.backend).   bench_network CHECKPOINT [THREADS] [REPEAT]
#include <algorithm>
#include <cstdint>
#include <chrono>
#include <iostream>
#include <vector>

#include "model/network.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_network CHECKPOINT [THREADS] [REPEAT]\n";
    return 2;
  }
  const int threads = argc > 2 ? std::stoi(argv[2]) : 1;
  const int repeat = argc > 3 ? std::stoi(argv[3]) : 20;
  for (const auto backend : {earmark::model::ConvBackend::xnnpack, earmark::model::ConvBackend::onednn}) {
  const earmark::model::Network net(argv[1], 0, threads, backend);
  std::cout << net.info().backend << ":\n";
  auto time = [&](int batch, int frames, const char* what) {
    // A log-mel-like input: values around -1 with some spread (a constant input would make
    // the network's activations degenerate).
    std::vector<float> mel(size_t(batch) * 128 * size_t(frames));
    uint32_t state = 12345;
    for (auto& x : mel) {
      state = state * 1664525u + 1013904223u;
      x = -1.0f + float(state >> 8) / float(1u << 24);
    }
    std::vector<float> logits(size_t(batch) * 527);
    net.clip(mel.data(), batch, frames, logits.data(), nullptr);
    std::vector<double> v;
    for (int i = 0; i < repeat; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      net.clip(mel.data(), batch, frames, logits.data(), nullptr);
      v.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(v.begin(), v.end());
    std::cout << "  " << what << ": batch " << batch << " x " << frames << " frames: " << v[v.size() / 2]
              << " ms (median), " << v.front() << " ms (fastest)\n";
  };
  // The detector's use: column features of 3 chunks, one phase and two (frames.shared_passes).
  auto columns = [&](int phases) {
    const int batch = 3, frames = 384;
    std::vector<float> mel(size_t(batch) * 128 * size_t(frames), -1.0f);
    uint32_t state = 777;
    for (auto& x : mel) {
      state = state * 1664525u + 1013904223u;
      x = -1.0f + float(state >> 8) / float(1u << 24);
    }
    std::vector<float> feats;
    int cols = 0;
    net.column_features(mel.data(), batch, frames, feats, cols, phases);
    std::vector<double> v;
    for (int i = 0; i < repeat; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      net.column_features(mel.data(), batch, frames, feats, cols, phases);
      v.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(v.begin(), v.end());
    std::cout << "  3 chunks of 3.84 s, column features, " << phases << " phase(s): " << v[v.size() / 2]
              << " ms (median), " << v.front() << " ms (fastest)\n";
  };
  columns(1);
  columns(2);
  time(1, 1000, "10 s clip");
  time(3, 384, "3 chunks of 3.84 s");
  time(1, 384, "1 chunk of 3.84 s");
  time(2, 384, "2 chunks of 3.84 s");
  time(4, 384, "4 chunks of 3.84 s");
  time(6, 384, "6 chunks of 3.84 s");
  time(8, 384, "8 chunks of 3.84 s");
  }
  return 0;
}
