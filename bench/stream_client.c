// stream_client — many concurrent SSE chat streams from one thread, with per-event latency.
//
// Used by bench/run.sh (scenario slow-streams); built there with `cc -O2 -o stream_client
// bench/stream_client.c`. Opens N connections to HOST:PORT, spread evenly over --ramp-ms, sends
// one streaming `POST /v1/chat/completions` on each and reads the answers with one epoll loop.
//
// Every `data:` line of an answer is an event. With sluice-mock's `x-mock-timestamps: 1` each
// content delta carries `"content":"<20 digits> "`: the CLOCK_REALTIME nanoseconds at which the
// mock handed the event to its socket. The client subtracts that stamp from the time of the read
// that completed the event's line and records the difference in a histogram (1 us buckets up to
// 100 ms, 1 ms buckets up to 10 s, then an overflow bucket): the latency of an event from the upstream's socket to the
// client, through whatever is in between. The parser does not care where TCP reads or HTTP
// chunks split the events.
//
// A stream is complete when its response (200, chunked, Content-Length or read-until-close) has
// ended after a `data: [DONE]` line and, with --expect N, at least N stamped events. Errors:
// connect (refused, unreachable, no local port), io (reset, or closed before the response ended),
// status (not 200), short (ended without [DONE] or with fewer than N stamped events), timeout
// (still open at --timeout-s). At the end it prints one line on stdout:
//
//   STREAMS_RESULT streams=N completed=N events=N stamped=N errors=N err_connect=N err_io=N
//     err_status=N err_short=N err_timeout=N lat_p50_us=N lat_p90_us=N lat_p99_us=N
//     lat_p999_us=N lat_max_us=N lat_neg=N wall_s=F cpu_s=F cpu_pct=F peak_open=N
//     dur_p50_ms=F dur_p99_ms=F dur_max_ms=F
//
// (one line; events = every `data:` line, [DONE] included; stamped = events with a stamp, the
// latency samples; cpu_* = this process's own user+system time, to show it was not the
// bottleneck; peak_open = most connections open at once; dur_* = how long the completed streams
// took from connect() to the end of the response: against the upstream's nominal pacing, e.g.
// 100 events x 20 ms = 2 s, it shows whether the upstream, the path or the client kept up). Exit status 0 when it ran (whatever the errors), 2 on bad arguments.
//
// usage: stream_client HOST PORT N [--ramp-ms 1000] [--timeout-s 120] [--expect N]
//                      [--path /v1/chat/completions] [--body JSON] [--header 'Name: value']...
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// Latency histogram: 1 us buckets below 100 ms, 1 ms buckets from 100 ms to 10 s, then one
// overflow bucket (reported as 10 s).
enum { HIST_FINE = 100000, HIST_COARSE = 9900, HIST_N = HIST_FINE + HIST_COARSE + 1 };
enum { LINE_CAP = 65536, HEAD_CAP = 16384, MAX_HEADERS = 32 };

enum state { S_CONNECTING, S_SENDING, S_HEAD, S_BODY, S_CLOSED };
enum body_kind { B_CHUNKED, B_LENGTH, B_UNTIL_CLOSE };
enum chunk_state { C_SIZE, C_EXT, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER, C_TRAILER_LF };

struct conn {
  int fd;
  enum state st;
  size_t sent;
  char *head;  // response head being assembled (HEAD_CAP)
  size_t head_len;
  enum body_kind kind;
  unsigned long long remaining;  // B_LENGTH: body bytes left; C_DATA: chunk bytes left
  enum chunk_state cs;
  int size_digits;
  int trailer_empty;  // the trailer line being read is empty so far
  char *line;         // current SSE line (LINE_CAP, allocated on the first body byte)
  size_t line_len;
  int line_overflow;
  int saw_done;
  long stamped;
  uint64_t t_open;  // CLOCK_MONOTONIC at connect()
};

static struct {
  long streams, completed, events, stamped;
  long err_connect, err_io, err_status, err_short, err_timeout;
  long open, peak_open;
  long lat_neg;
  uint64_t lat_max_ns;
  uint32_t hist[HIST_N];  // [HIST_N - 1] = overflow
  long expect;
  double *dur_ms;  // duration of each completed stream (connect -> end of response)
} g;

static const char *first_error;

static uint64_t now_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void) {
  fprintf(stderr,
          "usage: stream_client HOST PORT N [--ramp-ms 1000] [--timeout-s 120] [--expect N]\n"
          "                     [--path /v1/chat/completions] [--body JSON] [--header 'Name: value']...\n");
  exit(2);
}

