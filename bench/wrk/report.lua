-- wrk's summary as one JSON line after "BENCH_RESULT", so that bench.http reads numbers, not prose.
-- Latencies are in microseconds, as wrk measures them.

local report = {}

function report.json(summary, latency, extra)
  local errors = summary.errors
  return string.format(
    'BENCH_RESULT {"duration_us": %d, "requests": %d, "errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d}, "latency_us": {"mean": %.1f, "max": %d, '
      .. '"p50": %d, "p90": %d, "p99": %d}%s}\n',
    summary.duration, summary.requests, errors.connect, errors.read, errors.write, errors.status,
    errors.timeout, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), extra or ""
  )
end

return report
