// decode: FFmpeg demux + decode, own downmix, soxr resampling; streamed in small steps.
//
// Flow per step: one demuxed packet -> decoder -> frames -> mono (downmix.hpp) -> soxr (or a
// copy when the rates match) -> `pending_`, from which read() hands out samples. Only a packet's
// worth of audio beyond what the caller asked for is ever buffered.
//
// FFmpeg logs through a process-wide callback; we install one that drops everything unless the
// current thread is inside one of our readers, in which case the message becomes a warning of
// that reader. So the CLI's stderr stays clean and the messages are not lost.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
#include <libavutil/samplefmt.h>
}
#include <soxr.h>

#include <algorithm>
#include <array>
#include <type_traits>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string_view>
#include <system_error>

#include "decode/decoder.hpp"
#include "decode/downmix.hpp"

namespace earmark::decode {

namespace fs = std::filesystem;

namespace detail {

namespace {

template <typename T>
float to_float(T v);
template <>
float to_float<uint8_t>(uint8_t v) { return (float(v) - 128.0f) * (1.0f / 128.0f); }
template <>
float to_float<int16_t>(int16_t v) { return float(v) * (1.0f / 32768.0f); }
template <>
float to_float<int32_t>(int32_t v) { return float(double(v) * (1.0 / 2147483648.0)); }
template <>
float to_float<int64_t>(int64_t v) { return float(double(v) * (1.0 / 9223372036854775808.0)); }
template <>
float to_float<float>(float v) { return v; }
template <>
float to_float<double>(double v) { return float(v); }

// Float samples are nominally within [-1, 1]; beyond this they are not audio but damaged data,
// and huge finite values (3e38) overflow to infinity in the resampler and every later stage
// (found by fuzz/fuzz_decode). They are treated like NaN: replaced by 0 and counted.
constexpr float kMaxSampleMagnitude = 1e6f;

// Damaged float samples (inf, NaN, beyond kMaxSampleMagnitude) in out[0, n) become 0; returns
// their count. Integer formats cannot produce them.
size_t zero_damaged(float* out, size_t n) {
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i)
    if (!(std::isfinite(out[i]) && std::abs(out[i]) <= kMaxSampleMagnitude)) out[i] = 0.0f, ++bad;
  return bad;
}

template <typename T>
size_t mix(const uint8_t* const* planes, bool planar, int channels, size_t samples, float* out) {
  if (channels == 1) {  // most recordings: a straight conversion the compiler vectorises
    const T* p = reinterpret_cast<const T*>(planes[0]);
    for (size_t i = 0; i < samples; ++i) out[i] = to_float<T>(p[i]);
    return std::is_floating_point_v<T> ? zero_damaged(out, samples) : 0;
  }
  const float scale = 1.0f / float(channels);
  size_t bad = 0;
  for (size_t i = 0; i < samples; ++i) {
    float acc = 0.0f;
    for (int c = 0; c < channels; ++c) {
      // memcpy-free typed reads: FFmpeg buffers are aligned for their sample type.
      const T* p = planar ? reinterpret_cast<const T*>(planes[c]) + i
                          : reinterpret_cast<const T*>(planes[0]) + i * size_t(channels) + size_t(c);
      acc += to_float<T>(*p);
    }
    const float m = channels == 1 ? acc : acc * scale;
    // A damaged float stream can decode to inf/NaN, which would poison every later stage.
    if (std::isfinite(m) && std::abs(m) <= kMaxSampleMagnitude) {
      out[i] = m;
    } else {
      out[i] = 0.0f;
      ++bad;
    }
  }
  return bad;
}

}  // namespace

bool downmix_to_mono(const uint8_t* const* planes, int format, int channels, size_t samples, float* out,
                     size_t* nonfinite) {
  if (channels <= 0) return false;
  const auto f = static_cast<AVSampleFormat>(format);
  const bool planar = av_sample_fmt_is_planar(f) != 0;
  size_t bad = 0;
  switch (av_get_packed_sample_fmt(f)) {
    case AV_SAMPLE_FMT_U8: bad = mix<uint8_t>(planes, planar, channels, samples, out); break;
    case AV_SAMPLE_FMT_S16: bad = mix<int16_t>(planes, planar, channels, samples, out); break;
    case AV_SAMPLE_FMT_S32: bad = mix<int32_t>(planes, planar, channels, samples, out); break;
    case AV_SAMPLE_FMT_S64: bad = mix<int64_t>(planes, planar, channels, samples, out); break;
    case AV_SAMPLE_FMT_FLT: bad = mix<float>(planes, planar, channels, samples, out); break;
    case AV_SAMPLE_FMT_DBL: bad = mix<double>(planes, planar, channels, samples, out); break;
    default: return false;
  }
  if (nonfinite) *nonfinite += bad;
  return true;
}

}  // namespace detail

