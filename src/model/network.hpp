// model: the EfficientAT MobileNetV3 ("mn") AudioSet tagger, defined in our own C++ on top of
// LibTorch and loaded from the upstream checkpoint file as published (a zip-format
// state_dict). Torch stays inside network.cpp: this header is plain C++.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace earmark::model {

struct NetworkInfo {
  double width = 0;       // width multiplier (0.4 for mn04)
  int num_classes = 0;    // 527 for AudioSet
  int embedding_dim = 0;  // channels of the last feature map (384 for mn04)
  int hidden_dim = 0;     // classifier hidden layer (512 for mn04)
  int parameters = 0;     // number of loaded tensors
  std::string backend;    // the convolutions' kernels: "xnnpack" or "onednn"
};

// Which of LibTorch's CPU kernels run the convolutions. Both give the same outputs (the parity
// tests check each); XNNPACK's prepacked NHWC kernels are the faster here, oneDNN is the fallback
// for a LibTorch built without XNNPACK.
enum class ConvBackend { automatic, xnnpack, onednn };

class Network {
 public:
  // Loads `checkpoint` (a torch.save'd state_dict of an EfficientAT "mn" model with the MLP
  // head). width <= 0: inferred from the tensor shapes. Every key of the file must be used
  // and every tensor of the network must be present with the right shape; otherwise
  // earmark::Error names the missing/unexpected keys. threads <= 0: hardware threads (max 8).
  // backend: automatic is XNNPACK where this LibTorch has it, else oneDNN; naming xnnpack where
  // it is missing throws earmark::Error.
  Network(const std::string& checkpoint, double width = 0, int threads = 0,
          ConvBackend backend = ConvBackend::automatic);
  ~Network();
  Network(Network&&) noexcept;
  Network& operator=(Network&&) noexcept;

  const NetworkInfo& info() const;

  // Clip-level output for `batch` inputs of `frames` mel frames each (each input 128 x frames,
  // mel-major, as the front end writes it, inputs back to back). Writes batch x num_classes
  // logits and batch x embedding_dim pooled embeddings (either pointer may be null).
  void clip(const float* mel, int batch, int frames, float* logits, float* embedding) const;

  // Frame-level use: the feature extractor's last map, averaged over frequency, one vector per
  // time column; column c of an input is centred on its mel frame 32*c. (The frame scorer pools
  // and classifies these.)
  // Per input, columns x embedding_dim (frequency-averaged
  // last feature map), concatenated over the batch.
  // phases = 2: twice the columns, column 2c + 1 centred on mel frame 32*c + 16: the odd columns
  // are those of the input shifted by half a column (a second pass), but the layers before the
  // last stride along time run once for both. Even columns are the one-phase columns; odd
  // columns differ from a shifted pass's only through the input's edges and the squeeze-
  // excitation means of those shared layers (over the input instead of the shifted input).
  void column_features(const float* mel, int batch, int frames, std::vector<float>& features, int& columns,
                       int phases = 1) const;
  // The network's classifier on `n` feature vectors of embedding_dim: n x num_classes logits.
  void classify(const float* features, int n, float* logits) const;

  // Number of output columns for an input of `frames` mel frames.
  static int columns_for(int frames);
  // Call once on any other thread that runs the network concurrently (each such call then
  // runs on its caller's thread): sets the flush-to-zero mode the constructor set on its own.
  static void prepare_thread();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Version of the LibTorch the library was built with (e.g. "1.13.1"), for reports.
const char* torch_version();

}  // namespace earmark::model
