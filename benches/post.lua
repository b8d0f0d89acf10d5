-- wrk script: single-feature POSTs scattered over the first copy of the city, each its own
-- durable transaction: urban problem reports, or with LAYER=schools, schools (a point layer
-- without clusters, so that only the store and the index take part). KEY is an access key
-- that may write the layer.
local n = 0
local headers = {}
local layer = os.getenv("LAYER") or "urban_problems"

function init(args)
  headers["Authorization"] = "Bearer " .. os.getenv("KEY")
  headers["Content-Type"] = "application/geo+json"
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  n = n + 1
  local lon = 24.93 + math.random() * 0.02
  local lat = 60.165 + math.random() * 0.01
  local body
  if layer == "schools" then
    body = string.format(
      '{"type":"Feature","geometry":{"type":"Point","coordinates":[%.6f,%.6f]},' ..
      '"properties":{"name":"Bench school %d","amenity":"school"}}', lon, lat, n)
  else
    body = string.format(
      '{"type":"Feature","geometry":{"type":"Point","coordinates":[%.6f,%.6f]},' ..
      '"properties":{"ticket_no":"BENCH-%d","category":"litter","status":"new",' ..
      '"reported_at":"2026-11-22T12:00:00Z"}}', lon, lat, n)
  end
  return wrk.format("POST", "/collections/" .. layer .. "/items", headers, body)
end