namespace {

// Rates outside this range are either a damaged header or not audio we can use; a bogus tiny
// rate would also make the resampler produce an enormous output.
constexpr int kMinRate = 1000;
constexpr int kMaxRate = 768000;
// Corrupt files can make FFmpeg log an error per packet; past this many we keep only a count.
constexpr size_t kMaxWarnings = 20;
// av_read_frame() errors in a row before we give up on the rest of the file.
constexpr int kMaxReadErrorsInARow = 32;

std::string av_err(int code) {
  std::array<char, AV_ERROR_MAX_STRING_SIZE> buf{};
  av_strerror(code, buf.data(), buf.size());
  return buf.data();
}

struct FormatCloser {
  void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};
struct CodecFreer {
  void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* p) const { av_frame_free(&p); }
};
struct SoxrDeleter {
  void operator()(soxr* p) const { soxr_delete(p); }
};

// Receives FFmpeg's log lines for the reader working on this thread (if any).
class LogSink {
 public:
  virtual void ffmpeg_message(std::string msg) = 0;

 protected:
  ~LogSink() = default;
};
thread_local LogSink* t_sink = nullptr;

void log_callback(void* avcl, int level, const char* fmt, va_list vl) {
  if (level > AV_LOG_ERROR || t_sink == nullptr) return;
  std::array<char, 1024> buf{};
  std::vsnprintf(buf.data(), buf.size(), fmt, vl);
  std::string msg(buf.data());
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r' || msg.back() == ' ')) msg.pop_back();
  if (msg.empty()) return;
  // Name the component ("mp3float", "wav") but not its address, which means nothing to a user.
  if (avcl != nullptr) {
    const AVClass* cls = *static_cast<const AVClass* const*>(avcl);
    if (cls != nullptr && cls->item_name != nullptr) msg = std::string(cls->item_name(avcl)) + ": " + msg;
  }
  t_sink->ffmpeg_message(std::move(msg));
}

// The largest block FFmpeg may allocate at once. Its demuxers size some buffers from header
// fields before checking them against the file: a 333-byte WAV whose LIST chunk claims 2 GB made
// avformat_open_input zero-fill 1.7 GB (found by fuzz_upload), which on the service is a memory
// exhaustion from one small upload. Audio needs nothing near this (packets and frames are KB to
// a few MB; the probe buffer is 5 MB at most), so a larger request is a broken file: the
// allocation fails and the file is refused (as a corrupt header; ENOMEM gets its own message).
constexpr size_t kMaxFfmpegBlock = size_t(64) << 20;

// The demuxers earmark lets FFmpeg use: the audio containers people record and share in, and
// the raw streams of common audio codecs. FFmpeg carries some 300 demuxers, most for rare or
// legacy formats whose code sees little use; probing could pick any of them for a crafted
// file (a 13-byte file named .vqe reached the VQF demuxer, which leaked memory), so the rest
// are refused, with a message naming what FFmpeg took the file for. Names as FFmpeg lists
// them (`ffmpeg -demuxers`); "mov" covers mp4/m4a/3gp, "matroska" covers webm, "mp3" also
// reads MPEG layer 1/2, "ogg" carries Vorbis, Opus, FLAC and Speex.
constexpr const char* kDemuxers =
    "wav,w64,flac,ogg,mp3,mov,matroska,webm,aiff,caf,asf,au,aac,wv,ac3,eac3,amr,ape,tta";

void install_log_callback() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(log_callback);
    av_max_alloc(kMaxFfmpegBlock);
  });
}

