// report: pictures of one file's detections, drawn with Cairo and encoded as PNG in memory.
#include "report/pictures.hpp"

#include <cairo.h>
#include <png.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>

#include "report/text.hpp"

namespace earmark::report {

namespace {

// Layout shared by both pictures so that their time axes line up when shown one above the other.
constexpr double kLabelW = 200;   // class names
constexpr double kRightW = 90;    // heat-map colour bar (kept in the timeline too, for alignment)
constexpr double kTitleH = 26;
constexpr double kAxisH = 30;
constexpr double kLaneH = 18;
constexpr double kSpecH = 160;
constexpr double kHeatRowH = 20;
constexpr double kFontSize = 12;

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
using Surface = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using Context = std::unique_ptr<cairo_t, ContextDeleter>;

// Viridis sampled at t = 0, 0.1, ..., 1; linear interpolation between the samples keeps the
// ramp's steadily rising lightness, which is what makes it readable in grey and by
// colour-blind readers.
constexpr unsigned char kRamp[11][3] = {{68, 1, 84},    {72, 36, 117},  {65, 68, 135},  {53, 95, 141},
                                        {42, 120, 142}, {33, 145, 140}, {34, 168, 132}, {68, 191, 112},
                                        {122, 209, 81}, {189, 223, 38}, {253, 231, 37}};

// Class colours: distinct hues of similar weight, readable on white.
constexpr unsigned char kPalette[12][3] = {{31, 119, 180}, {214, 39, 40},  {44, 160, 44},  {255, 127, 14},
                                           {148, 103, 189}, {23, 190, 207}, {140, 86, 75},  {227, 119, 194},
                                           {127, 127, 127}, {188, 189, 34}, {0, 90, 50},    {120, 0, 60}};

bool scores_usable(const FrameScores& s) {
  return s.frames > 0 && !s.labels.empty() && s.hop_s > 0 && std::isfinite(s.hop_s) &&
         s.values.size() >= size_t(s.frames) * s.labels.size();
}

bool spectrogram_usable(const Spectrogram& sp) {
  // Cairo image surfaces are limited to 32767 pixels a side.
  return sp.bins > 0 && sp.columns > 0 && sp.bins <= 32767 && sp.columns <= 32767 && sp.seconds_per_column > 0 &&
         std::isfinite(sp.seconds_per_column) && sp.values.size() >= size_t(sp.bins) * size_t(sp.columns);
}

// The time span drawn: the longest of what the file says, the scores and spectrogram cover and
// the last event (an old JSON may lack the duration).
double time_span(const FileResult& r) {
  double len = std::isfinite(r.info.duration_s) ? r.info.duration_s : 0.0;
  if (scores_usable(r.scores)) len = std::max(len, r.scores.frames * r.scores.hop_s);
  if (spectrogram_usable(r.spectrogram)) len = std::max(len, r.spectrogram.columns * r.spectrogram.seconds_per_column);
  for (const auto& e : r.events)
    if (std::isfinite(e.offset)) len = std::max(len, e.offset);
  return len;
}

void set_rgb(cairo_t* cr, const unsigned char* c, double alpha = 1.0) {
  cairo_set_source_rgba(cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0, alpha);
}

void font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& s) {
  cairo_text_extents_t ext;
  cairo_text_extents(cr, s.c_str(), &ext);
  return ext.x_advance;
}

// Shortens (at character boundaries) with an ellipsis until the text fits max_w.
std::string fit(cairo_t* cr, const std::string& text, double max_w) {
  std::string s = valid_utf8(text);
  if (text_width(cr, s) <= max_w) return s;
  while (!s.empty()) {
    s.pop_back();
    while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
    if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.pop_back();  // a lead byte left alone
    if (text_width(cr, s + "\xE2\x80\xA6") <= max_w) return s + "\xE2\x80\xA6";
  }
  return s;
}

void text_at(cairo_t* cr, double x, double y, const std::string& s, double align = 0.0) {
  const std::string v = valid_utf8(s);
  cairo_move_to(cr, x - align * text_width(cr, v), y);
  cairo_show_text(cr, v.c_str());
}

// A tick step giving at most about one label per 90 px.
double tick_step(double span, double plot_w) {
  static const double steps[] = {0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 18000, 36000};
  const double max_ticks = std::max(plot_w / 90.0, 1.0);
  for (double s : steps)
    if (span / s <= max_ticks) return s;
  return std::ceil(span / max_ticks / 36000.0) * 36000.0;
}

std::string seconds_label(double t, double step) {
  if (step < 1) return fmt::format("{:.1f}", t);
  return fmt::format("{:.0f}", t);
}

// Time axis along y (the top of the axis band) for [0, span] mapped onto [x0, x0 + w].
void draw_axis(cairo_t* cr, double x0, double w, double y, double span) {
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_set_line_width(cr, 1);
  cairo_move_to(cr, x0, y + 0.5);
  cairo_line_to(cr, x0 + w, y + 0.5);
  cairo_stroke(cr);
  font(cr, 11);
  const double step = tick_step(span, w);
  for (int k = 0;; ++k) {
    const double t = k * step;
    if (t > span + 1e-9) break;
    const double x = std::round(x0 + t / span * w) + 0.5;
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x, y + 5);
    cairo_stroke(cr);
    text_at(cr, x, y + 17, seconds_label(t, step), 0.5);
  }
  text_at(cr, x0 - 8, y + 17, "time (s)", 1.0);
}

