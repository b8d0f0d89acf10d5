-- wrk script: read a pack's tiles by HTTP range, as MapLibre's pmtiles protocol does: cycle
-- through the byte ranges in $RANGES_FILE (one "start end" per line, end inclusive) of the
-- pack at $PACK_PATH, each connection starting at its own offset.
local ranges = {}
local i = 0
local path

function init(args)
  for line in io.lines(os.getenv("RANGES_FILE")) do
    ranges[#ranges + 1] = "bytes=" .. line:gsub(" ", "-")
  end
  path = os.getenv("PACK_PATH")
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#ranges)
end

function request()
  i = i % #ranges + 1
  return wrk.format("GET", path, { ["Range"] = ranges[i] })
end