// Routes FFmpeg's messages to `sink` for the lifetime of the scope (nesting restores).
class LogScope {
 public:
  explicit LogScope(LogSink* sink) : prev_(t_sink) { t_sink = sink; }
  ~LogScope() { t_sink = prev_; }
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  LogSink* prev_;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

std::string extension_of(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  if (!ext.empty() && ext[0] == '.') ext.erase(0, 1);
  return lower(ext);
}

// The demuxer a file extension almost always means; null where there is no safe guess.
const AVInputFormat* demuxer_for_extension(const std::string& ext) {
  static const std::pair<const char*, const char*> table[] = {
      {"wav", "wav"},   {"flac", "flac"}, {"ogg", "ogg"},   {"oga", "ogg"},       {"opus", "ogg"},
      {"mp3", "mp3"},   {"w64", "w64"},   {"aif", "aiff"},  {"aiff", "aiff"},     {"caf", "caf"},
      {"mka", "matroska"}, {"webm", "matroska"}, {"m4a", "mov"}, {"mp4", "mov"},
  };
  for (const auto& [e, name] : table)
    if (ext == e) return av_find_input_format(name);
  return nullptr;
}

// The demuxer the file's first bytes name, for the containers whose signature is certain;
// null when they name none of these (raw MP3 or AAC frames, unknown formats: the extension
// and then FFmpeg's own probing decide). The content wins over the extension: a WAV named
// .mp3 is a WAV.
const AVInputFormat* demuxer_for_content(const std::string& path) {
  std::array<unsigned char, 16> h{};
  std::ifstream f(path, std::ios::binary);
  if (!f.read(reinterpret_cast<char*>(h.data()), h.size())) return nullptr;
  auto is = [&](size_t at, const char* magic) { return std::memcmp(h.data() + at, magic, std::strlen(magic)) == 0; };
  const char* name = nullptr;
  if ((is(0, "RIFF") || is(0, "RIFX") || is(0, "RF64")) && is(8, "WAVE"))
    name = "wav";
  else if (is(0, "fLaC"))
    name = "flac";
  else if (is(0, "OggS"))
    name = "ogg";
  else if (is(0, "FORM") && (is(8, "AIFF") || is(8, "AIFC")))
    name = "aiff";
  else if (is(0, "caff"))
    name = "caf";
  else if (is(0, "\x1a\x45\xdf\xa3"))
    name = "matroska";
  else if (is(4, "ftyp"))
    name = "mov";
  else if (is(0, "riff") && h[4] == 0x2e && h[5] == 0x91 && h[6] == 0xcf && h[7] == 0x11)
    name = "w64";
  return name ? av_find_input_format(name) : nullptr;
}

// FFmpeg names demuxers that serve several containers "mov,mp4,m4a,3gp,3g2,mj2" or
// "matroska,webm": report the one the file's extension names, or a sensible default.
std::string friendly_container(const char* demuxer_name, const std::string& path) {
  const std::string name = demuxer_name ? demuxer_name : "unknown";
  if (name.find(',') == std::string::npos) return name;
  const std::string ext = extension_of(path);
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t comma = name.find(',', start);
    parts.push_back(name.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (std::find(parts.begin(), parts.end(), ext) != parts.end()) return ext;
  if (name.rfind("mov,", 0) == 0) return ext == "aac" ? "m4a" : "mp4";
  return parts.front();
}

// FFmpeg's WAV demuxer quietly trims the data size to what the file holds, so a recorder that
// died mid-file would go unnoticed. Compare the RIFF "data" chunk's declared size with the
// bytes actually present; returns the missing share of the audio (0 when complete/unknown).
double wav_missing_fraction(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::array<char, 12> riff{};
  if (!f.read(riff.data(), riff.size()) || std::memcmp(riff.data(), "RIFF", 4) != 0 ||
      std::memcmp(riff.data() + 8, "WAVE", 4) != 0)
    return 0;
  std::error_code ec;
  const auto file_size = fs::file_size(path, ec);
  if (ec) return 0;
  uint64_t pos = 12;
  // A handful of chunks precede "data" in practice; stop early on anything odd.
  for (int i = 0; i < 64 && pos + 8 <= file_size; ++i) {
    std::array<unsigned char, 8> hdr{};
    f.seekg(std::streamoff(pos));
    if (!f.read(reinterpret_cast<char*>(hdr.data()), hdr.size())) return 0;
    const uint64_t size = uint64_t(hdr[4]) | uint64_t(hdr[5]) << 8 | uint64_t(hdr[6]) << 16 | uint64_t(hdr[7]) << 24;
    if (std::memcmp(hdr.data(), "data", 4) == 0) {
      // 0 and 0xFFFFFFFF mean "unknown length" (streamed or RF64-style writers).
      if (size == 0 || size == 0xFFFFFFFFu) return 0;
      const uint64_t present = file_size - (pos + 8);
      return present < size ? 1.0 - double(present) / double(size) : 0.0;
    }
    pos += 8 + size + (size & 1);
  }
  return 0;
}

// FFmpeg's Ogg demuxer takes the length from the last complete page, so a file cut off mid-way
// looks whole. Walk the page headers (27 bytes + segment table each, no payload read): the
// file is truncated when its last page runs past the end of the file, or when the last page
// is not an end-of-stream page (header flag 0x04) as every finished Ogg stream's is.
// Returns a warning, or "" when the file looks complete or the walk cannot tell.
std::string ogg_truncation(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::error_code ec;
  const auto file_size = fs::file_size(path, ec);
  if (!f || ec) return "";
  uint64_t pos = 0;
  bool last_eos = false;
  for (int pages = 0; pos < file_size; ++pages) {
    if (pages > (1 << 22)) return "";  // far more pages than any real file; give up quietly
    std::array<unsigned char, 27 + 255> hdr{};
    f.seekg(std::streamoff(pos));
    f.read(reinterpret_cast<char*>(hdr.data()), 27);
    if (f.gcount() < 27) return "the last Ogg page is cut off inside its header; the file looks truncated";
    if (std::memcmp(hdr.data(), "OggS", 4) != 0 || hdr[4] != 0) return "";  // not a clean page walk: no claim
    const size_t segments = hdr[26];
    f.read(reinterpret_cast<char*>(hdr.data() + 27), std::streamsize(segments));
    if (size_t(f.gcount()) < segments)
      return "the last Ogg page is cut off inside its header; the file looks truncated";
    uint64_t body = 0;
    for (size_t i = 0; i < segments; ++i) body += hdr[27 + i];
    const uint64_t end = pos + 27 + segments + body;
    if (end > file_size) {
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "the last Ogg page is cut off (%llu of its %llu bytes present); the file looks truncated, "
                    "decoding what is there",
                    static_cast<unsigned long long>(file_size - pos), static_cast<unsigned long long>(end - pos));
      return buf;
    }
    last_eos = (hdr[5] & 0x04) != 0;
    pos = end;
  }
  if (!last_eos) return "the Ogg stream has no end-of-stream page; the file looks truncated, decoding what is there";
  return "";
}

}  // namespace