static void note_error(const char *what) {
  if (!first_error) first_error = what;
}

static void record_latency(uint64_t recv_ns, uint64_t stamp_ns) {
  g.stamped++;
  if (recv_ns < stamp_ns) {  // cannot happen on one host's clock unless it was stepped
    g.lat_neg++;
    g.hist[0]++;
    return;
  }
  uint64_t d = recv_ns - stamp_ns;
  if (d > g.lat_max_ns) g.lat_max_ns = d;
  uint64_t us = d / 1000;
  size_t b = us < HIST_FINE ? us
             : us < HIST_FINE + HIST_COARSE * 1000ull ? HIST_FINE + (us - HIST_FINE) / 1000
                                                     : HIST_N - 1;
  g.hist[b]++;
}

static long bucket_us(long i) {  // lower bound of bucket i
  return i < HIST_FINE ? i : HIST_FINE + (i - HIST_FINE) * 1000;
}

static long percentile_us(double p) {  // the bucket where the cumulative count reaches p
  if (g.stamped == 0) return 0;
  double want = p / 100.0 * (double)g.stamped;
  uint64_t acc = 0;
  for (long i = 0; i < HIST_N; i++) {
    acc += g.hist[i];
    if ((double)acc >= want && acc > 0) return bucket_us(i);
  }
  return bucket_us(HIST_N - 1);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double pick(double p) {  // percentile of the sorted stream durations
  if (g.completed == 0) return 0;
  long i = (long)(p / 100.0 * (double)g.completed + 0.5) - 1;
  if (i < 0) i = 0;
  if (i >= g.completed) i = g.completed - 1;
  return g.dur_ms[i];
}

// One complete SSE line (without its line break).
static void on_line(struct conn *c, const char *s, size_t n, uint64_t recv_ns) {
  if (n < 5 || memcmp(s, "data:", 5) != 0) return;
  g.events++;
  size_t i = 5;
  if (i < n && s[i] == ' ') i++;
  if (n - i == 6 && memcmp(s + i, "[DONE]", 6) == 0) {
    c->saw_done = 1;
    return;
  }
  static const char key[] = "\"content\":\"";
  const char *p = memmem(s + i, n - i, key, sizeof key - 1);
  if (!p) return;
  p += sizeof key - 1;
  if ((size_t)(s + n - p) < 21) return;
  uint64_t v = 0;
  for (int k = 0; k < 20; k++) {
    if (p[k] < '0' || p[k] > '9') return;
    v = v * 10 + (uint64_t)(p[k] - '0');
  }
  if (p[20] != ' ') return;
  c->stamped++;
  record_latency(recv_ns, v);
}

// Body bytes after transfer decoding: split into lines.
static void on_body(struct conn *c, const char *p, size_t n, uint64_t recv_ns) {
  if (!c->line) {
    c->line = malloc(LINE_CAP);
    if (!c->line) {
      perror("malloc");
      exit(1);
    }
  }
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (c->line_len + take > LINE_CAP) {
      c->line_overflow = 1;  // a line this long is not an event we measure; drop it
      c->line_len = 0;
    } else if (!c->line_overflow) {
      memcpy(c->line + c->line_len, p, take);
      c->line_len += take;
    }
    if (!nl) return;
    if (!c->line_overflow) {
      size_t len = c->line_len;
      if (len > 0 && c->line[len - 1] == '\r') len--;
      on_line(c, c->line, len, recv_ns);
    }
    c->line_len = 0;
    c->line_overflow = 0;
    p = nl + 1;
    n -= take + 1;
  }
}

static void finish(int epfd, struct conn *c, const char *err, long *counter) {
  if (c->st == S_CLOSED) return;
  if (counter) {
    (*counter)++;
    note_error(err);
  } else if (!c->saw_done || (g.expect > 0 && c->stamped < g.expect)) {
    g.err_short++;
    note_error("stream ended without [DONE] or with too few events");
  } else {
    g.dur_ms[g.completed++] = (double)(now_ns(CLOCK_MONOTONIC) - c->t_open) / 1e6;
  }
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  c->st = S_CLOSED;
  g.open--;
  free(c->head);
  c->head = NULL;
  free(c->line);
  c->line = NULL;
}

