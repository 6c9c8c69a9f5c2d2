// The only translation unit of the library that includes LibTorch headers (they cost ~15 s of
// compile time each). The network is written with ATen's functional ops on weights loaded from
// the checkpoint, with batch-norm folded into the convolutions at load time.
#include "model/network.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>
#include <c10/core/InferenceMode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "earmark/earmark.hpp"

namespace earmark::model {

namespace {

int make_divisible(double v, int divisor = 8) {
  int nv = std::max(divisor, int(v + divisor / 2.0) / divisor * divisor);
  if (nv < 0.9 * v) nv += divisor;
  return nv;
}

// MobileNetV3-Large inverted residual settings, as in the EfficientAT "mn" models:
// input channels, kernel, expanded channels, output channels, squeeze-excitation, hard-swish, stride.
struct BlockSpec {
  int in, kernel, expanded, out;
  bool se, hardswish;
  int stride;
};
constexpr BlockSpec kBlocks[] = {
    {16, 3, 16, 16, false, false, 1},    {16, 3, 64, 24, false, false, 2},   {24, 3, 72, 24, false, false, 1},
    {24, 5, 72, 40, true, false, 2},     {40, 5, 120, 40, true, false, 1},   {40, 5, 120, 40, true, false, 1},
    {40, 3, 240, 80, false, true, 2},    {80, 3, 200, 80, false, true, 1},   {80, 3, 184, 80, false, true, 1},
    {80, 3, 184, 80, false, true, 1},    {80, 3, 480, 112, true, true, 1},   {112, 3, 672, 112, true, true, 1},
    {112, 5, 672, 160, true, true, 2},   {160, 5, 960, 160, true, true, 1},  {160, 5, 960, 160, true, true, 1},
};
constexpr double kWidths[] = {0.4, 0.5, 1.0, 2.0, 3.0, 4.0, 0.1, 0.2, 0.6, 0.8, 1.2, 1.4, 1.6};
constexpr double kBatchNormEps = 1e-3;

enum class Act { none, relu, hardswish };

struct ConvBN {
  at::Tensor w, b;
  int64_t stride = 1, pad = 0, groups = 1;
  // Along time (the input's last axis) only, when they differ from stride/pad: the network's
  // tail run at twice the time rate (Network::column_features with two phases).
  int64_t time_stride = -1, time_pad = -1, time_dilation = 1;
  Act act = Act::none;
  int index = 0;  // position among the network's convolutions (its XNNPACK context)