// PNG encoding with libpng at zlib's fastest level: Cairo's own writer uses the default level,
// which made the pictures the largest cost of a run (flat-coloured drawings compress nearly as
// well at level 1). RGB24 surface -> 8-bit RGB PNG, as Cairo writes it.
struct PngState {
  std::string* out;
  std::vector<unsigned char> row;
};

void write_png(cairo_surface_t* surface, Picture& out) {
  cairo_surface_flush(surface);
  const int w = cairo_image_surface_get_width(surface), h = cairo_image_surface_get_height(surface);
  const int stride = cairo_image_surface_get_stride(surface);
  const unsigned char* data = cairo_image_surface_get_data(surface);
  if (!data || w <= 0 || h <= 0 || cairo_image_surface_get_format(surface) != CAIRO_FORMAT_RGB24) return;
  std::string png;
  PngState state{&png, std::vector<unsigned char>(size_t(w) * 3)};
  png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!p) return;
  png_infop info = png_create_info_struct(p);
  if (!info || setjmp(png_jmpbuf(p))) {  // libpng reports its errors by longjmp to here
    png_destroy_write_struct(&p, info ? &info : nullptr);
    return;
  }
  png_set_write_fn(
      p, &state,
      [](png_structp pp, png_bytep bytes, png_size_t n) {
        static_cast<PngState*>(png_get_io_ptr(pp))->out->append(reinterpret_cast<const char*>(bytes), n);
      },
      nullptr);
  png_set_IHDR(p, info, png_uint_32(w), png_uint_32(h), 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(p, 1);
  png_set_filter(p, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
  png_write_info(p, info);
  for (int y = 0; y < h; ++y) {
    const auto* px = reinterpret_cast<const uint32_t*>(data + size_t(y) * size_t(stride));
    unsigned char* o = state.row.data();
    for (int x = 0; x < w; ++x, o += 3) {  // native-endian 0x00RRGGBB
      o[0] = static_cast<unsigned char>(px[x] >> 16);
      o[1] = static_cast<unsigned char>(px[x] >> 8);
      o[2] = static_cast<unsigned char>(px[x]);
    }
    png_write_row(p, state.row.data());
  }
  png_write_end(p, nullptr);
  png_destroy_write_struct(&p, &info);
  out.png = std::move(png);
}

Surface new_surface(int w, int h) {
  return Surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h));
}

void put_pixel(unsigned char* row, int x, const std::array<unsigned char, 3>& c) {
  // CAIRO_FORMAT_RGB24 is a native-endian 32-bit 0x00RRGGBB.
  const uint32_t v = uint32_t(c[0]) << 16 | uint32_t(c[1]) << 8 | uint32_t(c[2]);
  reinterpret_cast<uint32_t*>(row)[x] = v;
}

void title(cairo_t* cr, const std::string& s, double width) {
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  font(cr, 13, true);
  text_at(cr, 8, 18, fit(cr, s, width - 16));
}

