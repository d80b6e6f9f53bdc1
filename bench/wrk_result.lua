-- Shared by the wrk scripts of bench/ (loaded with dofile from the script's own directory):
-- done() prints one parseable line (latencies in microseconds):
--   BENCH_RESULT rps=<f> p50_us=<n> p99_us=<n> requests=<n> duration_us=<n> errors=<n> non2xx=<n> timeouts=<n>
function done(summary, latency, requests)
  local e = summary.errors
  local sock_errors = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH_RESULT rps=%.2f p50_us=%d p99_us=%d requests=%d duration_us=%d errors=%d non2xx=%d timeouts=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99),
    summary.requests, summary.duration, sock_errors, e.status, e.timeout))
end