  std::vector<int64_t> strides() const { return {stride, time_stride >= 0 ? time_stride : stride}; }
  std::vector<int64_t> pads() const { return {pad, time_pad >= 0 ? time_pad : pad}; }
  std::vector<int64_t> dilations() const { return {1, time_dilation}; }
};

// One XNNPACK context per convolution: the packed weights and the kernel's setup for its last
// input. A context runs one input at a time, so every thread that runs the network at once
// takes a set of its own from a pool (packed on first use: a few ms once per thread).
struct XnnSet {
  std::vector<c10::IValue> conv;
  std::vector<c10::IValue> fine;  // the tail's depthwise convolutions at twice the time rate
};

// XNNPACK (LibTorch's prepacked NHWC kernels, made for MobileNet-style networks): the weights
// are packed once at load and ReLU is fused into the convolution as a clamp. The ops are called
// through the dispatcher by name, as TorchScript's frozen graphs call them; a LibTorch built
// without XNNPACK has no such ops (or refuses to pack), and the network then stays on oneDNN.
c10::IValue xnn_prepack(const ConvBN& c) {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("prepacked::conv2d_clamp_prepack", "");
  std::vector<c10::IValue> stack;
  stack.emplace_back(c.w.contiguous());
  stack.emplace_back(c.b);
  stack.emplace_back(c.strides());
  stack.emplace_back(c.pads());
  stack.emplace_back(c.dilations());
  stack.emplace_back(c.groups);
  stack.emplace_back(c.act == Act::relu ? c10::IValue(c10::Scalar(0.0)) : c10::IValue());  // output_min
  stack.emplace_back(c10::IValue());                                                          // output_max
  op.callBoxed(&stack);
  return stack.at(0);
}

struct Linear {
  at::Tensor w, b;
};
struct Block {
  bool expand = false, se = false, residual = false;
  ConvBN expand_conv, depthwise, project;
  Linear fc1, fc2;
};

std::string shape_str(at::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Takes tensors out of the state_dict, checking shapes, and remembers what was used.
class Loader {
 public:
  explicit Loader(const std::map<std::string, at::Tensor>& dict) : dict_(dict) {}

  at::Tensor take(const std::string& key, std::vector<int64_t> shape) {
    auto it = dict_.find(key);
    if (it == dict_.end()) {
      missing_.push_back(key);
      return at::zeros(shape);
    }
    used_.insert(key);
    if (it->second.sizes() != at::IntArrayRef(shape)) {
      wrong_.push_back(key + " is " + shape_str(it->second.sizes()) + ", expected " + shape_str(shape));
      return at::zeros(shape);
    }
    return it->second.to(at::kFloat).contiguous();
  }

  ConvBN conv_bn(const std::string& prefix, int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups,
                 Act act) {
    ConvBN c;
    const at::Tensor w = take(prefix + ".0.weight", {out, in / groups, k, k});
    const at::Tensor gamma = take(prefix + ".1.weight", {out});
    const at::Tensor beta = take(prefix + ".1.bias", {out});
    const at::Tensor mean = take(prefix + ".1.running_mean", {out});
    const at::Tensor var = take(prefix + ".1.running_var", {out});
    take(prefix + ".1.num_batches_tracked", {});
    // Fold the inference-mode batch norm into the (bias-free) convolution.
    const at::Tensor scale = gamma / at::sqrt(var + kBatchNormEps);
    // Channels-last: oneDNN's kernels for this network run fast on NHWC only (on NCHW the
    // whole 10 s input took 47 ms instead of 6 ms).
    c.w = (w * scale.view({-1, 1, 1, 1})).contiguous(at::MemoryFormat::ChannelsLast);
    c.b = (beta - mean * scale).contiguous();
    c.stride = stride;
    c.pad = (k - 1) / 2;
    c.groups = groups;
    c.act = act;
    return c;
  }

  Linear linear(const std::string& prefix, int64_t in, int64_t out) {
    return Linear{take(prefix + ".weight", {out, in}), take(prefix + ".bias", {out})};
  }

  // Empty when everything matched; otherwise a one-line description of what did not.
  std::string problems() const {
    std::vector<std::string> unexpected;
    for (const auto& [k, v] : dict_)
      if (!used_.count(k)) unexpected.push_back(k);
    std::string r;
    auto list = [&](const char* what, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      r += (r.empty() ? "" : "; ") + std::to_string(keys.size()) + " " + what + ": ";
      for (size_t i = 0; i < keys.size() && i < 4; ++i) r += (i ? ", " : "") + keys[i];
      if (keys.size() > 4) r += ", ...";
    };
    list("missing keys", missing_);
    list("keys with the wrong shape", wrong_);
    list("unexpected keys", unexpected);
    return r;
  }
  size_t used() const { return used_.size(); }

 private:
  const std::map<std::string, at::Tensor>& dict_;
  std::set<std::string> used_;
  std::vector<std::string> missing_, wrong_;
};

// In place: every input is a fresh convolution output that nothing else holds.
at::Tensor activate(at::Tensor x, Act a) {
  switch (a) {
    case Act::relu: return at::relu_(x);
    case Act::hardswish: return at::hardswish_(x);
    case Act::none: break;
  }
  return x;
}

at::Tensor xnn_run(const ConvBN& c, const c10::IValue& context, const at::Tensor& x) {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("prepacked::conv2d_clamp_run", "");
  std::vector<c10::IValue> stack;
  stack.emplace_back(x);
  stack.emplace_back(context);
  op.callBoxed(&stack);
  return activate(stack.at(0).toTensor(), c.act == Act::relu ? Act::none : c.act);  // ReLU is fused
}

// oneDNN directly: at::conv2d sends single-threaded 1x1 convolutions to im2col + BLAS, which
// made a 10 s input take 34 ms instead of 6 ms here.
at::Tensor run(const ConvBN& c, const at::Tensor& x, const XnnSet* xnn) {
  if (xnn) return xnn_run(c, xnn->conv[size_t(c.index)], x);
  return activate(at::mkldnn_convolution(x, c.w, c.b, c.pads(), c.strides(), c.dilations(), c.groups), c.act);
}

// Squeeze-excitation: channels scaled by a function of their mean over the map. With
// `phases` = 2 the map's time columns alternate between two inputs half a column apart (even:
// the input's own columns, odd: shifted), and each phase gets the scaling of its own mean, as
// if it had been run alone.
template <typename SE>
void excite(at::Tensor& y, int phases, const SE& fc) {
  if (phases == 1) {
    y.mul_(fc(y.mean({2, 3})).unsqueeze(-1).unsqueeze(-1));
    return;
  }
  const int64_t w = y.size(3);
  for (int64_t p = 0; p < phases; ++p) {
    at::Tensor part = y.slice(3, p, w, phases);
    part.mul_(fc(part.mean({2, 3})).unsqueeze(-1).unsqueeze(-1));
  }
}

std::map<std::string, at::Tensor> read_state_dict(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open the checkpoint (does the file exist? run scripts/fetch-models)");
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw Error(path + ": the checkpoint file is empty (re-download it with scripts/fetch-models)");
  c10::IValue v;
  try {
    v = torch::jit::pickle_load(bytes);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    throw Error(path + ": not a readable PyTorch checkpoint (" + msg + ")");
  }
  if (!v.isGenericDict())
    throw Error(path + ": the checkpoint holds no state_dict (expected a dict of named tensors)");
  std::map<std::string, at::Tensor> dict;
  for (const auto& kv : v.toGenericDict()) {
    if (!kv.key().isString() || !kv.value().isTensor())
      throw Error(path + ": the checkpoint's state_dict has a non-tensor entry");
    dict.emplace(kv.key().toStringRef(), kv.value().toTensor());
  }
  return dict;
}

}  // namespace

struct Network::Impl {
  NetworkInfo info;
  ConvBN stem;
  std::vector<Block> blocks;
  ConvBN last;
  Linear hidden, out;
  // Two time phases (column_features): the blocks from `fine_from` on (the last one that halves
  // the time axis, and those after it) run their depthwise convolution as `fine_depthwise`:
  // that block without its time stride, the later ones dilated by 2 along time, so that even
  // columns are the input's own and odd columns those of the input shifted by half a column.
  size_t fine_from = 0;
  std::vector<ConvBN> fine_depthwise;