void draw_spectrogram(cairo_t* cr, const Spectrogram& sp, double x0, double y0, double w, double h, double span) {
  // Colour range: 1st to 99.5th percentile of the values, so that a few extreme columns (a
  // click, digital silence) do not wash out the rest.
  std::vector<float> finite;
  finite.reserve(sp.values.size());
  for (float v : sp.values)
    if (std::isfinite(v)) finite.push_back(v);
  double lo = 0, hi = 1;
  if (!finite.empty()) {
    auto pct = [&](double p) {
      const size_t k = std::min(finite.size() - 1, size_t(p * double(finite.size() - 1)));
      std::nth_element(finite.begin(), finite.begin() + long(k), finite.end());
      return double(finite[k]);
    };
    lo = pct(0.01);
    hi = pct(0.995);
  }
  if (!(hi - lo > 1e-6)) hi = lo + 1;

  Surface img = new_surface(sp.columns, sp.bins);
  unsigned char* data = cairo_image_surface_get_data(img.get());
  const int stride = cairo_image_surface_get_stride(img.get());
  for (int b = 0; b < sp.bins; ++b) {
    unsigned char* row = data + size_t(sp.bins - 1 - b) * size_t(stride);  // low bins at the bottom
    for (int c = 0; c < sp.columns; ++c) {
      const float v = sp.values[size_t(b) * size_t(sp.columns) + size_t(c)];
      put_pixel(row, c, colour_ramp(std::isfinite(v) ? (v - lo) / (hi - lo) : 0.0));
    }
  }
  cairo_surface_mark_dirty(img.get());

  const double covered = std::min(sp.columns * sp.seconds_per_column / span, 1.0) * w;
  cairo_save(cr);
  cairo_rectangle(cr, x0, y0, covered, h);
  cairo_clip(cr);
  cairo_translate(cr, x0, y0);
  cairo_scale(cr, covered / sp.columns, h / sp.bins);
  cairo_set_source_surface(cr, img.get(), 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
  cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
  cairo_paint(cr);
  cairo_restore(cr);
}

struct Lane {
  std::string label;
  double first = 0;
  std::vector<const Event*> events;
};

}  // namespace

void PictureConfig::validate() const {
  if (width < 400 || width > 8000) throw Error("pictures.width: must be 400 to 8000 pixels");
  if (max_lanes < 1 || max_lanes > 500) throw Error("pictures.max_lanes: must be 1 to 500");
  if (top_classes < 1 || top_classes > 100) throw Error("pictures.top_classes: must be 1 to 100");
}

std::array<unsigned char, 3> colour_ramp(double t) {
  if (!(t > 0)) t = 0;  // also NaN
  if (t > 1) t = 1;
  const double pos = t * 10.0;
  const int i = std::min(int(pos), 9);
  const double f = pos - i;
  std::array<unsigned char, 3> c{};
  for (int k = 0; k < 3; ++k)
    c[size_t(k)] = static_cast<unsigned char>(std::lround(kRamp[i][k] + f * (kRamp[i + 1][k] - kRamp[i][k])));
  return c;
}

std::string data_uri(const Picture& picture) { return "data:image/png;base64," + base64(picture.png); }

