-- wrk script for POST /api/event (bench/wrk_load.py writes the environment it reads).
--
-- BENCH_BODIES  a file of request bodies, one per line, sent in rotation (distinct sessions)
-- BENCH_UA      the User-Agent header
-- BENCH_RATE    requests per second for this wrk thread; 0 = as fast as the server answers.
--               Paced runs schedule sends on a fixed timeline (LuaJIT ffi clock): after each
--               response a connection waits for the next free slot, so the offered rate is
--               constant while the server keeps up (wrk's latency clock starts at the send).
-- BENCH_COUNT   "1" = count response statuses (parses responses in Lua: slower, for e2e only)
-- BENCH_HOSTS   optional "host:port,host:port,...": thread i connects to entry i (modulo the
--               count), with that Host header; wrk's URL gives only the path (and the
--               address of threads when unset). One wrk process spreads load over several
--               servers this way, and its latency histogram covers all of them.
--
-- done() prints one line "BENCH_JSON {...}" with totals, latency percentiles and statuses.

local bodies_path = os.getenv("BENCH_BODIES")
local ua = os.getenv("BENCH_UA") or "bench"
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local count_status = os.getenv("BENCH_COUNT") == "1"
local hosts = {}
for entry in string.gmatch(os.getenv("BENCH_HOSTS") or "", "[^,]+") do
  table.insert(hosts, entry)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  if #hosts > 0 then
    local entry = hosts[(#threads - 1) % #hosts + 1]
    local host, port = string.match(entry, "^(.+):(%d+)$")
    thread.addr = wrk.lookup(host, port)[1]
    thread:set("bench_host", entry)
  end
end

local requests = {}
local index = 0

function init(args)
  local headers = { ["Content-Type"] = "text/plain;charset=UTF-8", ["User-Agent"] = ua,
                    ["Origin"] = "https://shop.example.com" }
  if bench_host then headers["Host"] = bench_host end
  for line in io.lines(bodies_path) do
    table.insert(requests, wrk.format("POST", "/api/event", headers, line))
  end
  n2xx, n4xx, n5xx, nother = 0, 0, 0, 0
end

function request()
  index = index % #requests + 1
  return requests[index]
end

if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clk_id, bench_timespec *tp);
  ]]
  local ts = ffi.new("bench_timespec")
  local interval = 1000.0 / rate
  local next_at = nil
  local function now_ms()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000.0 + tonumber(ts.tv_nsec) / 1e6
  end
  function delay()
    local t = now_ms()
    if next_at == nil then next_at = t end
    next_at = next_at + interval
    local d = next_at - t
    if d < 0 then return 0 end
    return d
  end
end

if count_status then
  function response(status, headers, body)
    if status >= 200 and status < 300 then n2xx = n2xx + 1
    elseif status >= 400 and status < 500 then n4xx = n4xx + 1
    elseif status >= 500 then n5xx = n5xx + 1
    else nother = nother + 1 end
  end
end

function done(summary, latency, requests)
  local s = { n2xx = 0, n4xx = 0, n5xx = 0, nother = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(s) do s[k] = s[k] + (t:get(k) or 0) end
  end
  local e = summary.errors
  local out = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"lat_mean_us":%.1f,"lat_max_us":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"n2xx":%d,"n4xx":%d,"n5xx":%d,' ..
    '"nother":%d,"counted":%s}',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), s.n2xx, s.n4xx, s.n5xx, s.nother,
    tostring(count_status))
  io.write("BENCH_JSON " .. out .. "\n")
end