  template <typename Self, typename F>
  static void each_conv(Self& self, F&& f) {
    f(self.stem);
    for (auto& b : self.blocks) {
      if (b.expand) f(b.expand_conv);
      f(b.depthwise);
      f(b.project);
    }
    f(self.last);
  }
  bool xnnpack = false;
  mutable std::mutex xnn_mutex;
  mutable std::vector<std::unique_ptr<XnnSet>> xnn_free;  // sets not in use

  std::unique_ptr<XnnSet> pack_xnnpack() const {
    auto set = std::make_unique<XnnSet>();
    each_conv(*this, [&](const ConvBN& c) { set->conv.push_back(xnn_prepack(c)); });  // in index order
    for (const ConvBN& c : fine_depthwise) set->fine.push_back(xnn_prepack(c));
    return set;
  }
  // A set of contexts for this call, handed back when the call is done (also on an exception).
  struct XnnLease {
    const Impl* impl = nullptr;
    std::unique_ptr<XnnSet> set;
    XnnLease() = default;
    XnnLease(XnnLease&& o) noexcept : impl(o.impl), set(std::move(o.set)) {}
    XnnLease& operator=(XnnLease&&) = delete;
    ~XnnLease() {
      if (!impl || !set) return;
      std::lock_guard lock(impl->xnn_mutex);
      impl->xnn_free.push_back(std::move(set));
    }
  };
  XnnLease lease() const {
    XnnLease l;
    if (!xnnpack) return l;
    l.impl = this;
    {
      std::lock_guard lock(xnn_mutex);
      if (!xnn_free.empty()) {
        l.set = std::move(xnn_free.back());
        xnn_free.pop_back();
      }
    }
    if (!l.set) l.set = pack_xnnpack();
    return l;
  }