struct AudioReader::Impl final : LogSink {
  std::string path;
  int target_rate;
  AudioInfo info;
  std::vector<std::string> warnings;
  size_t suppressed_warnings = 0;

  std::unique_ptr<AVFormatContext, FormatCloser> fmt;
  std::unique_ptr<AVCodecContext, CodecFreer> dec;
  std::unique_ptr<AVPacket, PacketFreer> pkt;
  std::unique_ptr<AVFrame, FrameFreer> frame;
  int stream_index = -1;

  std::unique_ptr<soxr, SoxrDeleter> resampler;
  int current_rate = 0;  // source rate of the frames being fed; 0 before the first frame
  std::vector<float> mono;     // scratch: one frame downmixed
  std::vector<float> pending;  // resampled samples not yet handed out
  size_t pending_pos = 0;

  double container_duration = 0;  // seconds, 0 when unknown
  bool duration_from_bitrate = false;
  uint64_t source_samples = 0;    // decoded at the source rate
  double source_seconds = 0;      // sum over rate changes
  uint64_t output_samples = 0;    // produced at the target rate
  size_t nonfinite_samples = 0;   // NaN/Inf samples (after downmix) replaced by 0
  int read_errors_in_a_row = 0;
  int decode_errors = 0;
  bool demux_done = false;  // decoder has been sent the flush packet and drained
  bool finished = false;    // resampler flushed too; nothing more will come

  Impl(const std::string& p, int rate) : path(p), target_rate(rate) {}

  [[noreturn]] void fail(const std::string& cause) const { throw Error(path + ": " + cause); }

  void warn(std::string msg) {
    if (warnings.size() < kMaxWarnings) {
      warnings.push_back(path + ": " + std::move(msg));
    } else if (suppressed_warnings++ == 0) {
      warnings.push_back(path + ": further decoder warnings suppressed");
    }
  }
  void ffmpeg_message(std::string msg) override { warn(std::move(msg)); }

