-- POST /_security/api_key with a name no other request uses: the prefix given after "--", the
-- thread's number and the count of requests it has sent. Counts requests sent, 200 and other
-- answers, so that bench.http can check them against the keys the database holds afterwards: a
-- request still in flight when wrk stops may have created its key without its answer counted.
-- The requests carry an API key, so each new key asks for no privileges, as a key created with a
-- key must.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")
local threads = {}

function setup(thread)
  thread:set("number", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1]
  sent = 0
  ok = 0
  failed = 0
  wrk.method = "POST"
  wrk.path = "/_security/api_key"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, string.format(
    '{"name": "%s-%d-%d", "role_descriptors": {"none": {}}}', prefix, number, sent
  ))
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local totals = { sent = 0, ok = 0, failed = 0 }
  for _, thread in ipairs(threads) do
    for name in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  io.write(report.json(summary, latency, string.format(
    ', "sent": %d, "ok": %d, "failed": %d', totals.sent, totals.ok, totals.failed
  )))
end