  // Builds the network of width `w` from the dict; returns "" or what did not match.
  std::string build(const std::map<std::string, at::Tensor>& dict, double w) {
    Loader L(dict);
    auto ad = [w](int c) { return make_divisible(c * w); };
    blocks.clear();
    stem = L.conv_bn("features.0", 1, ad(16), 3, 2, 1, Act::hardswish);
    int idx = 1;
    for (const auto& s : kBlocks) {
      const std::string p = "features." + std::to_string(idx++) + ".block.";
      const Act act = s.hardswish ? Act::hardswish : Act::relu;
      Block b;
      const int in = ad(s.in), ex = ad(s.expanded), out_ch = ad(s.out);
      int layer = 0;
      b.expand = ex != in;
      if (b.expand) b.expand_conv = L.conv_bn(p + std::to_string(layer++), in, ex, 1, 1, 1, act);
      b.depthwise = L.conv_bn(p + std::to_string(layer++), ex, ex, s.kernel, s.stride, ex, act);
      b.se = s.se;
      if (b.se) {
        const std::string q = p + std::to_string(layer++) + ".conc_se_layers.0.";
        const int sq = make_divisible(ex / 4);
        b.fc1 = L.linear(q + "fc1", ex, sq);
        b.fc2 = L.linear(q + "fc2", sq, ex);
      }
      b.project = L.conv_bn(p + std::to_string(layer++), ex, out_ch, 1, 1, 1, Act::none);
      b.residual = s.stride == 1 && in == out_ch;
      blocks.push_back(std::move(b));
    }
    fine_from = 0;
    for (size_t i = 0; i < std::size(kBlocks); ++i)
      if (kBlocks[i].stride == 2) fine_from = i;
    fine_depthwise.clear();
    for (size_t i = fine_from; i < blocks.size(); ++i) {
      ConvBN c = blocks[i].depthwise;
      if (i == fine_from) {
        c.time_stride = 1;  // keep every stride-16 column: both phases
      } else {
        c.time_dilation = 2;  // neighbours of the same phase
        c.time_pad = 2 * c.pad;
      }
      fine_depthwise.push_back(c);
    }
    const int last_in = ad(kBlocks[std::size(kBlocks) - 1].out);
    last = L.conv_bn("features." + std::to_string(idx), last_in, 6 * last_in, 1, 1, 1, Act::hardswish);
    const int hidden_dim = ad(1280);
    const auto it = dict.find("classifier.5.bias");
    const int classes = it != dict.end() && it->second.dim() == 1 ? int(it->second.size(0)) : 527;
    hidden = L.linear("classifier.2", 6 * last_in, hidden_dim);
    out = L.linear("classifier.5", hidden_dim, classes);
    info = NetworkInfo{w, classes, 6 * last_in, hidden_dim, int(L.used()), ""};
    int index = 0;
    each_conv(*this, [&](ConvBN& c) { c.index = index++; });
    return L.problems();
  }

  // phases 2: see fine_from.
  at::Tensor features(at::Tensor x, int phases = 1) const {
    const XnnLease l = lease();
    const XnnSet* xnn = l.set.get();
    // With one input channel (and for depthwise weights) NCHW and NHWC strides coincide and
    // ATen picks NCHW; the stem's output has 8+ channels, so the layout sticks from there on.
    x = run(stem, x, xnn).contiguous(at::MemoryFormat::ChannelsLast);
    for (size_t i = 0; i < blocks.size(); ++i) {
      const auto& b = blocks[i];
      const bool fine = phases == 2 && i >= fine_from;
      at::Tensor y = b.expand ? run(b.expand_conv, x, xnn) : x;
      if (fine) {
        const size_t k = i - fine_from;
        y = xnn ? xnn_run(fine_depthwise[k], xnn->fine[k], y) : run(fine_depthwise[k], y, nullptr);
      } else {
        y = run(b.depthwise, y, xnn);
      }
      if (b.se)
        excite(y, fine ? 2 : 1, [&](const at::Tensor& s) {
          return at::sigmoid(at::linear(at::relu(at::linear(s, b.fc1.w, b.fc1.b)), b.fc2.w, b.fc2.b));
        });
      y = run(b.project, y, xnn);
      x = b.residual ? y.add_(x) : y;
    }
    return run(last, x, xnn);
  }

