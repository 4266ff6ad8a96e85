-- A GET load with the headers given by -H; only the summary is added to wrk's own report.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")

function done(summary, latency, requests)
  io.write(report.json(summary, latency))
end
