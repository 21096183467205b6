// Fuzz target: the frame reader (read_frame).
// Input: [limit selector][split seed][stream bytes...]. Oracles:
//  - every complete frame agrees with an independent reading of the fixed header (spec 2.1,
//    1.5.5), is within the size limit, and errors are the ones the spec implies;
//  - feeding the same stream in chunks of random sizes (the way a receiver sees it) yields the
//    same sequence of frames and the same final state as reading it whole, and `bytes_needed`
//    never asks for more bytes than the frame really needs.
#include <array>
#include <cstring>

#include "fuzz_support.hpp"

namespace {

using namespace edgekit::fuzz;

struct Outcome {
  std::size_t offset = 0;
  FixedHeader header{};
};

// Independent reading of a fixed header. Returns Ok + header, Ok + header_size 0 (incomplete),
// or the error.
Errc reference_header(Bytes b, FixedHeader& h) {
  h = {};
  if (b.empty()) return Errc::Ok;
  const auto first = static_cast<std::uint8_t>(b[0]);
  std::uint32_t value = 0;
  std::uint32_t mult = 1;
  for (std::size_t i = 1; i <= 4; ++i) {
    if (i >= b.size()) return Errc::Ok;  // length still incomplete
    const auto c = static_cast<std::uint8_t>(b[i]);
    // [MQTT-1.5.5-1] minimal encoding: a last byte of 0 after a continuation is non-minimal.
    if (i > 1 && c == 0) return Errc::MalformedRemainingLength;
    value += (c & 0x7Fu) * mult;
    mult *= 128;
    if ((c & 0x80) == 0) {
      if ((first >> 4) == 0) return Errc::InvalidPacketType;
      h.type = static_cast<PacketType>(first >> 4);
      h.flags = first & 0x0F;
      h.remaining_length = value;
      h.header_size = static_cast<std::uint8_t>(i + 1);
      return Errc::Ok;
    }
  }
  return Errc::MalformedRemainingLength;
}

bool same_header(const FixedHeader& a, const FixedHeader& b) {
  return a.type == b.type && a.flags == b.flags && a.remaining_length == b.remaining_length &&
         a.header_size == b.header_size;
}

// Reads frames from `data` whole. Returns the frames, and the final state: error or incomplete.
struct StreamResult {
  std::array<Outcome, 64> frames{};
  std::size_t count = 0;
  Errc error = Errc::Ok;  // Ok: ended incomplete (or exactly at a frame boundary)
  std::size_t end = 0;    // offset where reading stopped
};

StreamResult read_whole(Bytes data, std::uint32_t limit) {
  StreamResult s;
  std::size_t off = 0;
  while (s.count < s.frames.size()) {
    auto r = read_frame(data.subspan(off), limit);
    FixedHeader ref;
    const Errc ref_err = reference_header(data.subspan(off), ref);
    if (!r) {
      // Errors the reference agrees with (type 0 may be reported before the length is
      // complete, and PacketTooLarge is a limit the reference applies below).
      if (r.error() == Errc::PacketTooLarge) {
        FUZZ_CHECK(ref_err == Errc::Ok && ref.header_size != 0);
        FUZZ_CHECK(ref.packet_size() > limit);
      } else if (r.error() == Errc::InvalidPacketType) {
        FUZZ_CHECK((static_cast<std::uint8_t>(data[off]) >> 4) == 0);
      } else {
        FUZZ_CHECK(r.error() == ref_err);
      }
      s.error = r.error();
      break;
    }
    if (ref_err != Errc::Ok) {
      FUZZ_CHECK(false && "read_frame accepted a header the reference rejects");
    }
    const Frame& f = *r;
    if (ref.header_size != 0) {
      FUZZ_CHECK(f.header.header_size != 0);
      FUZZ_CHECK(same_header(f.header, ref));
      FUZZ_CHECK(ref.packet_size() <= limit);
    } else {
      FUZZ_CHECK(!f.complete && f.header.header_size == 0 && f.bytes_needed >= 1);
    }
    if (!f.complete) {
      if (f.header.header_size != 0)
        FUZZ_CHECK(f.bytes_needed == f.header.packet_size() - (data.size() - off));
      break;
    }
    FUZZ_CHECK(f.header.header_size >= 2 && f.header.header_size <= 5);
    FUZZ_CHECK(f.header.packet_size() <= data.size() - off);
    s.frames[s.count++] = Outcome{off, f.header};
    off += f.header.packet_size();
  }
  s.end = off;
  return s;
}

// Feeds `data` in chunks chosen by `seed`, as a receiver with a linear buffer would: after each
// chunk it takes every complete frame, stops at an error, and waits for more when incomplete.
StreamResult read_chunked(Bytes data, std::uint32_t limit, std::uint8_t seed,
                          const StreamResult& whole) {
  StreamResult s;
  std::uint32_t rng = 0x9E3779B9u ^ seed;
  std::size_t have = 0;
  std::size_t off = 0;
  bool done = false;
  while (!done) {
    rng = rng * 1664525u + 1013904223u;
    std::size_t chunk = 1 + (rng >> 24) % 9;
    if ((rng >> 8) % 4 == 0) chunk = 1 + (rng >> 12) % 300;
    have = std::min(data.size(), have + chunk);
    while (true) {
      if (s.count == s.frames.size()) {
        done = true;
        break;
      }
      auto r = read_frame(data.subspan(off, have - off), limit);
      if (!r) {
        s.error = r.error();
        done = true;
        break;
      }
      if (!r->complete) {
        FUZZ_CHECK(r->bytes_needed >= 1);
        // Never ask for more than the frame needs: when the whole stream holds this frame
        // complete, have + bytes_needed must not pass its end.
        for (std::size_t i = 0; i < whole.count; ++i) {
          if (whole.frames[i].offset == off) {
            FUZZ_CHECK(have + r->bytes_needed <= off + whole.frames[i].header.packet_size());
          }
        }
        if (have == data.size()) done = true;
        break;
      }
      s.frames[s.count++] = Outcome{off, r->header};
      off += r->header.packet_size();
    }
  }
  s.end = off;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // Limits: the protocol's maximum, or a small one so PacketTooLarge is reached.
  static constexpr std::uint32_t kLimits[] = {kMaxPacketSize, 2, 5, 64, 128, 200, 16'384, 16'385};
  const std::uint32_t limit = kLimits[data[0] % 8];
  const std::uint8_t seed = data[1];
  const Bytes stream(reinterpret_cast<const std::byte*>(data + 2), size - 2);

  const StreamResult whole = read_whole(stream, limit);
  const StreamResult chunked = read_chunked(stream, limit, seed, whole);
  FUZZ_CHECK(chunked.count == whole.count);
  for (std::size_t i = 0; i < whole.count; ++i) {
    FUZZ_CHECK(chunked.frames[i].offset == whole.frames[i].offset);
    FUZZ_CHECK(same_header(chunked.frames[i].header, whole.frames[i].header));
  }
  FUZZ_CHECK(chunked.error == whole.error);
  FUZZ_CHECK(chunked.end == whole.end);
  return 0;
}