  at::Tensor classify(const at::Tensor& emb) const {
    return at::linear(at::hardswish(at::linear(emb, hidden.w, hidden.b)), out.w, out.b);
  }
};

Network::Network(const std::string& checkpoint, double width, int threads, ConvBackend backend)
    : impl_(std::make_unique<Impl>()) {
  const auto dict = read_state_dict(checkpoint);
  std::string first_problem;
  bool ok = false;
  if (width > 0) {
    first_problem = impl_->build(dict, width);
    ok = first_problem.empty();
  } else {
    for (double w : kWidths) {
      const std::string p = impl_->build(dict, w);
      if (p.empty()) {
        ok = true;
        break;
      }
      if (first_problem.empty()) first_problem = p;
    }
  }
  if (!ok) {
    throw Error(checkpoint + ": not an EfficientAT MobileNetV3 ('mn', MLP head) checkpoint" +
                (width > 0 ? " of width " + std::to_string(width) : std::string(" of any known width")) + ": " +
                first_problem);
  }
  impl_->info.backend = "onednn";
  if (backend != ConvBackend::onednn) {
    try {
      auto set = impl_->pack_xnnpack();  // also checks that this LibTorch can
      impl_->xnn_free.push_back(std::move(set));
      impl_->xnnpack = true;
      impl_->info.backend = "xnnpack";
    } catch (const std::exception& e) {
      if (backend == ConvBackend::xnnpack)
        throw Error(std::string("this LibTorch cannot run the network on XNNPACK (") + e.what() +
                    "); use the oneDNN kernels instead");
    }
  }
  if (threads <= 0) threads = int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  at::set_num_threads(threads);
  // LibTorch's BLAS (Debian: OpenBLAS, pthreads build) keeps its own pool of nproc threads, which
  // at::set_num_threads does not reach; they spin in sched_yield between the network's small
  // matrix products. Measured at --threads 1 on 200 clips: the spare BLAS thread used about a
  // fifth of all CPU time. Its pool follows the network's threads (found at run time: a
  // LibTorch on another BLAS has no such function).
  using SetThreads = void (*)(int);
  if (auto* set_blas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set_blas(threads);
  // Silence padding and quiet recordings drive activations into subnormal floats, which the
  // CPU handles tens of times slower; flushing them to zero changes no score measurably.
  at::globalContext().setFlushDenormal(true);
}

Network::~Network() = default;
Network::Network(Network&&) noexcept = default;
Network& Network::operator=(Network&&) noexcept = default;

const NetworkInfo& Network::info() const { return impl_->info; }

void Network::prepare_thread() { at::globalContext().setFlushDenormal(true); }

int Network::columns_for(int frames) {
  int t = frames;
  for (int i = 0; i < 5; ++i) t = (t - 1) / 2 + 1;  // five stride-2 convolutions with "same" padding
  return t;
}

void Network::clip(const float* mel, int batch, int frames, float* logits, float* embedding) const {
  c10::InferenceMode guard;
  const at::Tensor x = at::from_blob(const_cast<float*>(mel), {batch, 1, 128, frames}, at::kFloat);
  const at::Tensor emb = impl_->features(x).mean({2, 3});
  if (embedding) std::memcpy(embedding, emb.contiguous().data_ptr<float>(), sizeof(float) * emb.numel());
  if (logits) {
    const at::Tensor l = impl_->classify(emb).contiguous();
    std::memcpy(logits, l.data_ptr<float>(), sizeof(float) * l.numel());
  }
}

void Network::column_features(const float* mel, int batch, int frames, std::vector<float>& features,
                              int& columns, int phases) const {
  if (phases != 1 && phases != 2) throw Error("column_features: phases must be 1 or 2");
  c10::InferenceMode guard;
  const at::Tensor x = at::from_blob(const_cast<float*>(mel), {batch, 1, 128, frames}, at::kFloat);
  const at::Tensor f = impl_->features(x, phases).mean(2).transpose(1, 2).contiguous();  // batch, columns, channels
  columns = int(f.size(1));
  features.assign(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
}

void Network::classify(const float* features, int n, float* logits) const {
  c10::InferenceMode guard;
  const at::Tensor f =
      at::from_blob(const_cast<float*>(features), {n, int64_t(impl_->info.embedding_dim)}, at::kFloat);
  const at::Tensor l = impl_->classify(f).contiguous();
  std::memcpy(logits, l.data_ptr<float>(), sizeof(float) * size_t(l.numel()));
}

const char* torch_version() { return TORCH_VERSION; }

}  // namespace earmark::model