  void open() {
    if (target_rate < kMinRate || target_rate > kMaxRate)
      throw Error("decode: target rate " + std::to_string(target_rate) + " Hz is out of range (" +
                  std::to_string(kMinRate) + "-" + std::to_string(kMaxRate) + ")");
    std::error_code ec;
    const auto st = fs::status(path, ec);
    if (ec || !fs::exists(st)) fail("no such file; check the path");
    if (fs::is_directory(st)) fail("is a directory, not an audio file");
    // A FIFO would block the run forever (and a device such as /dev/zero never ends): only
    // regular files are read. A stream can be saved to a file first.
    if (!fs::is_regular_file(st))
      fail("is not a regular file (a named pipe, device or socket); earmark reads audio files only, save the "
           "stream to a file first");
    if (fs::file_size(path, ec) == 0 && !ec) fail("empty file (0 bytes)");

    install_log_callback();
    LogScope scope(this);

    // "file:" so that a name with a colon is not taken for a protocol, and a whitelist so a
    // crafted playlist-like file cannot make FFmpeg open network URLs.
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    av_dict_set(&opts, "format_whitelist", kDemuxers, 0);
    AVFormatContext* raw = nullptr;
    const std::string url = "file:" + path;
    // Probing runs every demuxer's detector over the file's first kilobytes (~6 ms for a WAV,
    // more than decoding it); the demuxer the first bytes name is tried first (else the
    // extension's, a hint only), and probing only if that one refuses the file.
    int r = -1;
    const AVInputFormat* by_content = demuxer_for_content(path);
    if (const AVInputFormat* guess = by_content ? by_content : demuxer_for_extension(extension_of(path))) {
      AVDictionary* guess_opts = nullptr;
      av_dict_copy(&guess_opts, opts, 0);
      // WAV asks FFmpeg to probe its PCM payload for S/PDIF-wrapped codecs, by default over
      // 5 MB of packets (every demuxer's detector on each), which took 6 ms of a 10 s file;
      // the first 8 KB of samples settle it.
      const std::string demuxer = guess->name;
      if (demuxer == "wav" || demuxer == "w64") av_dict_set(&guess_opts, "probesize", "8192", 0);
      r = avformat_open_input(&raw, url.c_str(), guess, &guess_opts);
      av_dict_free(&guess_opts);
      if (r < 0) {
        raw = nullptr;
        warnings.clear();  // the guess's complaints are not the file's
      }
    }
    if (r < 0) r = avformat_open_input(&raw, url.c_str(), nullptr, &opts);
    av_dict_free(&opts);
    if (r < 0) {
      if (r == AVERROR(EACCES)) fail("permission denied; check the file's permissions");
      if (const std::string other = refused_demuxer(); !other.empty())
        fail("FFmpeg takes it for '" + other +
             "', a format earmark does not read (it reads wav, flac, ogg/opus, mp3, m4a/mp4/aac, webm/mka, aiff, "
             "caf, wma, au, wavpack, ac3, amr, ape, tta); convert it to wav or flac");
      if (r == AVERROR_EOF) fail("the file ends inside its header; it is truncated, copy or export it again");
      if (r == AVERROR(ENOMEM))
        fail("its header asks for more than " + std::to_string(kMaxFfmpegBlock >> 20) +
             " MB in one piece (a chunk size larger than any audio needs); the file is corrupt or crafted, "
             "export it again");
      fail("not a recognised audio format, or its header is corrupt (" + first_cause_or(av_err(r)) +
           "); check that it is an audio file or convert it to wav or flac");
    }
    fmt.reset(raw);
    r = avformat_find_stream_info(fmt.get(), nullptr);
    if (r < 0) fail("cannot read the stream layout (" + first_cause_or(av_err(r)) + "); the file may be corrupt");

    const AVCodec* codec = nullptr;
    r = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (r == AVERROR_STREAM_NOT_FOUND) fail("no audio stream in this " + std::string(fmt->iformat->name) + " file");
    if (r == AVERROR_DECODER_NOT_FOUND || (r >= 0 && codec == nullptr)) {
      // Find the codec name of the first audio stream for the message.
      std::string name = "unknown";
      for (unsigned i = 0; i < fmt->nb_streams; ++i)
        if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) {
          name = avcodec_get_name(fmt->streams[i]->codecpar->codec_id);
          break;
        }
      fail("audio codec '" + name + "' is not supported by this FFmpeg build; convert the file to wav or flac");
    }
    if (r < 0) fail("cannot select an audio stream (" + av_err(r) + ")");
    stream_index = r;
    // Skip demuxing video/subtitle packets we would only throw away.
    for (unsigned i = 0; i < fmt->nb_streams; ++i)
      if (int(i) != stream_index) fmt->streams[i]->discard = AVDISCARD_ALL;