// Decodes the chunked framing; returns 1 when the terminating chunk and trailers are done,
// -1 on a framing error.
static int on_chunked(struct conn *c, const char *p, size_t n, uint64_t recv_ns) {
  size_t i = 0;
  while (i < n) {
    char ch = p[i];
    switch (c->cs) {
      case C_SIZE: {
        int d = -1;
        if (ch >= '0' && ch <= '9') d = ch - '0';
        else if (ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F') d = ch - 'A' + 10;
        if (d >= 0) {
          if (c->size_digits >= 15) return -1;
          c->remaining = c->remaining * 16 + (unsigned)d;
          c->size_digits++;
        } else if (c->size_digits == 0) {
          return -1;
        } else if (ch == '\r') {
          c->cs = C_SIZE_LF;
        } else if (ch == ';' || ch == ' ' || ch == '\t') {
          c->cs = C_EXT;
        } else {
          return -1;
        }
        i++;
        break;
      }
      case C_EXT:
        if (ch == '\r') c->cs = C_SIZE_LF;
        i++;
        break;
      case C_SIZE_LF:
        if (ch != '\n') return -1;
        i++;
        if (c->remaining == 0) {
          c->cs = C_TRAILER;
          c->trailer_empty = 1;
        } else {
          c->cs = C_DATA;
        }
        break;
      case C_DATA: {
        size_t take = n - i;
        if (take > c->remaining) take = (size_t)c->remaining;
        on_body(c, p + i, take, recv_ns);
        i += take;
        c->remaining -= take;
        if (c->remaining == 0) c->cs = C_DATA_CR;
        break;
      }
      case C_DATA_CR:
        if (ch != '\r') return -1;
        c->cs = C_DATA_LF;
        i++;
        break;
      case C_DATA_LF:
        if (ch != '\n') return -1;
        c->cs = C_SIZE;
        c->size_digits = 0;
        c->remaining = 0;
        i++;
        break;
      case C_TRAILER:
        if (ch == '\r') c->cs = C_TRAILER_LF;
        else c->trailer_empty = 0;
        i++;
        break;
      case C_TRAILER_LF:
        if (ch != '\n') return -1;
        i++;
        if (c->trailer_empty) return 1;
        c->cs = C_TRAILER;
        c->trailer_empty = 1;
        break;
    }
  }
  return 0;
}

static int header_is(const char *line, size_t len, const char *name, const char **value) {
  size_t nl = strlen(name);
  if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return 0;
  const char *v = line + nl + 1;
  while (v < line + len && (*v == ' ' || *v == '\t')) v++;
  *value = v;
  return 1;
}

// Parses the complete head (head_len bytes ending in \r\n\r\n). Returns the status, or -1.
static int parse_head(struct conn *c) {
  const char *h = c->head, *end = c->head + c->head_len;
  if (c->head_len < 12 || memcmp(h, "HTTP/1.", 7) != 0) return -1;
  int status = atoi(h + 9);
  c->kind = B_UNTIL_CLOSE;
  const char *line = memchr(h, '\n', c->head_len);
  while (line && line + 1 < end) {
    line++;
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol) break;
    size_t len = (size_t)(eol - line);
    if (len > 0 && line[len - 1] == '\r') len--;
    const char *v;
    if (header_is(line, len, "transfer-encoding", &v)) {
      if (memmem(v, len - (size_t)(v - line), "chunked", 7)) c->kind = B_CHUNKED;
    } else if (header_is(line, len, "content-length", &v) && c->kind != B_CHUNKED) {
      c->kind = B_LENGTH;
      c->remaining = strtoull(v, NULL, 10);
    }
    line = eol;
  }
  if (c->kind == B_CHUNKED) {
    c->cs = C_SIZE;
    c->size_digits = 0;
    c->remaining = 0;
  }
  return status;
}

