-- A GET load with the headers given by -H, each connection pausing the milliseconds given after
-- "--" between an answer and its next request: a steady load below what the server can take.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")

function init(args)
  pause = tonumber(args[1])
end

function delay()
  return pause
end

function done(summary, latency, requests)
  io.write(report.json(summary, latency))
end
