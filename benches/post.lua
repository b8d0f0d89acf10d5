-- wrk script: single-feature POSTs (urban problem reports scattered over the first copy of
-- the city), each its own durable transaction. KEY is an access key that may write
-- urban_problems.
local n = 0
local headers = {}

function init(args)
  headers["Authorization"] = "Bearer " .. os.getenv("KEY")
  headers["Content-Type"] = "application/geo+json"
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  n = n + 1
  local lon = 24.93 + math.random() * 0.02
  local lat = 60.165 + math.random() * 0.01
  local body = string.format(
    '{"type":"Feature","geometry":{"type":"Point","coordinates":[%.6f,%.6f]},' ..
    '"properties":{"ticket_no":"BENCH-%d","category":"litter","status":"new",' ..
    '"reported_at":"2026-11-22T12:00:00Z"}}', lon, lat, n)
  return wrk.format("POST", "/collections/urban_problems/items", headers, body)
end
