// Resilience building blocks: jittered backoff, Retry-After / x-ratelimit-reset-* parsing, the
// per-target retry budget and circuit breaker (both over two half-window buckets).
#include "routing/resilience.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>

namespace sluice::routing {
namespace {

constexpr int64_t kMaxRetryAfterSeconds = 24 * 60 * 60;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Advances the two half-window buckets ([0] = previous, [1] = current) to `now`.
void roll_buckets(Clock::time_point now, Millis window, Clock::time_point& start, int64_t (&a)[2],
                  int64_t (&b)[2]) {
  const Millis half = window / 2;
  if (now < start + half) return;
  if (now >= start + window) {
    a[0] = a[1] = b[0] = b[1] = 0;
    start = now;
    return;
  }
  a[0] = a[1];
  b[0] = b[1];
  a[1] = b[1] = 0;
  start += half;
}

// A window shorter than 2ms would make the half-window buckets empty.
Millis sane_window(Millis w) { return std::max(w, Millis(2)); }

// ---- HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, obsolete RFC 850 and asctime forms ----

constexpr std::string_view kShortDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view kLongDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday"};
constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool done() const { return s_.empty(); }
  bool lit(std::string_view l) {
    if (s_.substr(0, l.size()) != l) return false;
    s_.remove_prefix(l.size());
    return true;
  }
  // Exactly `n` digits.
  bool digits(int n, int& out) {
    if (s_.size() < static_cast<size_t>(n)) return false;
    int v = 0;
    for (int i = 0; i < n; ++i) {
      if (!is_digit(s_[i])) return false;
      v = v * 10 + (s_[i] - '0');
    }
    s_.remove_prefix(n);
    out = v;
    return true;
  }
  bool month(int& out) {
    if (s_.size() < 3) return false;
    for (int i = 0; i < 12; ++i) {
      if (iequals(s_.substr(0, 3), kMonths[i])) {
        out = i;
        s_.remove_prefix(3);
        return true;
      }
    }
    return false;
  }
  // "HH:MM:SS"
  bool time_of_day(int& h, int& m, int& sec) {
    return digits(2, h) && lit(":") && digits(2, m) && lit(":") && digits(2, sec);
  }

 private:
  std::string_view s_;
};

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int year, int mon0) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return mon0 == 1 && is_leap(year) ? 29 : kDays[mon0];
}

std::optional<int64_t> to_unix(int year, int mon0, int day, int h, int m, int s) {
  if (day < 1 || day > days_in_month(year, mon0) || h > 23 || m > 59 || s > 60) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon0;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm));
}

std::optional<int64_t> parse_http_date(std::string_view v, int64_t now_unix_seconds) {
  size_t name_end = v.find_first_of(", ");
  if (name_end == std::string_view::npos) return std::nullopt;
  std::string_view name = v.substr(0, name_end);
  bool short_name = false, long_name = false;
  for (int i = 0; i < 7; ++i) {
    short_name = short_name || iequals(name, kShortDays[i]);
    long_name = long_name || iequals(name, kLongDays[i]);
  }
  Scanner sc(v.substr(name_end));
  int year = 0, mon = 0, day = 0, h = 0, m = 0, s = 0;
  if (short_name && sc.lit(", ")) {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    if (!(sc.digits(2, day) && sc.lit(" ") && sc.month(mon) && sc.lit(" ") && sc.digits(4, year) &&
          sc.lit(" ") && sc.time_of_day(h, m, s) && sc.lit(" GMT") && sc.done())) {
      return std::nullopt;
    }
  } else if (long_name && sc.lit(", ")) {
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    int yy = 0;
    if (!(sc.digits(2, day) && sc.lit("-") && sc.month(mon) && sc.lit("-") && sc.digits(2, yy) &&
          sc.lit(" ") && sc.time_of_day(h, m, s) && sc.lit(" GMT") && sc.done())) {
      return std::nullopt;
    }
    // A two-digit year more than 50 years in the future means the past century (RFC 9110).
    time_t now = static_cast<time_t>(now_unix_seconds);
    std::tm now_tm{};
    if (gmtime_r(&now, &now_tm) == nullptr) return std::nullopt;
    int now_year = now_tm.tm_year + 1900;
    year = now_year - now_year % 100 + yy;
    if (year > now_year + 50) year -= 100;
  } else if (short_name && sc.lit(" ")) {
    // asctime: "Sun Nov  6 08:49:37 1994"
    if (!(sc.month(mon) && sc.lit(" "))) return std::nullopt;
    if (sc.lit(" ")) {
      if (!sc.digits(1, day)) return std::nullopt;
    } else if (!sc.digits(2, day)) {
      return std::nullopt;
    }
    if (!(sc.lit(" ") && sc.time_of_day(h, m, s) && sc.lit(" ") && sc.digits(4, year) &&
          sc.done())) {
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  return to_unix(year, mon, day, h, m, s);
}

}  // namespace

Millis backoff_delay(const config::RetryPolicy& policy, int retry, Millis previous,
                     double random01) {
  const double base = std::max<double>(0, static_cast<double>(policy.backoff_base.count()));
  const double cap = std::max<double>(0, static_cast<double>(policy.backoff_cap.count()));
  if (!(random01 >= 0)) random01 = 0;  // also NaN
  if (random01 >= 1) random01 = std::nextafter(1.0, 0.0);
  // base * 2^(retry-1), doubling only while below the cap so large `retry` cannot overflow;
  // 64 doublings exceed any cap (and bound the loop when base is 0).
  double exp = base;
  for (int i = 1; i < retry && i <= 64 && exp < cap; ++i) exp *= 2;
  exp = std::min(exp, cap);

  double wait = exp;
  switch (policy.jitter) {
    case config::Jitter::none:
      break;
    case config::Jitter::full:
      wait = random01 * exp;
      break;
    case config::Jitter::equal:
      wait = exp / 2 + random01 * exp / 2;
      break;
    case config::Jitter::decorrelated: {
      double prev = std::max(base, static_cast<double>(previous.count()));
      double upper = std::max(0.0, prev * 3 - base);
      wait = std::min(cap, base + random01 * upper);
      break;
    }
  }
  wait = std::clamp(wait, 0.0, cap);
  return Millis(static_cast<int64_t>(wait));
}

std::optional<Millis> parse_retry_after(std::string_view value, int64_t now_unix_seconds) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), is_digit)) {
    int64_t secs = 0;
    for (char c : value) {
      secs = secs * 10 + (c - '0');
      if (secs > kMaxRetryAfterSeconds) {
        secs = kMaxRetryAfterSeconds;
        break;
      }
    }
    return Millis(secs * 1000);
  }
  auto when = parse_http_date(value, now_unix_seconds);
  if (!when) return std::nullopt;
  int64_t delta = std::clamp<int64_t>(*when - now_unix_seconds, 0, kMaxRetryAfterSeconds);
  return Millis(delta * 1000);
}

