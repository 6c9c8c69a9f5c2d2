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
};

class Network {
 public:
  // Loads `checkpoint` (a torch.save'd state_dict of an EfficientAT "mn" model with the MLP
  // head). width <= 0: inferred from the tensor shapes. Every key of the file must be used
  // and every tensor of the network must be present with the right shape; otherwise
  // earmark::Error names the missing/unexpected keys. threads <= 0: hardware threads (max 8).
  Network(const std::string& checkpoint, double width = 0, int threads = 0);
  ~Network();
  Network(Network&&) noexcept;
  Network& operator=(Network&&) noexcept;

  const NetworkInfo& info() const;

  // Clip-level output for `batch` inputs of `frames` mel frames each (each input 128 x frames,
  // mel-major, as the front end writes it, inputs back to back). Writes batch x num_classes
  // logits and batch x embedding_dim pooled embeddings (either pointer may be null).
  void clip(const float* mel, int batch, int frames, float* logits, float* embedding) const;

  // Frame-level output: runs the feature extractor on each input and classifies every time
  // column of the final feature map (averaged over frequency, then over `pool` neighbouring
  // columns). Column c of an input is centred on its mel frame 32*c. Returns, per input,
  // columns x num_classes logits (concatenated over the batch); `columns` receives the
  // number of columns per input; embeddings (columns x embedding_dim, pooled) if non-null.
  void columns(const float* mel, int batch, int frames, int pool, std::vector<float>& logits, int& columns,
               std::vector<float>* embeddings = nullptr) const;

  // Number of output columns for an input of `frames` mel frames.
  static int columns_for(int frames);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace earmark::model
