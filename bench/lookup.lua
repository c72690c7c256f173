-- wrk script: GET {path}?lon=&lat= at random points of the demo county's bounding box.
local path = os.getenv("LOOKUP_PATH") or "/grids/at"
local key = os.getenv("GRIDWATCH_KEY")
math.randomseed(os.time() + math.floor(os.clock() * 1e6))

request = function()
  local lon = 100.27 + math.random() * 1.03
  local lat = 36.74 + math.random() * 0.85
  return wrk.format("GET", string.format("%s?lon=%.6f&lat=%.6f", path, lon, lat),
                    {["Authorization"] = "Bearer " .. key})
end