std::optional<Millis> parse_reset_duration(std::string_view value) {
  value = trim(value);
  if (value == "0") return Millis(0);
  if (value.empty()) return std::nullopt;
  using U128 = unsigned __int128;
  constexpr U128 kMaxNanos = static_cast<U128>(std::numeric_limits<int64_t>::max());
  U128 total_ns = 0;
  size_t i = 0;
  while (i < value.size()) {
    // <digits>[.<digits>]: at least one digit on either side of the dot.
    uint64_t whole = 0;
    size_t start = i;
    while (i < value.size() && is_digit(value[i])) {
      if (whole > (std::numeric_limits<uint64_t>::max() - 9) / 10) return std::nullopt;
      whole = whole * 10 + static_cast<uint64_t>(value[i] - '0');
      ++i;
    }
    bool have_digits = i > start;
    uint64_t frac = 0, scale = 1;
    if (i < value.size() && value[i] == '.') {
      ++i;
      size_t fstart = i;
      while (i < value.size() && is_digit(value[i])) {
        if (scale < 1'000'000'000'000'000'000ULL) {  // extra digits are below a nanosecond
          frac = frac * 10 + static_cast<uint64_t>(value[i] - '0');
          scale *= 10;
        }
        ++i;
      }
      have_digits = have_digits || i > fstart;
    }
    if (!have_digits) return std::nullopt;
    // Unit: longest match first ("ms" before "m").
    std::string_view rest = value.substr(i);
    uint64_t unit_ns = 0;
    size_t unit_len = 0;
    struct Unit {
      std::string_view name;
      uint64_t ns;
    };
    static constexpr Unit kUnits[] = {
        {"ns", 1},
        {"us", 1'000},
        {"\xC2\xB5s", 1'000},  // µs (micro sign)
        {"\xCE\xBCs", 1'000},  // μs (Greek mu)
        {"ms", 1'000'000},
        {"s", 1'000'000'000},
        {"m", 60'000'000'000ULL},
        {"h", 3'600'000'000'000ULL},
    };
    for (const auto& u : kUnits) {
      if (rest.substr(0, u.name.size()) == u.name) {
        unit_ns = u.ns;
        unit_len = u.name.size();
        break;
      }
    }
    if (unit_len == 0) return std::nullopt;
    i += unit_len;
    U128 part = static_cast<U128>(whole) * unit_ns;
    if (part > kMaxNanos) return std::nullopt;
    part += static_cast<U128>(frac) * unit_ns / scale;
    total_ns += part;
    if (total_ns > kMaxNanos) return std::nullopt;
  }
  // Round up: waiting a fraction of a millisecond too long beats retrying too early.
  return Millis(static_cast<int64_t>((total_ns + 999'999) / 1'000'000));
}

// ---- RetryBudget ----

RetryBudget::RetryBudget(const config::RetryPolicy& policy)
    : ratio_(std::max(0.0, policy.budget_ratio)),
      window_(sane_window(policy.budget_window)),
      min_retries_(std::max(0, policy.budget_min_retries)) {}

size_t ShardedCount::slot() {
  static std::atomic<size_t> next{0};
  thread_local const size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kSlots;
  return mine;
}

void RetryBudget::roll(Clock::time_point now) {
  requests_[1] += pending_.take();
  roll_buckets(now, window_, bucket_start_, requests_, retries_);
  fast_until_.store((bucket_start_ + window_ / 2).time_since_epoch().count(),
                    std::memory_order_relaxed);
}

void RetryBudget::on_request_slow(Clock::time_point now) {
  std::lock_guard lock(mu_);
  roll(now);
  ++requests_[1];
}

bool RetryBudget::try_spend_retry(Clock::time_point now) {
  std::lock_guard lock(mu_);
  roll(now);
  const double requests = static_cast<double>(requests_[0] + requests_[1]);
  const double retries = static_cast<double>(retries_[0] + retries_[1]);
  if (retries >= std::max(static_cast<double>(min_retries_), ratio_ * requests)) return false;
  ++retries_[1];
  return true;
}

// ---- CircuitBreaker ----

std::string_view to_string(BreakerState s) {
  switch (s) {
    case BreakerState::closed:
      return "closed";
    case BreakerState::open:
      return "open";
    case BreakerState::half_open:
      return "half_open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(const config::BreakerConfig& config) : config_(config) {
  config_.window = sane_window(config_.window);
  config_.cooldown = std::max(config_.cooldown, Millis(0));
  config_.half_open_probes = std::max(1, config_.half_open_probes);
  config_.min_requests = std::max(1, config_.min_requests);
}

void CircuitBreaker::roll(Clock::time_point now) const {
  requests_[1] += pending_successes_.take();
  roll_buckets(now, config_.window, bucket_start_, requests_, failures_);
  fast_until_.store(state_ == BreakerState::closed
                        ? (bucket_start_ + config_.window / 2).time_since_epoch().count()
                        : 0,
                    std::memory_order_relaxed);
}

void CircuitBreaker::set_state(BreakerState s) {
  if (s == state_) return;
  state_ = s;
  closed_.store(s == BreakerState::closed, std::memory_order_relaxed);
  if (s != BreakerState::closed) fast_until_.store(0, std::memory_order_relaxed);
  transitions_.fetch_add(1, std::memory_order_relaxed);
}

bool CircuitBreaker::allow_slow(Clock::time_point now) {
  std::lock_guard lock(mu_);
  switch (state_) {
    case BreakerState::closed:
      return true;
    case BreakerState::open:
      if (now < opened_at_ + config_.cooldown) return false;
      set_state(BreakerState::half_open);
      probes_in_flight_ = 0;
      [[fallthrough]];
    case BreakerState::half_open:
      if (probes_in_flight_ >= config_.half_open_probes) return false;
      ++probes_in_flight_;
      return true;
  }
  return false;
}

void CircuitBreaker::on_success_slow(Clock::time_point now) {
  std::lock_guard lock(mu_);
  switch (state_) {
    case BreakerState::closed:
      roll(now);
      ++requests_[1];
      break;
    case BreakerState::half_open:
      probes_in_flight_ = 0;
      set_state(BreakerState::closed);
      pending_successes_.take();  // admitted before the breaker opened: the window restarts
      requests_[0] = requests_[1] = failures_[0] = failures_[1] = 0;
      bucket_start_ = now;
      roll(now);  // renews the lock-free window
      break;
    case BreakerState::open:  // a request admitted before the breaker opened: ignored
      break;
  }
}

void CircuitBreaker::on_failure(Clock::time_point now) {
  std::lock_guard lock(mu_);
  switch (state_) {
    case BreakerState::closed: {
      roll(now);
      ++requests_[1];
      ++failures_[1];
      if (!config_.enabled) break;
      const int64_t requests = requests_[0] + requests_[1];
      const int64_t failures = failures_[0] + failures_[1];
      if (requests >= config_.min_requests &&
          static_cast<double>(failures) / static_cast<double>(requests) > config_.failure_ratio) {
        set_state(BreakerState::open);
        opened_at_ = now;
      }
      break;
    }
    case BreakerState::half_open:
      probes_in_flight_ = std::max(0, probes_in_flight_ - 1);
      set_state(BreakerState::open);
      opened_at_ = now;
      break;
    case BreakerState::open:  // a request admitted before the breaker opened: ignored
      break;
  }
}

void CircuitBreaker::on_abandon() {
  std::lock_guard lock(mu_);
  if (state_ == BreakerState::half_open) probes_in_flight_ = std::max(0, probes_in_flight_ - 1);
}

BreakerState CircuitBreaker::state(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  if (state_ == BreakerState::open && now >= opened_at_ + config_.cooldown) {
    return BreakerState::half_open;
  }
  return state_;
}

double CircuitBreaker::failure_ratio(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  roll(now);
  const int64_t requests = requests_[0] + requests_[1];
  if (requests == 0) return 0;
  return static_cast<double>(failures_[0] + failures_[1]) / static_cast<double>(requests);
}

}  // namespace sluice::routing