    AVStream* st_audio = fmt->streams[stream_index];
    const AVCodecParameters* par = st_audio->codecpar;
    if (par->sample_rate != 0 && (par->sample_rate < kMinRate || par->sample_rate > kMaxRate))
      fail("unsupported sample rate " + std::to_string(par->sample_rate) + " Hz (the header may be corrupt)");

    dec.reset(avcodec_alloc_context3(codec));
    if (!dec) fail("out of memory allocating the decoder");
    r = avcodec_parameters_to_context(dec.get(), par);
    if (r < 0) fail("cannot set up the " + std::string(codec->name) + " decoder (" + av_err(r) + ")");
    dec->pkt_timebase = st_audio->time_base;
    dec->thread_count = 1;  // audio decoders gain little; the caller parallelises over files
    r = avcodec_open2(dec.get(), codec, nullptr);
    if (r < 0) fail("cannot open the " + std::string(codec->name) + " decoder (" + av_err(r) + ")");

    pkt.reset(av_packet_alloc());
    frame.reset(av_frame_alloc());
    if (!pkt || !frame) fail("out of memory allocating decoder buffers");

    info.container = friendly_container(fmt->iformat->name, path);
    info.codec = avcodec_get_name(par->codec_id);
    info.source_rate = par->sample_rate;
    info.source_channels = par->ch_layout.nb_channels;
    if (st_audio->duration != AV_NOPTS_VALUE && st_audio->duration > 0)
      container_duration = double(st_audio->duration) * av_q2d(st_audio->time_base);
    else if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
      container_duration = double(fmt->duration) / AV_TIME_BASE;
    duration_from_bitrate = fmt->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE;
    info.duration_s = container_duration;
    if (std::string_view(fmt->iformat->name) == "ogg") {
      if (const std::string why = ogg_truncation(path); !why.empty()) warn(why);
    }
    if (std::string_view(fmt->iformat->name) == "wav") {
      if (const double missing = wav_missing_fraction(path); missing > 0) {
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "the WAV header promises more audio than the file holds (%.1f%% missing); the file "
                      "looks truncated, decoding what is there",
                      100.0 * missing);
        warn(buf);
      }
    }

    // Decode until the first audio comes out, so that a file with nothing decodable fails
    // here, at open, with a clear message rather than later as a silent empty stream.
    while (source_samples == 0 && !finished) step();
    if (source_samples == 0) {
      if (decode_errors > 0 || container_duration > 0)
        fail("no audio could be decoded; the file is truncated or corrupt" + first_cause());
      fail("contains no audio (0 samples); nothing to analyse");
    }
  }

  // A warning without our "<path>: " prefix (errors name the path already).
  std::string_view cause_of(const std::string& warning) const {
    return std::string_view(warning).substr(std::min(warning.size(), path.size() + 2));
  }
  // The demuxer that probing chose when format_whitelist refused it ("" otherwise). FFmpeg
  // prefixes its message with the chosen demuxer's name: "vqf: Format not on whitelist ...".
  std::string refused_demuxer() const {
    static constexpr std::string_view kMark = ": Format not on whitelist";
    for (const std::string& w : warnings) {
      const std::string_view msg = cause_of(w);
      if (const size_t at = msg.find(kMark); at != std::string_view::npos && at > 0) return std::string(msg.substr(0, at));
    }
    return "";
  }
  // FFmpeg's own first complaint (e.g. "moov atom not found") explains a failure better than
  // its error code.
  std::string first_cause_or(const std::string& fallback) const {
    return warnings.empty() ? fallback : std::string(cause_of(warnings.front()));
  }
  std::string first_cause() const { return warnings.empty() ? "" : " (" + first_cause_or("") + ")"; }

  size_t available() const { return pending.size() - pending_pos; }

  // One unit of work: demux one packet and decode it, or finish the stream.
  void step() {
    if (demux_done) {
      finish();
      return;
    }
    const int r = av_read_frame(fmt.get(), pkt.get());
    if (r == AVERROR_EOF) {
      end_of_packets();
      return;
    }
    if (r < 0) {
      // Demuxers resync after garbage; a persistent failure (I/O error) must still end.
      ++decode_errors;
      if (++read_errors_in_a_row >= kMaxReadErrorsInARow) {
        warn("stopped reading at " + position() + " after repeated read errors (" + av_err(r) + ")");
        end_of_packets();
      }
      return;
    }
    read_errors_in_a_row = 0;
    if (pkt->stream_index == stream_index) {
      const int s = avcodec_send_packet(dec.get(), pkt.get());
      if (s < 0 && s != AVERROR(EAGAIN)) {
        ++decode_errors;
        warn("skipped a corrupt packet at " + position() + " (" + av_err(s) + ")");
      }
      drain();
    }
    av_packet_unref(pkt.get());
  }

  void end_of_packets() {
    avcodec_send_packet(dec.get(), nullptr);
    drain();
    demux_done = true;
  }

  void drain() {
    for (;;) {
      const int r = avcodec_receive_frame(dec.get(), frame.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) {
        ++decode_errors;
        warn("decoding error at " + position() + " (" + av_err(r) + ")");
        return;
      }
      consume_frame();
      av_frame_unref(frame.get());
    }
  }

  std::string position() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f s", source_seconds);
    return buf;
  }

  void consume_frame() {
    const AVFrame& f = *frame;
    const int channels = f.ch_layout.nb_channels > 0 ? f.ch_layout.nb_channels : dec->ch_layout.nb_channels;
    if (f.nb_samples <= 0) return;
    if (f.sample_rate < kMinRate || f.sample_rate > kMaxRate || channels <= 0) {
      ++decode_errors;
      warn("skipped a frame with an invalid layout (" + std::to_string(f.sample_rate) + " Hz, " +
           std::to_string(channels) + " channels) at " + position());
      return;
    }
    const auto n = size_t(f.nb_samples);
    mono.resize(n);
    if (!detail::downmix_to_mono(f.extended_data, f.format, channels, n, mono.data(), &nonfinite_samples)) {
      ++decode_errors;
      const char* name = av_get_sample_fmt_name(static_cast<AVSampleFormat>(f.format));
      warn(std::string("skipped a frame in unsupported sample format ") + (name ? name : "?"));
      return;
    }
    if (source_samples == 0) {
      // The first decoded frame is the truth where the container header was vague.
      info.source_rate = f.sample_rate;
      info.source_channels = channels;
    }
    source_samples += n;
    source_seconds += double(n) / f.sample_rate;
    resample(mono.data(), n, f.sample_rate);
  }

  void resample(const float* in, size_t n, int rate) {
    if (rate != current_rate) {
      if (current_rate != 0) warn("sample rate changes from " + std::to_string(current_rate) + " to " +
                                  std::to_string(rate) + " Hz at " + position());
      flush_resampler();
      current_rate = rate;
      if (rate != target_rate) {
        soxr_error_t err = nullptr;
        const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        const soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        // One thread: deterministic output and no competition with the caller's threads.
        const soxr_runtime_spec_t rt = soxr_runtime_spec(1);
        resampler.reset(soxr_create(rate, target_rate, 1, &err, &io, &q, &rt));
        if (err != nullptr || !resampler) fail(std::string("cannot create the resampler (") + err + ")");
      }
    }
    if (!resampler) {
      pending.insert(pending.end(), in, in + n);
      output_samples += n;
      return;
    }
    size_t used = 0;
    while (used < n) {
      const size_t room = size_t(double(n - used) * target_rate / rate) + 64;
      const size_t old = pending.size();
      pending.resize(old + room);
      size_t idone = 0, odone = 0;
      soxr_error_t err = soxr_process(resampler.get(), in + used, n - used, &idone, pending.data() + old, room, &odone);
      pending.resize(old + odone);
      output_samples += odone;
      if (err != nullptr) fail(std::string("resampling failed (") + err + ")");
      used += idone;
      if (idone == 0 && odone == 0) break;  // cannot happen per soxr's contract; never spin
    }
  }

  void flush_resampler() {
    if (!resampler) return;
    for (;;) {
      const size_t room = 4096;
      const size_t old = pending.size();
      pending.resize(old + room);
      size_t odone = 0;
      soxr_error_t err = soxr_process(resampler.get(), nullptr, 0, nullptr, pending.data() + old, room, &odone);
      pending.resize(old + odone);
      output_samples += odone;
      if (err != nullptr) fail(std::string("resampling failed (") + err + ")");
      if (odone == 0) break;
    }
    resampler.reset();
  }

  void finish() {
    flush_resampler();
    finished = true;
    const double decoded = double(output_samples) / target_rate;
    // Headers whose length is exact (not guessed from the bitrate) tell us about a cut-off
    // file; allow for codec padding and priming with a small tolerance.
    if (container_duration > 0 && !duration_from_bitrate &&
        decoded < container_duration - std::max(0.1, 0.01 * container_duration)) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "audio ends at %.2f s but the header says %.2f s; the file looks truncated",
                    decoded, container_duration);
      warn(buf);
    }
    info.duration_s = decoded;
    // NaN or infinite samples were replaced by silence; never pass that off as a quiet file.
    if (nonfinite_samples > 0 && nonfinite_samples >= source_samples)
      fail("every sample is NaN or infinite (or beyond 1e6 in magnitude) (" + std::to_string(nonfinite_samples) +
           " samples); the float data is damaged, there is no audio to analyse");
    if (nonfinite_samples > 0) {
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "%zu of %llu samples (%.2f%%) are NaN or infinite (or beyond 1e6 in magnitude) and were "
                    "replaced by silence; the float data is damaged",
                    nonfinite_samples, static_cast<unsigned long long>(source_samples),
                    100.0 * double(nonfinite_samples) / double(source_samples));
      warn(buf);
    }
  }

  size_t read(std::vector<float>& out, size_t max_samples) {
    if (max_samples == 0) return 0;
    LogScope scope(this);
    // One allocation up front: growing the buffer packet by packet copies it a dozen times
    // and page-faults on every fresh block, which cost more than decoding a WAV.
    // (Grown geometrically: an exact reserve per call would copy everything on every call.)
    auto ensure = [](std::vector<float>& v, size_t need) {
      if (v.capacity() < need) v.reserve(std::max(need, 2 * v.capacity()));
    };
    ensure(pending, pending_pos + max_samples + 16384);
    ensure(out, out.size() + max_samples);
    while (available() < max_samples && !finished) step();
    const size_t n = std::min(max_samples, available());
    out.insert(out.end(), pending.begin() + std::ptrdiff_t(pending_pos),
               pending.begin() + std::ptrdiff_t(pending_pos + n));
    pending_pos += n;
    // Drop what was handed out once it is most of the buffer, so the buffer stays bounded
    // without moving samples on every call.
    if (pending_pos > 65536 && pending_pos * 2 > pending.size()) {
      pending.erase(pending.begin(), pending.begin() + std::ptrdiff_t(pending_pos));
      pending_pos = 0;
    }
    return n;
  }
};

