-- The stand-in homeserver's own rate: the same send request the daemon makes
-- (PUT .../rooms/!r<i>/send/m.room.message/<txn>?user_id=...), straight at nginx.
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup = common.setup
done = common.done

local n = 0
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer standin" }
local body = '{"msgtype":"m.text","body":"hello from the bench"}'

function request()
   n = n + 1
   local i = n % 64
   return wrk.format("PUT", "/_matrix/client/v3/rooms/%21r" .. i ..
      "/send/m.room.message/standin-" .. n .. "?user_id=%40agent-a" .. i .. "%3Abench.local",
      headers, body)
end