// Handles bytes read from the socket.
static void on_bytes(int epfd, struct conn *c, const char *p, size_t n, uint64_t recv_ns) {
  if (c->st == S_HEAD) {
    size_t room = HEAD_CAP - c->head_len;
    size_t take = n < room ? n : room;
    memcpy(c->head + c->head_len, p, take);
    size_t old = c->head_len;
    c->head_len += take;
    char *eoh = memmem(c->head, c->head_len, "\r\n\r\n", 4);
    if (!eoh) {
      if (c->head_len == HEAD_CAP) finish(epfd, c, "response head too long", &g.err_io);
      return;
    }
    size_t head_end = (size_t)(eoh - c->head) + 4;
    c->head_len = head_end;
    int status = parse_head(c);
    if (status != 200) {
      if (status < 0) finish(epfd, c, "malformed response head", &g.err_io);
      else finish(epfd, c, "response status is not 200", &g.err_status);
      return;
    }
    c->st = S_BODY;
    size_t used = head_end - old;  // bytes of this read that belonged to the head
    p += used;
    n -= used;
    if (c->kind == B_LENGTH && c->remaining == 0) {
      finish(epfd, c, NULL, NULL);
      return;
    }
  }
  if (n == 0) return;
  switch (c->kind) {
    case B_CHUNKED: {
      int r = on_chunked(c, p, n, recv_ns);
      if (r < 0) finish(epfd, c, "bad chunked framing", &g.err_io);
      else if (r > 0) finish(epfd, c, NULL, NULL);
      break;
    }
    case B_LENGTH: {
      size_t take = n < c->remaining ? n : (size_t)c->remaining;
      on_body(c, p, take, recv_ns);
      c->remaining -= take;
      if (c->remaining == 0) finish(epfd, c, NULL, NULL);
      break;
    }
    case B_UNTIL_CLOSE:
      on_body(c, p, n, recv_ns);
      break;
  }
}

static void on_readable(int epfd, struct conn *c) {
  static char buf[65536];
  for (;;) {
    ssize_t r = read(c->fd, buf, sizeof buf);
    if (r > 0) {
      on_bytes(epfd, c, buf, (size_t)r, now_ns(CLOCK_REALTIME));
      if (c->st == S_CLOSED || (size_t)r < sizeof buf) return;
      continue;
    }
    if (r == 0) {
      if (c->st == S_BODY && c->kind == B_UNTIL_CLOSE) {
        if (c->line_len > 0) on_body(c, "\n", 1, now_ns(CLOCK_REALTIME));
        finish(epfd, c, NULL, NULL);
      } else {
        finish(epfd, c, "connection closed before the response ended", &g.err_io);
      }
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EINTR) continue;
    finish(epfd, c, strerror(errno), &g.err_io);
    return;
  }
}

