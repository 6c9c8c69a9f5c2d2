// run: condition -> log-mel -> network, shared by detect and train.
#include "run/front_half.hpp"

#include <chrono>
#include <cmath>

namespace earmark::run {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

FrontHalf::FrontHalf(const Config& config, const model::Network& net, bool keep_embeddings, bool analyse)
    : keep_envelope_(analyse && config.events.refine), analyse_(analyse), spill_after_s_(config.model.spill_after_s) {
  if (spill_after_s_ > 0) envelope_.spill_after(size_t(std::ceil(spill_after_s_ * kSampleRate / kHop)));
  scorer_.emplace(net, config.frames, config.model.batch, keep_embeddings);
  if (analyse_) quality_.emplace();
  if (config.condition.any_enabled()) conditioner_.emplace(config.condition);
}

void FrontHalf::expect_seconds(double seconds) {
  if (!(seconds > 0)) return;
  seconds = std::min(seconds, 12 * 3600.0) * 1.01 + 1.0;  // estimates are rough at the end
  scorer_->reserve_seconds(seconds);
  if (keep_envelope_) envelope_.reserve_frames(size_t(seconds * kSampleRate / kHop));
}

void FrontHalf::front(std::span<const float> block, bool last, std::vector<float>& frames, Timings* t) {
  auto t0 = Clock::now();
  samples_ += block.size();
  if (quality_ && !quality_report_) {
    quality_->push(block);  // the signal as recorded, before any conditioning
    if (last) {
      quality_report_ = quality_->finish();
      // A short input is measured whole here already: the loudness normalisation takes its
      // gain from this report instead of analysing the same samples a second time.
      if (conditioner_) conditioner_->use_whole_input_analysis(*quality_report_, samples_);
    }
  }
  std::span<const float> input = block;
  if (conditioner_) {
    conditioned_.clear();
    conditioner_->process(block, conditioned_);
    if (last) conditioner_->flush(conditioned_);
    input = conditioned_;
  }
  const auto t1 = Clock::now();
  if (t) t->condition_s += std::chrono::duration<double>(t1 - t0).count();
  mel_.push(input);
  if (last) mel_.finish();
  const size_t before = frames.size();
  const size_t n = mel_.take(frames, mel_.available());
  if (analyse_) thumbnail_.push(std::span<const float>(frames).subspan(before), n);
  if (keep_envelope_) envelope_.push(std::span<const float>(frames).subspan(before), n);
  if (t) t->features_s += since(t1);
}

void FrontHalf::back(std::span<const float> frames, bool last, Timings* t) {
  const auto t0 = Clock::now();
  scorer_->push(frames, frames.size() / features::kNumMels);
  if (last) scorer_->finish(samples_);
  if (t) t->network_s += since(t0);
}

void FrontHalf::push(std::span<const float> block, bool last, Timings* t) {
  frames_.clear();
  front(block, last, frames_, t);
  back(frames_, last, t);
}

condition::QualityReport FrontHalf::quality() {
  if (!quality_report_) quality_report_ = quality_->finish();
  return *quality_report_;
}

}  // namespace earmark::run
