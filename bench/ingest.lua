-- wrk script: single-alert POSTs paced at RATE per second (all threads together), each a
-- new event of a random camera and type. Counts 2xx (acknowledged) and other answers.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_usec; } timeval;
  int gettimeofday(timeval *tv, void *tz);
]]
local tv = ffi.new("timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end

local threads = {}
local next_id = 1
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local types = {"fire_smoke", "flood_water", "sewer_overflow", "traffic_accident", "road_obstruction",
               "railway_intrusion", "livestock_on_road", "illegal_dumping", "fallen_person", "motion"}
counter, acked, failed = 0, 0, 0  -- globals: done() reads them per thread
local interval, next_at
local headers = {["Authorization"] = "Bearer " .. os.getenv("GRIDWATCH_KEY"), ["Content-Type"] = "application/json"}
local run = os.getenv("RUN_ID")
local path = os.getenv("INGEST_PATH") or "/alerts"
local cameras = tonumber(os.getenv("CAMERAS"))

local stop_posting_at
function init(args)
  -- each thread paces its share of the rate (the thread table lives in the main state only)
  interval = 1000 * tonumber(os.getenv("THREADS")) / tonumber(os.getenv("RATE"))
  -- in the last second only /health is asked, so no alert is in flight when wrk stops
  stop_posting_at = now_ms() + 1000 * (tonumber(os.getenv("RUN_SECONDS")) - 1)
  math.randomseed(tid * 7919)
end

function delay()
  local now = now_ms()
  if next_at == nil then next_at = now end
  next_at = next_at + interval
  local wait = next_at - now
  if wait < 0 then return 0 end
  return wait
end

function request()
  if now_ms() >= stop_posting_at then
    return wrk.format("GET", "/health")
  end
  counter = counter + 1
  local body = string.format(
    '{"source":"bench-%s","event_id":"%d-%d","camera_id":"CAM-%04d","type":"%s","score":0.8,"occurred_at":"%s"}',
    run, tid, counter, math.random(1, cameras), types[math.random(#types)], os.date("!%Y-%m-%dT%H:%M:%SZ"))
  return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
  if status >= 300 then
    failed = failed + 1
  elseif string.find(body, '"alert_id"', 1, true) then
    acked = acked + 1
  end
end

function done(summary, latency, requests)
  local a, f = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("acked")
    f = f + t:get("failed")
  end
  io.write(string.format("ACKED %d\nFAILED %d\n", a, f))
end
