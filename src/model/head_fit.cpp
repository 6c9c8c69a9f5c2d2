// Fitting a custom-class head with LibTorch (the library's second and last torch translation
// unit; see train.hpp for what the rows are). Full-batch Adam on standardised embeddings:
// the sets are small (a few thousand rows of 384 values), so each epoch is one matrix
// product and the result does not depend on batch order.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <set>

#include "earmark/earmark.hpp"
#include "model/train.hpp"

namespace earmark::model {

namespace {

struct Params {
  torch::Tensor w1, b1, w2, b2;  // w1/b1 undefined for logistic regression
  std::vector<torch::Tensor> list() const {
    if (w1.defined()) return {w1, b1, w2, b2};
    return {w2, b2};
  }
  torch::Tensor forward(const torch::Tensor& x) const {
    if (w1.defined()) return torch::linear(torch::relu(torch::linear(x, w1, b1)), w2, b2);
    return torch::linear(x, w2, b2);
  }
  Params clone() const {
    Params p;
    if (w1.defined()) p.w1 = w1.detach().clone(), p.b1 = b1.detach().clone();
    p.w2 = w2.detach().clone();
    p.b2 = b2.detach().clone();
    return p;
  }
};

Params init_params(int dim, int hidden, int classes, uint64_t seed) {
  torch::manual_seed(seed);
  Params p;
  const int in = hidden > 0 ? hidden : dim;
  if (hidden > 0) {
    p.w1 = (torch::randn({hidden, dim}) * std::sqrt(2.0 / dim)).requires_grad_();
    p.b1 = torch::zeros({hidden}).requires_grad_();
  }
  p.w2 = (torch::randn({classes, in}) * std::sqrt(1.0 / in) * 0.1).requires_grad_();
  p.b2 = torch::full({classes}, -2.0).requires_grad_();  // start near "absent"
  return p;
}

std::vector<float> to_vector(const torch::Tensor& t) {
  const auto c = t.detach().contiguous().to(torch::kFloat);
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

// Full-batch training for `epochs` (or with early stopping on val when epochs < 0).
struct RunResult {
  Params best;
  int best_epoch = 0, epochs_run = 0;
  double train_loss = 0, val_loss = std::numeric_limits<double>::infinity();
};

RunResult run(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& pos_weight, const torch::Tensor& vx,
              const torch::Tensor& vy, int epochs, const FitOptions& opt, int dim, int classes, const Log& log,
              const char* phase) {
  Params p = init_params(dim, opt.hidden, classes, opt.seed);
  torch::optim::Adam adam(p.list(), torch::optim::AdamOptions(opt.lr).weight_decay(opt.weight_decay));
  RunResult r;
  const bool early = epochs < 0;
  const int max_epochs = early ? opt.max_epochs : epochs;
  int since_best = 0;
  for (int e = 1; e <= max_epochs; ++e) {
    adam.zero_grad();
    const auto loss = torch::binary_cross_entropy_with_logits(p.forward(x), y, {}, pos_weight);
    loss.backward();
    adam.step();
    r.epochs_run = e;
    r.train_loss = loss.item<double>();
    if (early) {
      torch::NoGradGuard ng;
      const double vl = torch::binary_cross_entropy_with_logits(p.forward(vx), vy, {}, pos_weight).item<double>();
      if (vl < r.val_loss - 1e-6) {
        r.val_loss = vl;
        r.best_epoch = e;
        r.best = p.clone();
        since_best = 0;
      } else if (++since_best >= opt.patience) {
        break;
      }
    }
    if (log && (e % 50 == 0 || e == 1))
      log(std::string(phase) + " epoch " + std::to_string(e) + ": loss " + std::to_string(r.train_loss) +
          (early ? ", held-out loss " + std::to_string(r.val_loss) + " (best at epoch " + std::to_string(r.best_epoch) + ")"
                 : std::string()));
  }
  if (!early) {
    r.best = p.clone();
    r.best_epoch = r.epochs_run;
  }
  return r;
}

}  // namespace

Head fit_head(const FrameSet& data, const std::vector<std::string>& classes, const FitOptions& opt, FitReport& report,
              const Log& log) {
  const size_t n = data.rows(), k = classes.size(), d = size_t(data.dim);
  if (n == 0 || k == 0 || d == 0) throw Error("training: no examples to learn from");
  if (data.classes != k || data.x.size() != n * d || data.y.size() != n * k) throw Error("training: inconsistent example table");
  if (opt.hidden < 0 || opt.max_epochs < 1 || opt.patience < 1 || !(opt.lr > 0) || !(opt.weight_decay >= 0) ||
      !(opt.val_fraction > 0 && opt.val_fraction < 1))
    throw Error("training: bad options (hidden >= 0, epochs >= 1, patience >= 1, lr > 0, weight decay >= 0, 0 < held-out fraction < 1)");
  c10::InferenceMode off(false);

  // Held-out split by group: per class, a share of the groups that hold its positives (at
  // least one, never all); then a share of the groups without any positive (background).
  std::mt19937_64 g(opt.seed);
  auto shuffle = [&](std::vector<int>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(g() % i)]);
  };
  std::set<int> val_groups;
  std::vector<std::set<int>> class_groups(k);
  std::set<int> all_groups, positive_groups;
  for (size_t r = 0; r < n; ++r) {
    all_groups.insert(data.group[r]);
    for (size_t c = 0; c < k; ++c)
      if (data.y[r * k + c] > 0.5f) class_groups[c].insert(data.group[r]), positive_groups.insert(data.group[r]);
  }
  for (size_t c = 0; c < k; ++c) {
    std::vector<int> gs(class_groups[c].begin(), class_groups[c].end());
    if (gs.empty()) throw Error("training: class '" + classes[c] + "' has no positive frames");
    shuffle(gs);
    size_t want = size_t(std::lround(opt.val_fraction * double(gs.size())));
    want = std::clamp<size_t>(want, 1, gs.size() > 1 ? gs.size() - 1 : 1);
    size_t have = 0;
    for (int x : gs) have += val_groups.count(x);
    for (size_t i = 0; i < gs.size() && have < want; ++i)
      if (val_groups.insert(gs[i]).second) ++have;
  }
  std::vector<int> background;
  for (int x : all_groups)
    if (!positive_groups.count(x)) background.push_back(x);
  shuffle(background);
  for (size_t i = 0; i < size_t(std::lround(opt.val_fraction * double(background.size()))); ++i) val_groups.insert(background[i]);
  // A class whose only group went to validation would have no training positives.
  for (size_t c = 0; c < k; ++c) {
    bool train_pos = false;
    for (int x : class_groups[c]) train_pos |= !val_groups.count(x);
    if (!train_pos) {
      for (int x : class_groups[c]) val_groups.erase(x);
    }
  }

