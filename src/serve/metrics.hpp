// serve/metrics: counters, gauges and histograms in the Prometheus text exposition format
// (version 0.0.4), written by hand. Thread-safe; label sets are small and fixed by the code
// (routes are route patterns, never raw paths, so cardinality stays bounded).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace earmark::serve {

class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  void counter_add(const std::string& name, const Labels& labels, double v = 1);
  void gauge_set(const std::string& name, const Labels& labels, double v);
  void observe(const std::string& name, const Labels& labels, double v);  // histogram
  // HELP text and type are declared once per metric name.
  void describe(const std::string& name, const std::string& type, const std::string& help);
  void set_buckets(const std::string& name, std::vector<double> upper_bounds);
  // Called at the start of render() (e.g. to refresh gauges such as queue depth).
  void on_render(std::function<void(Metrics&)> fn);

  double counter_value(const std::string& name, const Labels& labels) const;
  std::string render();

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<unsigned long long> counts;  // per bound (not cumulative); last = +Inf
    double sum = 0;
    unsigned long long count = 0;
  };
  static std::string key(const Labels& labels);

  mutable std::mutex m_;
  std::map<std::string, std::pair<std::string, std::string>> meta_;  // name -> (type, help)
  std::map<std::string, std::map<std::string, double>> values_;      // name -> labels -> value
  std::map<std::string, std::map<std::string, Histogram>> hist_;
  std::map<std::string, std::vector<double>> buckets_;
  std::vector<std::function<void(Metrics&)>> hooks_;
};

}  // namespace earmark::serve
