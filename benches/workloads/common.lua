-- Shared by the wrk scripts of scripts/bench: thread numbering and one machine-readable
-- summary line (BENCH key=value ...) that the bench script parses.
local common = {}

local next_thread = 0

-- Gives every wrk thread its number (global `tid` in the thread's environment).
function common.setup(thread)
   thread:set("tid", next_thread)
   next_thread = next_thread + 1
end

function common.done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
      "p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end

return common