  std::vector<int64_t> tr, va;
  for (size_t r = 0; r < n; ++r) (val_groups.count(data.group[r]) ? va : tr).push_back(int64_t(r));
  const auto X = torch::from_blob(const_cast<float*>(data.x.data()), {int64_t(n), int64_t(d)}, torch::kFloat).clone();
  const auto Y = torch::from_blob(const_cast<float*>(data.y.data()), {int64_t(n), int64_t(k)}, torch::kFloat).clone();
  auto standardise = [&](const torch::Tensor& rows, torch::Tensor& mean, torch::Tensor& inv_std) {
    mean = rows.mean(0);
    inv_std = 1.0 / (rows.std(0, /*unbiased=*/false) + 1e-4);
  };
  auto pos_weight_of = [&](const torch::Tensor& y) {
    const auto pos = y.sum(0);
    const auto neg = float(y.size(0)) - pos;
    return (neg / pos.clamp_min(1.0)).clamp(1.0, opt.max_pos_weight);
  };

  report = FitReport{};
  report.positives.resize(k);
  for (size_t c = 0; c < k; ++c) report.positives[c] = long(Y.select(1, int64_t(c)).sum().item<double>());
  report.val_f1.assign(k, std::numeric_limits<double>::quiet_NaN());
  report.thresholds.assign(k, -1.0);

  int epochs = opt.max_epochs;
  torch::Tensor mean, inv_std;
  if (!va.empty() && !tr.empty()) {
    const auto ti = torch::tensor(tr), vi = torch::tensor(va);
    torch::Tensor m, s;
    standardise(X.index_select(0, ti), m, s);
    const auto x = (X.index_select(0, ti) - m) * s, y = Y.index_select(0, ti);
    const auto vx = (X.index_select(0, vi) - m) * s, vy = Y.index_select(0, vi);
    const auto pw = pos_weight_of(y);
    torch::AutoGradMode grad(true);
    if (log)
      log("fitting on " + std::to_string(tr.size()) + " frames, " + std::to_string(va.size()) + " held out (" +
          std::to_string(val_groups.size()) + " of " + std::to_string(all_groups.size()) + " files/segments)");
    RunResult r = run(x, y, pw, vx, vy, -1, opt, int(d), int(k), log, "held-out run");
    epochs = std::max(1, r.best_epoch);
    report.train_rows = tr.size();
    report.val_rows = va.size();
    report.val_loss = r.val_loss;
    // Threshold per class: the best frame F1 on the held-out frames.
    torch::NoGradGuard ng;
    const auto prob = torch::sigmoid(r.best.forward(vx));
    for (size_t c = 0; c < k; ++c) {
      const auto pc = prob.select(1, int64_t(c)), yc = vy.select(1, int64_t(c)) > 0.5;
      const double npos = yc.sum().item<double>();
      if (npos == 0) continue;
      double best_f = -1, best_t = 0.5;
      for (int i = 1; i <= 19; ++i) {
        const double t = 0.05 * i;
        const auto pred = pc >= t;
        const double tp = (pred & yc).sum().item<double>(), ns = pred.sum().item<double>();
        const double f = ns + npos > 0 ? 2 * tp / (ns + npos) : 0.0;
        if (f > best_f + 1e-12) best_f = f, best_t = t;
      }
      report.val_f1[c] = best_f;
      report.thresholds[c] = best_t;
    }
  } else if (log) {
    log("too few files for a held-out split: fitting " + std::to_string(epochs) + " epochs on everything");
  }
  // Final fit on all rows for the chosen number of epochs.
  standardise(X, mean, inv_std);
  const auto x = (X - mean) * inv_std;
  torch::AutoGradMode grad(true);
  RunResult fin = run(x, Y, pos_weight_of(Y), {}, {}, epochs, opt, int(d), int(k), log, "final fit");
  report.epochs_run = fin.epochs_run;
  report.best_epoch = epochs;
  report.train_loss = fin.train_loss;

  Head h;
  h.classes = classes;
  h.dim = int(d);
  h.hidden = opt.hidden;
  h.mean = to_vector(mean);
  h.inv_std = to_vector(inv_std);
  if (opt.hidden > 0) {
    h.w1 = to_vector(fin.best.w1);
    h.b1 = to_vector(fin.best.b1);
  }
  h.w2 = to_vector(fin.best.w2);
  h.b2 = to_vector(fin.best.b2);
  return h;
}

}  // namespace earmark::model
