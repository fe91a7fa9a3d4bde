-- wrk script: POSTs a small JSON body the way an OpenWhisk client invokes an
-- action, and prints one machine-readable line when done:
--
--   RESULT requests=N errors=N non2xx=N rps=X p50_us=X p90_us=X p99_us=X max_us=X mean_us=X
--
-- Environment:
--   WISP_KEY    uuid:key, sent as "Authorization: Basic base64(uuid:key)"
--               (omitted when unset or empty)
--   BENCH_PATH  request path (default: the blocking result=true invoke of
--               the echo action in the default namespace)
--   BENCH_BODY  request body (default {"n":1,"msg":"hello"})
--
-- errors = connect + read + write + timeout errors + non2xx. non2xx is wrk's
-- own summary.errors.status, which counts replies with status >= 400 (wrk
-- has no 3xx counter); counting in a response() hook instead would make wrk
-- hand every reply to Lua and slow the client down. Requests that never get
-- a reply are in no counter at all (wrk only counts a timeout when a late
-- reply arrives); tools/bench/run spots them with Little's law,
-- rps * mean_us / 1e6 = connections actually served.
--
--   wrk -t1 -c1 -d10s -s tools/bench/invoke.lua http://127.0.0.1:PORT

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- plain arithmetic: works on Lua 5.1 and LuaJIT without the bit library
local function base64(s)
   local out = {}
   for i = 1, #s, 3 do
      local a, b, c = s:byte(i, i + 2)
      local n = a * 65536 + (b or 0) * 256 + (c or 0)
      local c1 = math.floor(n / 262144) % 64
      local c2 = math.floor(n / 4096) % 64
      local c3 = math.floor(n / 64) % 64
      local c4 = n % 64
      out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1) ..
         (b and B64:sub(c3 + 1, c3 + 1) or "=") ..
         (c and B64:sub(c4 + 1, c4 + 1) or "=")
   end
   return table.concat(out)
end

local function env(name, default)
   local v = os.getenv(name)
   if v == nil or v == "" then
      return default
   end
   return v
end

wrk.method = "POST"
wrk.path = env("BENCH_PATH", "/api/v1/namespaces/_/actions/echo?blocking=true&result=true")
wrk.body = env("BENCH_BODY", '{"n":1,"msg":"hello"}')
wrk.headers["Content-Type"] = "application/json"
local key = env("WISP_KEY", nil)
if key then
   wrk.headers["Authorization"] = "Basic " .. base64(key)
end

function done(summary, latency, requests)
   local e = summary.errors
   local non2xx = e.status
   local errors = e.connect + e.read + e.write + e.timeout + non2xx
   local secs = summary.duration / 1e6
   local rps = secs > 0 and summary.requests / secs or 0
   io.write(string.format(
      "RESULT requests=%d errors=%d non2xx=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f\n",
      summary.requests, errors, non2xx, rps,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean))
end
