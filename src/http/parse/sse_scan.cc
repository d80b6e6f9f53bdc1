// SSE fast-path scanning: event boundaries, content-event counting and the usage test, all
// without copying. Must agree with SseParser (tests/fuzz/fuzz_sse_fastpath.cc checks it).
#include "http/parse/sse_scan.h"

#include <algorithm>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice::http {
namespace {

// The scans below look at kBlock bytes at a time: eq_mask(p, c) has bit i set when p[i] == c.
// 0 without SSE2 (the scalar tails then do all the work).
#if defined(__AVX2__)
constexpr size_t kBlock = 32;
inline unsigned eq_mask(const char* p, char c) {
  return static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi8(c))));
}
#elif defined(__SSE2__)
constexpr size_t kBlock = 16;
inline unsigned eq_mask(const char* p, char c) {
  return static_cast<unsigned>(_mm_movemask_epi8(
      _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), _mm_set1_epi8(c))));
}
#else
constexpr size_t kBlock = 0;
inline unsigned eq_mask(const char*, char) { return 0; }
#endif

bool is_eol(char c) { return c == '\n' || c == '\r'; }

// Is `i` (2 <= i <= s.size()) just past two consecutive line terminators?
bool boundary_at(std::string_view s, size_t i) {
  const char b = s[i - 1];
  if (b == '\n') {
    const char a = s[i - 2];
    if (a == '\n') return true;                     // LF LF (or CRLF LF)
    return a == '\r' && i >= 3 && is_eol(s[i - 3]);  // LF CRLF, CR CRLF, CRLF CRLF
  }
  if (b == '\r') {
    // LF CR or CR CR, unless this CR starts a CRLF (then the boundary is after the LF).
    return is_eol(s[i - 2]) && i < s.size() && s[i] != '\n';
  }
  return false;
}

// One SSE line (terminator excluded) applied to the counting state, as SseParser's
// process_line() would apply it.
struct Counter {
  size_t events = 0;
  size_t data_lines = 0;
  bool has_fields = false;
  bool done = false;  // the only data line so far is exactly "[DONE]"

  void line(std::string_view l) {
    if (l.empty()) {
      if (has_fields && !(data_lines == 1 && done)) ++events;
      has_fields = false;
      data_lines = 0;
      done = false;
      return;
    }
    if (l[0] == ':') return;  // comment
    if (l.size() >= 5 && std::memcmp(l.data(), "data:", 5) == 0) {  // nearly every line
      std::string_view value = l.substr(5);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
      done = data_lines == 0 && value == "[DONE]";
      ++data_lines;
      has_fields = true;
      return;
    }
    std::string_view field = l;
    std::string_view value;
    if (const size_t colon = l.find(':'); colon != std::string_view::npos) {
      field = l.substr(0, colon);
      value = l.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      done = data_lines == 0 && value == "[DONE]";
      ++data_lines;
      has_fields = true;
    } else if (field == "event") {
      has_fields = true;
    } else if (field == "id") {
      if (value.find('\0') == std::string_view::npos) has_fields = true;
    } else if (field == "retry") {
      if (!value.empty() &&
          std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        has_fields = true;
      }
    }
  }
};

}  // namespace

size_t last_event_boundary(std::string_view s, size_t from) {
  for (size_t i = s.size(); i >= 2 && i >= from; --i) {
    if (boundary_at(s, i)) return i;
  }
  return 0;
}

size_t first_event_boundary(std::string_view s, size_t from) {
  for (size_t i = std::max<size_t>(from, 2); i <= s.size(); ++i) {
    if (boundary_at(s, i)) return i;
  }
  return 0;
}

bool ends_at_event_boundary(std::string_view s) {
  return s.size() >= 2 && boundary_at(s, s.size());
}

