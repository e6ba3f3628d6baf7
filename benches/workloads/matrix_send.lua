-- W5 load straight at a homeserver's Client-Server API: PUT
-- /_matrix/client/v3/rooms/<room>/send/m.room.message/<txn> into the comma-separated
-- ROOM_IDS in turn, with TOKEN. With USER_PREFIX the appservice masquerades as
-- @<USER_PREFIX><i>:<SERVER> in room i (the agents' own sends, made without the daemon);
-- without, the token's own user sends (the human's messages to the agents). Transaction
-- ids are unique per run (the nonce comes after "--"). The content is what the daemon sends
-- for a plain one-line message, "m.mentions" included (it costs Synapse about 2 ms of CPU
-- per event here, so leaving it out would not be the same send).
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup = common.setup
done = common.done

local token = os.getenv("TOKEN")
local user_prefix = os.getenv("USER_PREFIX")
local server = os.getenv("SERVER") or "bench.local"
local rooms = {}
for id in string.gmatch(os.getenv("ROOM_IDS") or "", "[^,]+") do
   rooms[#rooms + 1] = id:gsub("!", "%%21")
end
local nonce = "run"
local n = 0
local headers

function init(args)
   nonce = (args[1] or tostring(os.time())) .. "-" .. tostring(tid or 0)
   headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
   n = (tid or 0) * 17
end

function request()
   n = n + 1
   local i = n % #rooms
   local path = "/_matrix/client/v3/rooms/" .. rooms[i + 1] .. "/send/m.room.message/" ..
      nonce .. "-" .. n
   if user_prefix then
      path = path .. "?user_id=%40" .. user_prefix .. i .. "%3A" .. server
   end
   return wrk.format("PUT", path, headers,
      '{"msgtype":"m.text","body":"hello from the bench, message ' .. n .. '","m.mentions":{}}')
end
