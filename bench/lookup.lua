-- wrk script: GET {path}?lon=&lat= at random points of the demo county's bounding box.
-- LOOKUP_RATE (requests a second for all connections, LOOKUP_CONNECTIONS of them) paces it;
-- unset, it goes as fast as it can. Counts answers other than 200 and 404 (a point outside
-- every grid is a fine answer) as failures.
local path = os.getenv("LOOKUP_PATH") or "/grids/at"
local key = os.getenv("GRIDWATCH_KEY")
local rate = tonumber(os.getenv("LOOKUP_RATE") or "0")
local connections = tonumber(os.getenv("LOOKUP_CONNECTIONS") or "1")
math.randomseed(os.time() + math.floor(os.clock() * 1e6))

local threads = {}
function setup(thread) table.insert(threads, thread) end
failed = 0

if rate > 0 then
  function delay() return 1000 * connections / rate end
end

request = function()
  local lon = 100.27 + math.random() * 1.03
  local lat = 36.74 + math.random() * 0.85
  return wrk.format("GET", string.format("%s?lon=%.6f&lat=%.6f", path, lon, lat),
                    {["Authorization"] = "Bearer " .. key})
end

function response(status, hdrs, body)
  if status ~= 200 and status ~= 404 then failed = failed + 1 end
end

function done(summary, latency, requests)
  local f = 0
  for _, t in ipairs(threads) do f = f + t:get("failed") end
  io.write(string.format("FAILED %d\n", f))
end
