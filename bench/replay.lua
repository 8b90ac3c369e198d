-- wrk script: replay the requests in BENCH_REQUESTS (one per line: METHOD \t PATH \t BODY \t XFF),
-- each wrk thread taking every n-th line, so no request is sent twice while the file lasts.
local counter = 1
local threads = {}

function setup(thread)
  thread:set("id", counter)
  thread:set("nthreads", 0)
  table.insert(threads, thread)
  counter = counter + 1
end

local lines = {}
pos, step, reused = 0, 1, 0

function init(args)
  local path = os.getenv("BENCH_REQUESTS")
  local i = 0
  for line in io.lines(path) do
    i = i + 1
    lines[i] = line
  end
  step = tonumber(os.getenv("BENCH_THREADS") or "1")
  pos = id - step
end

function request()
  pos = pos + step
  if pos > #lines then
    pos = ((id - 1) % #lines) + 1
    reused = reused + 1
  end
  local method, path, body, xff = lines[pos]:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?([^\t]*)$")
  -- A new connection per request, as nginx talks to its upstream by default (HTTP/1.0):
  -- with keep-alive, wrk's few long-lived connections would all stick to one worker.
  local headers = {["Connection"] = "close"}
  if method == "POST" then
    if body:sub(1, 1) == "{" then
      headers["Content-Type"] = "application/json"
    else
      headers["Content-Type"] = "application/x-www-form-urlencoded"
    end
  else
    body = nil
  end
  if xff ~= nil and xff ~= "" then
    headers["X-Forwarded-For"] = xff
  end
  return wrk.format(method, path, headers, body)
end

bad = ""  -- the first few statuses >= 400 this thread saw, for the report

function response(status, headers, body)
  if status >= 400 and #bad < 40 then
    bad = bad .. status .. " "
  end
end

function done(summary, latency, requests)
  local wrapped, statuses = 0, ""
  for _, t in ipairs(threads) do
    wrapped = wrapped + (t:get("reused") or 0)
    statuses = statuses .. (t:get("bad") or "")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "wrapped": %d, '
      .. '"bad_statuses": "%s"}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), wrapped, statuses))
end
