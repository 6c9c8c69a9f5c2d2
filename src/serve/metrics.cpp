#include "serve/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace earmark::serve {

namespace {

std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const std::vector<double> kDefaultBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

}  // namespace

std::string Metrics::key(const Labels& labels) {
  std::string k;
  for (const auto& [n, v] : labels) {
    if (!k.empty()) k += ",";
    k += n + "=\"" + escape(v) + "\"";
  }
  return k;
}

void Metrics::describe(const std::string& name, const std::string& type, const std::string& help) {
  std::lock_guard lock(m_);
  meta_[name] = {type, help};
}

void Metrics::set_buckets(const std::string& name, std::vector<double> upper_bounds) {
  std::lock_guard lock(m_);
  buckets_[name] = std::move(upper_bounds);
}

void Metrics::on_render(std::function<void(Metrics&)> fn) {
  std::lock_guard lock(m_);
  hooks_.push_back(std::move(fn));
}

void Metrics::counter_add(const std::string& name, const Labels& labels, double v) {
  std::lock_guard lock(m_);
  values_[name][key(labels)] += v;
}

void Metrics::gauge_set(const std::string& name, const Labels& labels, double v) {
  std::lock_guard lock(m_);
  values_[name][key(labels)] = v;
}

double Metrics::counter_value(const std::string& name, const Labels& labels) const {
  std::lock_guard lock(m_);
  auto it = values_.find(name);
  if (it == values_.end()) return 0;
  auto jt = it->second.find(key(labels));
  return jt == it->second.end() ? 0 : jt->second;
}

void Metrics::observe(const std::string& name, const Labels& labels, double v) {
  std::lock_guard lock(m_);
  auto& h = hist_[name][key(labels)];
  if (h.bounds.empty()) {
    auto b = buckets_.find(name);
    h.bounds = b != buckets_.end() ? b->second : kDefaultBuckets;
    h.counts.assign(h.bounds.size() + 1, 0);
  }
  size_t i = 0;
  while (i < h.bounds.size() && v > h.bounds[i]) ++i;
  ++h.counts[i];
  h.sum += v;
  ++h.count;
}

std::string Metrics::render() {
  std::vector<std::function<void(Metrics&)>> hooks;
  {
    std::lock_guard lock(m_);
    hooks = hooks_;
  }
  for (auto& h : hooks) h(*this);
  std::lock_guard lock(m_);
  std::ostringstream os;
  auto header = [&](const std::string& name, const char* fallback_type) {
    auto it = meta_.find(name);
    if (it != meta_.end()) {
      os << "# HELP " << name << " " << it->second.second << "\n";
      os << "# TYPE " << name << " " << it->second.first << "\n";
    } else {
      os << "# TYPE " << name << " " << fallback_type << "\n";
    }
  };
  for (const auto& [name, series] : values_) {
    header(name, "untyped");
    for (const auto& [k, v] : series) os << name << (k.empty() ? "" : "{" + k + "}") << " " << number(v) << "\n";
  }
  for (const auto& [name, series] : hist_) {
    header(name, "histogram");
    for (const auto& [k, h] : series) {
      const std::string sep = k.empty() ? "" : k + ",";
      unsigned long long cum = 0;
      for (size_t i = 0; i < h.bounds.size(); ++i) {
        cum += h.counts[i];
        os << name << "_bucket{" << sep << "le=\"" << number(h.bounds[i]) << "\"} " << cum << "\n";
      }
      cum += h.counts.back();
      os << name << "_bucket{" << sep << "le=\"+Inf\"} " << cum << "\n";
      os << name << "_sum" << (k.empty() ? "" : "{" + k + "}") << " " << number(h.sum) << "\n";
      os << name << "_count" << (k.empty() ? "" : "{" + k + "}") << " " << h.count << "\n";
    }
  }
  return os.str();
}

}  // namespace earmark::serve