static void on_writable(int epfd, struct conn *c, const char *req, size_t req_len) {
  if (c->st == S_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      finish(epfd, c, strerror(err), &g.err_connect);
      return;
    }
    c->st = S_SENDING;
  }
  while (c->sent < req_len) {
    ssize_t w = send(c->fd, req + c->sent, req_len - c->sent, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      finish(epfd, c, strerror(errno), &g.err_io);
      return;
    }
    c->sent += (size_t)w;
  }
  c->st = S_HEAD;
  c->head = malloc(HEAD_CAP);
  if (!c->head) {
    perror("malloc");
    exit(1);
  }
  c->head_len = 0;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void open_conn(int epfd, struct conn *c, const struct sockaddr_storage *addr, socklen_t alen) {
  memset(c, 0, sizeof *c);
  g.streams++;
  c->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    c->st = S_CLOSED;
    g.err_connect++;
    note_error(strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  g.open++;
  if (g.open > g.peak_open) g.peak_open = g.open;
  c->st = S_CONNECTING;
  c->t_open = now_ns(CLOCK_MONOTONIC);
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    perror("epoll_ctl");
    exit(1);
  }
  if (connect(c->fd, (const struct sockaddr *)addr, alen) != 0 && errno != EINPROGRESS) {
    finish(epfd, c, strerror(errno), &g.err_connect);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) usage();
  const char *host = argv[1], *port = argv[2];
  long n = strtol(argv[3], NULL, 10);
  if (n <= 0) usage();
  long ramp_ms = 1000, timeout_s = 120;
  const char *path = "/v1/chat/completions";
  const char *body = "{\"model\":\"mock-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"stream\":true}";
  const char *headers[MAX_HEADERS];
  int nh = 0;
  for (int i = 4; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage();
    if (strcmp(a, "--ramp-ms") == 0) ramp_ms = strtol(argv[++i], NULL, 10);
    else if (strcmp(a, "--timeout-s") == 0) timeout_s = strtol(argv[++i], NULL, 10);
    else if (strcmp(a, "--expect") == 0) g.expect = strtol(argv[++i], NULL, 10);
    else if (strcmp(a, "--path") == 0) path = argv[++i];
    else if (strcmp(a, "--body") == 0) body = argv[++i];
    else if (strcmp(a, "--header") == 0 && nh < MAX_HEADERS) headers[nh++] = argv[++i];
    else usage();
  }
  if (ramp_ms < 0 || timeout_s <= 0) usage();

  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
  int rc = getaddrinfo(host, port, &hints, &ai);
  if (rc != 0) {
    fprintf(stderr, "stream_client: %s:%s: %s\n", host, port, gai_strerror(rc));
    return 2;
  }
  struct sockaddr_storage addr;
  socklen_t alen = (socklen_t)ai->ai_addrlen;
  memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)n + 64 ? (rlim_t)n + 64 : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  // The request, identical on every connection.
  size_t cap = 1024 + strlen(path) + strlen(host) + strlen(body);
  for (int i = 0; i < nh; i++) cap += strlen(headers[i]) + 2;
  char *req = malloc(cap);
  if (!req) return 1;
  int len = snprintf(req, cap,
                     "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                     "Accept: text/event-stream\r\nContent-Length: %zu\r\n",
                     path, host, port, strlen(body));
  for (int i = 0; i < nh; i++) len += snprintf(req + len, cap - (size_t)len, "%s\r\n", headers[i]);
  len += snprintf(req + len, cap - (size_t)len, "\r\n%s", body);
  size_t req_len = (size_t)len;

  struct conn *conns = calloc((size_t)n, sizeof *conns);
  g.dur_ms = calloc((size_t)n, sizeof *g.dur_ms);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!conns || !g.dur_ms || epfd < 0) {
    perror("stream_client");
    return 1;
  }
  struct epoll_event evs[512];
  uint64_t t0 = now_ns(CLOCK_MONOTONIC);
  uint64_t deadline = t0 + (uint64_t)ramp_ms * 1000000ull + (uint64_t)timeout_s * 1000000000ull;
  long opened = 0;
  uint64_t t_end = t0;
  for (;;) {
    uint64_t now = now_ns(CLOCK_MONOTONIC);
    t_end = now;
    // Open every connection whose turn has come (connection i at t0 + i * ramp / n).
    while (opened < n && (ramp_ms == 0 || now >= t0 + (uint64_t)((double)opened * (double)ramp_ms * 1e6 / (double)n))) {
      open_conn(epfd, &conns[opened], &addr, alen);
      opened++;
    }
    if (opened == n && g.open == 0) break;
    if (now >= deadline) break;
    int wait_ms = 1000;
    if (opened < n) {
      uint64_t next = t0 + (uint64_t)((double)opened * (double)ramp_ms * 1e6 / (double)n);
      wait_ms = next > now ? (int)((next - now + 999999) / 1000000) : 0;
    }
    uint64_t left_ms = (deadline - now) / 1000000 + 1;
    if ((uint64_t)wait_ms > left_ms) wait_ms = (int)left_ms;
    int k = epoll_wait(epfd, evs, (int)(sizeof evs / sizeof evs[0]), wait_ms);
    if (k < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < k; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c->st == S_CLOSED) continue;
      uint32_t e = evs[i].events;
      if (c->st == S_CONNECTING || c->st == S_SENDING) {
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(epfd, c, req, req_len);
      } else if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        on_readable(epfd, c);
      }
    }
  }
  for (long i = 0; i < n; i++) {
    if (conns[i].st != S_CLOSED) finish(epfd, &conns[i], "timed out", &g.err_timeout);
  }
  double wall = (double)(t_end - t0) / 1e9;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  qsort(g.dur_ms, (size_t)g.completed, sizeof *g.dur_ms, cmp_double);
  long errors = g.err_connect + g.err_io + g.err_status + g.err_short + g.err_timeout;
  if (first_error) fprintf(stderr, "stream_client: first error: %s\n", first_error);
  printf("STREAMS_RESULT streams=%ld completed=%ld events=%ld stamped=%ld errors=%ld err_connect=%ld "
         "err_io=%ld err_status=%ld err_short=%ld err_timeout=%ld lat_p50_us=%ld lat_p90_us=%ld "
         "lat_p99_us=%ld lat_p999_us=%ld lat_max_us=%llu lat_neg=%ld wall_s=%.3f cpu_s=%.3f "
         "cpu_pct=%.1f peak_open=%ld dur_p50_ms=%.1f dur_p99_ms=%.1f dur_max_ms=%.1f\n",
         g.streams, g.completed, g.events, g.stamped, errors, g.err_connect, g.err_io, g.err_status,
         g.err_short, g.err_timeout, percentile_us(50), percentile_us(90), percentile_us(99),
         percentile_us(99.9), (unsigned long long)(g.lat_max_ns / 1000), g.lat_neg, wall, cpu,
         wall > 0 ? 100.0 * cpu / wall : 0.0, g.peak_open, pick(50), pick(99),
         g.completed ? g.dur_ms[g.completed - 1] : 0.0);
  fflush(stdout);
  return 0;
}