size_t count_sse_events(std::string_view chunk) {
  Counter c;
  const char* p = chunk.data();
  const char* const end = p + chunk.size();
  if (std::memchr(p, '\r', chunk.size()) == nullptr) {
    // The common case: LF line ends only, visited through a bitmask of the LFs of each block
    // (a memchr call per line cost more than the line). An unterminated last line is not part
    // of a whole event.
    const char* line = p;
    const char* q = p;
    if constexpr (kBlock != 0) {
      for (; static_cast<size_t>(end - q) >= kBlock; q += kBlock) {
        for (unsigned mask = eq_mask(q, '\n'); mask != 0; mask &= mask - 1) {
          const char* lf = q + __builtin_ctz(mask);
          c.line(std::string_view(line, static_cast<size_t>(lf - line)));
          line = lf + 1;
        }
      }
    }
    for (; q < end; ++q) {
      if (*q == '\n') {
        c.line(std::string_view(line, static_cast<size_t>(q - line)));
        line = q + 1;
      }
    }
    return c.events;
  }
  while (p < end) {
    const char* eol = p;
    while (eol < end && !is_eol(*eol)) ++eol;
    if (eol == end) break;
    c.line(std::string_view(p, eol - p));
    p = eol + 1;
    if (*eol == '\r' && p < end && *p == '\n') ++p;
  }
  return c.events;
}

namespace {

constexpr std::string_view kUsageKey = "\"usage\"";

// The first `"usage"` in [p, end), or null. Every byte of every relayed stream goes through
// this, so it is the SIMD substring search of W. Mula ("SIMD-friendly algorithms for substring
// searching"): 16 candidate positions at once are those with 'u' one byte and 'g' four bytes
// after them (rare pairs in JSON, unlike the quotes at both ends), each checked in full.
// glibc's memmem cost about 2 instructions a byte here.
const char* find_usage_key(const char* p, const char* end) {
  constexpr size_t n = kUsageKey.size();
  if constexpr (kBlock != 0) {
    // A block tests starts p..p+kBlock-1 and reads up to p+4+kBlock-1.
    for (; static_cast<size_t>(end - p) >= kBlock + 4; p += kBlock) {
      for (unsigned mask = eq_mask(p + 1, 'u') & eq_mask(p + 4, 'g'); mask != 0;
           mask &= mask - 1) {
        const char* c = p + __builtin_ctz(mask);
        if (static_cast<size_t>(end - c) >= n && std::memcmp(c, kUsageKey.data(), n) == 0) {
          return c;
        }
      }
    }
  }
  for (; static_cast<size_t>(end - p) >= n; ++p) {
    if (p[1] == 'u' && std::memcmp(p, kUsageKey.data(), n) == 0) return p;
  }
  return nullptr;
}

}  // namespace

size_t first_usage_candidate(std::string_view chunk) {
  static constexpr std::string_view kKey = kUsageKey;
  const char* const begin = chunk.data();
  const char* p = begin;
  const char* const end = p + chunk.size();
  while (true) {
    const char* const at = find_usage_key(p, end);
    if (at == nullptr) return std::string_view::npos;
    p = at + kKey.size();
    const char* q = p;
    while (q < end && (*q == ' ' || *q == '\t')) ++q;
    if (q == end || *q != ':') return static_cast<size_t>(at - begin);
    ++q;
    while (q < end && (*q == ' ' || *q == '\t')) ++q;
    if (end - q < 4 || std::memcmp(q, "null", 4) != 0) return static_cast<size_t>(at - begin);
    p = q + 4;
  }
}

bool sse_may_carry_usage(std::string_view chunk) {
  return first_usage_candidate(chunk) != std::string_view::npos;
}

std::string_view SseEventBuffer::push(std::string_view bytes) {
  if (ready_end_ != 0) {
    const size_t keep = std::min<size_t>(3, ready_end_);
    pending_.erase(0, ready_end_ - keep);
    base_ = keep;
    ready_end_ = 0;
  }
  if (too_large_) return {};
  if (pending_.size() == base_ && bytes.size() >= 3 && ends_at_event_boundary(bytes)) {
    // Whole events and nothing pending: relay the read itself; keep only its last bytes.
    pending_.assign(bytes.substr(bytes.size() - 3));
    base_ = 3;
    return bytes;
  }
  const size_t old = pending_.size();
  pending_.append(bytes);
  // Nothing before `old` ends a new event, except a CR at `old` that the new bytes decide.
  const size_t from = std::max(old, base_ + 1);
  const size_t cut = last_event_boundary(pending_, from);
  if (pending_.size() - base_ > max_event_bytes_) {
    // The event under way (or the first one this read completes) is measured from the last
    // boundary; events wholly inside this read are no larger than the read.
    const size_t first = cut != 0 ? first_event_boundary(pending_, from) : pending_.size();
    if (first - base_ > max_event_bytes_) {
      too_large_ = true;
      return {};
    }
  }
  if (cut == 0) return {};
  ready_end_ = cut;
  return std::string_view(pending_).substr(base_, cut - base_);
}

}  // namespace sluice::http
