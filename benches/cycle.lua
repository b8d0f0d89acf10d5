-- wrk script: cycle through the tile paths in $URLS_FILE, each connection starting at its
-- own offset; with GZIP=1 every request says Accept-Encoding: gzip, and with
-- ACCEPT_ENCODING set, it says that (for a browser: "gzip, deflate, br, zstd"); with
-- AUTHORIZATION set, every request sends it as its Authorization header.
local paths = {}
local i = 0
local headers = {}

function init(args)
  for line in io.lines(os.getenv("URLS_FILE")) do
    paths[#paths + 1] = line
  end
  local accept = os.getenv("ACCEPT_ENCODING")
  if accept and accept ~= "" then
    headers["Accept-Encoding"] = accept
  elseif os.getenv("GZIP") == "1" then
    headers["Accept-Encoding"] = "gzip"
  end
  local auth = os.getenv("AUTHORIZATION")
  if auth and auth ~= "" then
    headers["Authorization"] = auth
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#paths)
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], headers)
end
