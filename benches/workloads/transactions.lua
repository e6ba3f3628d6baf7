-- W1 / W3 load: PUT /_matrix/app/v1/transactions/<unique id> with TXN_EVENTS
-- m.room.message events of about EVENT_BYTES bytes each. The first TXN_JOINED_EVENTS events
-- of every transaction go to JOINED_ROOM (where the bench joined agents); the others go to
-- rooms where no agent is joined. Transaction ids and event ids are unique per request and
-- per run (the nonce comes after "--"), because the daemon drops ids it has seen before.
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
setup = common.setup
done = common.done

local events_per_txn = tonumber(os.getenv("TXN_EVENTS") or "50")
local joined_events = tonumber(os.getenv("TXN_JOINED_EVENTS") or "0")
local joined_room = os.getenv("JOINED_ROOM") or "!w1-joined"
local event_bytes = tonumber(os.getenv("EVENT_BYTES") or "212")
local hs_token = os.getenv("HS_TOKEN")

local nonce = "run"
local n = 0
local headers
-- Every event of a transaction, cut around its id: the parts that never change are built
-- once (in init), so a request costs one string for the id and one concatenation.
local event_heads = {}
local event_tails = {}
local parts = {}
-- The request counter is written with this many digits, so every event has the same size.
local counter_digits = 10

function init(args)
   nonce = (args[1] or tostring(os.time())) .. "-" .. tostring(tid or 0)
   headers = {
      ["Authorization"] = "Bearer " .. hs_token,
      ["Content-Type"] = "application/json",
   }
   local id_len = #nonce + 1 + counter_digits
   for j = 1, events_per_txn do
      local room
      if j <= joined_events then
         room = joined_room
      else
         room = "!w1-free-" .. (j % 8)
      end
      -- Event j of transaction <id> has the event id $<id>-<j>; its body text is padded so
      -- that the event has about `event_bytes` bytes.
      local head = '{"event_id":"$'
      local rest = '-' .. j .. '","room_id":"' .. room ..
         '","sender":"@human:bench.local","type":"m.room.message","origin_server_ts":1700000000000,' ..
         '"content":{"msgtype":"m.text","body":"'
      local tail = '"}}'
      local fill = event_bytes - #head - id_len - #rest - #tail
      if fill < 1 then fill = 1 end
      event_heads[j] = (j == 1) and head or ("," .. head)
      event_tails[j] = rest .. string.rep("x", fill) .. tail
   end
end

function request()
   n = n + 1
   local id = nonce .. "-" .. string.format("%0" .. counter_digits .. "d", n)
   parts[1] = '{"events":['
   local k = 2
   for j = 1, events_per_txn do
      parts[k] = event_heads[j]
      parts[k + 1] = id
      parts[k + 2] = event_tails[j]
      k = k + 3
   end
   parts[k] = ']}'
   return wrk.format("PUT", "/_matrix/app/v1/transactions/" .. id, headers, table.concat(parts))
end
