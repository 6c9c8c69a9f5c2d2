// decode: any audio file (wav, flac, ogg/vorbis, opus, mp3, m4a/aac, ...) through FFmpeg's
// libraries, downmixed to mono and resampled with soxr to the model rate, streamed in blocks
// so an hour of audio never sits in memory at once and nothing is written to disk.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "earmark/earmark.hpp"

namespace earmark::decode {

class AudioReader {
 public:
  // Opens `path` and prepares to deliver mono float samples at `target_rate` (1000-768000 Hz).
  // Mono is the average of all channels; resampling is soxr HQ (skipped when the rates match).
  // Decodes up to the first audio already, so it throws earmark::Error("<path>: <cause>") when
  // the file is missing, a directory, empty (0 bytes), not audio, has no audio stream, or
  // nothing in it decodes. A valid file holding zero samples (e.g. a WAV with an empty data
  // chunk) is also an error ("contains no audio"): later stages never see an empty signal.
  AudioReader(const std::string& path, int target_rate = kSampleRate);
  ~AudioReader();
  AudioReader(const AudioReader&) = delete;
  AudioReader& operator=(const AudioReader&) = delete;

  // Container, codec, source rate/channels; duration_s is the container's estimate until the
  // end is reached, then the exact decoded duration.
  const AudioInfo& info() const;

  // Appends up to `max_samples` samples to `out`; returns how many were appended. Fewer than
  // `max_samples` only at the end of the stream, 0 once it is over (or if max_samples is 0).
  // Corrupt packets in the middle are skipped with a warning; a file that breaks off keeps
  // what decoded, with a warning. Output does not depend on the block sizes asked for.
  size_t read(std::vector<float>& out, size_t max_samples);

  // Warnings collected while decoding (skipped packets, truncated end, FFmpeg's own error
  // messages, which are never printed), each "<path>: <what>"; at most about 20 are kept.
  const std::vector<std::string>& warnings() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Convenience: the whole file at once (for short clips and tests).
std::vector<float> decode_file(const std::string& path, int target_rate = kSampleRate,
                               AudioInfo* info = nullptr);

// True if the file name looks like audio we can decode (used when walking folders).
bool has_audio_extension(const std::string& path);

}  // namespace earmark::decode
