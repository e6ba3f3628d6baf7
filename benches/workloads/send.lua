-- W2 / W2S / W2E / W5 load: POST /bridge/v1/messages spread over AGENTS agents, agent a<i>
-- posting into its own room !r<i> (!e<i> with ROOM_PREFIX, W2E; the i-th of the
-- comma-separated ROOM_IDS when given, W5's rooms on a real homeserver; AGENTS=1 is the
-- ordered single-room case).
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup = common.setup
done = common.done

local agents = tonumber(os.getenv("AGENTS") or "64")
-- W2E sends into encrypted rooms (!e<i>: see the stand-in).
local room_prefix = os.getenv("ROOM_PREFIX") or "!r"
local room_ids = {}
for id in string.gmatch(os.getenv("ROOM_IDS") or "", "[^,]+") do
   room_ids[#room_ids + 1] = id
end
local token = os.getenv("BRIDGE_TOKEN")
local n = 0
local headers

function init(args)
   headers = {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
   }
   -- Threads start on different agents.
   n = (tid or 0) * 17
end

function request()
   n = n + 1
   local i = n % agents
   local room = room_ids[i + 1] or (room_prefix .. i)
   local body = '{"room_id":"' .. room .. '","agent":"a' .. i ..
      '","body":"hello from the bench, message ' .. n .. '"}'
   return wrk.format("POST", "/bridge/v1/messages", headers, body)
end
