-- wrk script: another wrk script ($SCRIPT; benches/cycle.lua by default) plus a count of the
-- answers by status, so that 503s (load shed) are told apart from other errors: wrk alone
-- only counts "Non-2xx or 3xx". At the end it prints `status CODE COUNT` lines and one
-- `socket_errors connect N read N write N timeout N` line.
--
--   SCRIPT=benches/bust.lua URLS_FILE=tiles.txt wrk -t1 -c4 -d60s -s benches/counted.lua URL
dofile(os.getenv("SCRIPT") or "benches/cycle.lua")

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_no", #threads)
end

counts = {}

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("counts")) do
      total[code] = (total[code] or 0) + n
    end
  end
  for code, n in pairs(total) do
    io.write(string.format("status %d %d\n", code, n))
  end
  local e = summary.errors
  io.write(string.format("socket_errors connect %d read %d write %d timeout %d\n",
    e.connect, e.read, e.write, e.timeout))
end
