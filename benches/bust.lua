-- wrk script: the tile paths in $URLS_FILE, cycled as benches/cycle.lua does, each asked
-- with a filter that no request has used before: the whole world as a spatial filter, its
-- west edge moved by a billionth of a degree per request. Every answer is cut afresh (the
-- cache keys tiles by their filter, so it cannot answer) and then stored, churning the cache.
-- With GZIP=1 every request says Accept-Encoding: gzip. Run under benches/counted.lua.
local paths = {}
local i = 0
local n = 0
local headers = {}

function init(args)
  for line in io.lines(os.getenv("URLS_FILE")) do
    paths[#paths + 1] = line
  end
  if os.getenv("GZIP") == "1" then
    headers["Accept-Encoding"] = "gzip"
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#paths)
  -- thread_no is set by benches/counted.lua's setup; 1 without it.
  n = (thread_no or 1) * 100000000
end

function request()
  i = i % #paths + 1
  n = n + 1
  local filter = string.format("S_INTERSECTS(geometry,BBOX(-179.%09d,-85,179,85))", n)
  return wrk.format("GET", paths[i] .. "?filter=" .. filter, headers)
end