Picture timeline_picture(const FileResult& r, const PictureConfig& config) {
  config.validate();
  const double span_raw = time_span(r);
  const bool has_time = span_raw > 0;
  const double span = has_time ? span_raw : 1.0;

  // Lanes: one per class, in order of first appearance.
  std::vector<Lane> lanes;
  std::map<std::string, size_t> lane_of;
  std::vector<const Event*> events;
  for (const auto& e : r.events)
    if (std::isfinite(e.onset) && std::isfinite(e.offset)) events.push_back(&e);
  std::stable_sort(events.begin(), events.end(), [](const Event* a, const Event* b) { return a->onset < b->onset; });
  for (const Event* e : events) {
    auto [it, fresh] = lane_of.emplace(e->label, lanes.size());
    if (fresh) lanes.push_back({e->label, e->onset, {}});
    lanes[it->second].events.push_back(e);
  }
  const size_t shown = std::min(lanes.size(), size_t(config.max_lanes));
  const bool overflow = lanes.size() > shown;
  const size_t lane_rows = std::max<size_t>(shown + (overflow ? 1 : 0), 1);

  const bool has_spec = spectrogram_usable(r.spectrogram);
  const double spec_h = has_spec ? kSpecH : 40;
  const double W = config.width;
  const double plot_w = W - kLabelW - kRightW;
  const double y_spec = kTitleH;
  const double y_lanes = y_spec + spec_h + 8;
  const double y_axis = y_lanes + double(lane_rows) * kLaneH + 4;
  const int H = int(std::ceil(y_axis + kAxisH));

  Picture pic;
  pic.width = int(W);
  pic.height = H;
  Surface surface = new_surface(pic.width, pic.height);
  Context ctx(cairo_create(surface.get()));
  cairo_t* cr = ctx.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);

  std::string name = std::filesystem::path(r.path).filename().string();
  if (name.empty()) name = r.path;
  title(cr, fmt::format("{} \xE2\x80\x94 {:.1f} s, {} event(s) in {} class(es)", name, span_raw, events.size(), lanes.size()),
        W);

  // Spectrogram band.
  font(cr, kFontSize);
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  if (has_spec && has_time) {
    draw_spectrogram(cr, r.spectrogram, kLabelW, y_spec, plot_w, spec_h, span);
    text_at(cr, kLabelW - 8, y_spec + 14, "log-mel spectrogram", 1.0);
    font(cr, 10);
    text_at(cr, kLabelW - 8, y_spec + 30, "high frequencies \xE2\x86\x91", 1.0);
    text_at(cr, kLabelW - 8, y_spec + spec_h - 4, "low frequencies \xE2\x86\x93", 1.0);
  } else {
    cairo_set_source_rgb(cr, 0.95, 0.95, 0.95);
    cairo_rectangle(cr, kLabelW, y_spec, plot_w, spec_h);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    const std::string note = !r.ok()          ? "the file could not be processed"
                             : !has_time      ? "no audio"
                                              : "no spectrogram stored for this file";
    text_at(cr, kLabelW + plot_w / 2, y_spec + spec_h / 2 + 4, note, 0.5);
  }

  // Event lanes.
  for (size_t i = 0; i < lane_rows; ++i) {
    const double y = y_lanes + double(i) * kLaneH;
    if (i % 2 == 0) {
      cairo_set_source_rgb(cr, 0.96, 0.96, 0.97);
      cairo_rectangle(cr, kLabelW, y, plot_w, kLaneH);
      cairo_fill(cr);
    }
  }
  font(cr, kFontSize);
  if (lanes.empty()) {
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    text_at(cr, kLabelW + plot_w / 2, y_lanes + 13, r.ok() ? "no events detected" : "no events (failed file)", 0.5);
  }
  for (size_t i = 0; i < shown; ++i) {
    const double y = y_lanes + double(i) * kLaneH;
    const unsigned char* colour = kPalette[i % 12];
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, kLabelW - 8, y + 13, fit(cr, lanes[i].label, kLabelW - 16), 1.0);
    for (const Event* e : lanes[i].events) {
      const double x0 = kLabelW + std::clamp(e->onset / span, 0.0, 1.0) * plot_w;
      const double x1 = kLabelW + std::clamp(e->offset / span, 0.0, 1.0) * plot_w;
      const double conf = std::isfinite(e->confidence) ? std::clamp(double(e->confidence), 0.0, 1.0) : 1.0;
      set_rgb(cr, colour, 0.35 + 0.65 * conf);
      cairo_rectangle(cr, x0, y + 2, std::max(x1 - x0, 1.5), kLaneH - 4);
      cairo_fill(cr);
    }
  }
  if (overflow) {
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    const double y = y_lanes + double(shown) * kLaneH;
    text_at(cr, kLabelW - 8, y + 13, fmt::format("+{} more classes", lanes.size() - shown), 1.0);
    text_at(cr, kLabelW + 6, y + 13, "see the events table", 0.0);
  }

  draw_axis(cr, kLabelW, plot_w, y_axis, span);

  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) return {};
  write_png(surface.get(), pic);
  return pic;
}

