-- wrk script: POST one JSON body to /score with a bearer key, and print one parsable line.
-- Usage: wrk -t1 -c16 -d10s -s bench/post.lua http://127.0.0.1:PORT/score -- BODY_FILE [KEY_FILE]
-- (the key comes from a file: a command line shows in ps)
function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["Content-Type"] = "application/json"
  if args[2] ~= nil and args[2] ~= "" then
    local keyfile = assert(io.open(args[2], "rb"))
    wrk.headers["Authorization"] = "Bearer " .. keyfile:read("*l")
    keyfile:close()
  end
end

-- errors.status counts responses with a status above 399; the others are socket errors.
function done(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
end