AudioReader::AudioReader(const std::string& path, int target_rate) : impl_(std::make_unique<Impl>(path, target_rate)) {
  impl_->open();
}

AudioReader::~AudioReader() = default;

const AudioInfo& AudioReader::info() const { return impl_->info; }

size_t AudioReader::read(std::vector<float>& out, size_t max_samples) { return impl_->read(out, max_samples); }

const std::vector<std::string>& AudioReader::warnings() const { return impl_->warnings; }

std::vector<float> decode_file(const std::string& path, int target_rate, AudioInfo* info) {
  AudioReader reader(path, target_rate);
  std::vector<float> out;
  // Trust the header's length only up to an hour for the reservation: it may be corrupt.
  const double est = std::min(reader.info().duration_s, 3600.0);
  if (est > 0) out.reserve(size_t(est * target_rate) + 1024);
  while (reader.read(out, size_t(1) << 16) > 0) {
  }
  if (info) *info = reader.info();
  return out;
}

bool has_audio_extension(const std::string& path) {
  static constexpr std::array<std::string_view, 22> kExt = {
      "wav", "flac", "ogg", "oga", "opus", "mp3", "m4a", "aac",  "mp4",  "webm", "mka",
      "aif", "aiff", "aifc", "wma", "caf", "au",  "snd", "w64", "mp2",  "wv",   "spx"};
  const std::string ext = extension_of(path);
  return !ext.empty() && std::find(kExt.begin(), kExt.end(), ext) != kExt.end();
}

}  // namespace earmark::decode