Picture score_heatmap(const FileResult& r, const PictureConfig& config) {
  config.validate();
  const FrameScores& s = r.scores;
  if (!r.ok() || !scores_usable(s)) return {};
  const double span = std::max(time_span(r), 1e-3);

  // Top classes by peak score (ties: model order).
  std::vector<float> peak;
  const std::vector<size_t> order = top_classes_by_peak(s, size_t(config.top_classes), &peak);
  const int rows = int(order.size());

  const double W = config.width;
  const double plot_w = W - kLabelW - kRightW;
  const int px_w = std::max(int(plot_w), 1);
  const double y_map = kTitleH;
  const double map_h = rows * kHeatRowH;
  const double y_axis = y_map + map_h + 4;
  Picture pic;
  pic.width = int(W);
  pic.height = int(std::ceil(y_axis + kAxisH));
  Surface surface = new_surface(pic.width, pic.height);
  Context ctx(cairo_create(surface.get()));
  cairo_t* cr = ctx.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  title(cr, fmt::format("Frame scores of the {} classes with the highest peak (0 to 1, {:.2f} s per frame)", rows, s.hop_s),
        W);

  // One pixel column per plot pixel holding the maximum over the frames it covers, so that
  // short peaks survive when a long file has more frames than pixels.
  Surface img = new_surface(px_w, rows);
  unsigned char* data = cairo_image_surface_get_data(img.get());
  const int stride = cairo_image_surface_get_stride(img.get());
  for (int x = 0; x < px_w; ++x) {
    const double t0 = x * span / px_w, t1 = (x + 1) * span / px_w;
    int f0 = int(std::floor(t0 / s.hop_s));
    int f1 = std::max(int(std::ceil(t1 / s.hop_s)), f0 + 1);
    f0 = std::clamp(f0, 0, s.frames);
    f1 = std::clamp(f1, 0, s.frames);
    for (int row = 0; row < rows; ++row) {
      float best = 0;
      bool any = false;
      for (int f = f0; f < f1; ++f) {
        const float v = s.at(f, int(order[size_t(row)]));
        if (std::isfinite(v)) best = std::max(best, v);
        any = true;
      }
      // Past the end of the scores (span set by a longer duration): light grey.
      put_pixel(data + size_t(row) * size_t(stride), x,
                any ? colour_ramp(best) : std::array<unsigned char, 3>{235, 235, 235});
    }
  }
  cairo_surface_mark_dirty(img.get());
  cairo_save(cr);
  cairo_translate(cr, kLabelW, y_map);
  cairo_scale(cr, plot_w / px_w, kHeatRowH);
  cairo_set_source_surface(cr, img.get(), 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_rectangle(cr, 0, 0, px_w, rows);
  cairo_fill(cr);
  cairo_restore(cr);

  font(cr, kFontSize);
  for (int row = 0; row < rows; ++row) {
    const double y = y_map + row * kHeatRowH;
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    const std::string label = fmt::format("{} ({:.2f})", s.labels[order[size_t(row)]], peak[order[size_t(row)]]);
    text_at(cr, kLabelW - 8, y + 14, fit(cr, label, kLabelW - 16), 1.0);
  }

  // Colour bar.
  const double bx = kLabelW + plot_w + 24, bw = 14;
  const double bh = map_h;
  for (int k = 0; k < int(bh); ++k) {
    const auto c = colour_ramp(1.0 - k / (bh - 1));
    set_rgb(cr, c.data());
    cairo_rectangle(cr, bx, y_map + k, bw, 1);
    cairo_fill(cr);
  }
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  font(cr, 10);
  text_at(cr, bx + bw + 4, y_map + 9, "1");
  text_at(cr, bx + bw + 4, y_map + bh, "0");

  draw_axis(cr, kLabelW, plot_w, y_axis, span);
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) return {};
  write_png(surface.get(), pic);
  return pic;
}

std::vector<size_t> top_classes_by_peak(const FrameScores& s, size_t count, std::vector<float>* peaks) {
  const size_t L = s.labels.size();
  std::vector<float> peak(L, 0.0f);
  for (int f = 0; f < s.frames; ++f)
    for (size_t c = 0; c < L; ++c) {
      const float v = s.at(f, int(c));
      if (std::isfinite(v)) peak[c] = std::max(peak[c], v);
    }
  std::vector<size_t> order(L);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return peak[a] > peak[b]; });
  order.resize(std::min(L, count));
  if (peaks) *peaks = std::move(peak);
  return order;
}

}  // namespace earmark::report
