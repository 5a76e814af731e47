-- wrk script: each request carries the JSON body {"nick_name": "userNNNN"}, cycling over
-- user0001..userN, so a cache that keys on the body has to hold N entries.
--
--   wrk -s rotate_nick.lua http://127.0.0.1:PORT -- METHOD PATH N
--   wrk -s rotate_nick.lua http://127.0.0.1:PORT -- POST /user/show_one_user/ 300
--   wrk -s rotate_nick.lua http://127.0.0.1:PORT -- GET /order/list_per_users/ 300
--
-- GET with a body is sent as is (wrk.format adds Content-Length). The N requests are built
-- once per thread in init(); each wrk thread starts at a different user so the threads
-- don't send the same body in lockstep.

local next_index = 0

function setup(thread)
  thread:set("thread_index", next_index)
  next_index = next_index + 1
end

local requests = {}
local count = 0
local counter = 0

function init(args)
  local method = args[1] or "POST"
  local path = args[2] or "/user/show_one_user/"
  count = tonumber(args[3] or "300")
  for i = 1, count do
    local body = string.format('{"nick_name": "user%04d"}', i)
    requests[i] = wrk.format(method, path, { ["Content-Type"] = "application/json" }, body)
  end
  counter = (thread_index or 0) * 151
end

function request()
  counter = counter + 1
  return requests[counter % count + 1]
end
