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
  // Opens `path` and prepares to deliver mono float samples at `target_rate`.
  // Throws earmark::Error("<path>: <cause>") when the file is missing, empty, not audio, or
  // has no decodable audio stream.
  AudioReader(const std::string& path, int target_rate = kSampleRate);
  ~AudioReader();
  AudioReader(const AudioReader&) = delete;
  AudioReader& operator=(const AudioReader&) = delete;

  // Container, codec, source rate/channels; duration_s is the container's estimate until the
  // end is reached, then the exact decoded duration.
  const AudioInfo& info() const;

  // Appends up to `max_samples` samples to `out`; returns how many were appended. Returns 0
  // only at the end of the stream. Throws earmark::Error on a decoding failure that leaves
  // nothing usable (a corrupt packet in the middle is skipped with a warning instead).
  size_t read(std::vector<float>& out, size_t max_samples);

  // Warnings collected while decoding (skipped packets, truncated end...).
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
