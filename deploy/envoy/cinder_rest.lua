-- cindermesh gateway: transport around Envoy's gRPC-JSON transcoder. Listed before the
-- transcoder, so this filter sees the REST request first and the response last. It holds no
-- Cinder message and no route table: the api renders its own errors (a typed CinderFault), and
-- Envoy's local_reply_config renders the errors Envoy makes (cindermesh/gateway_faults.py).
--
-- Request:  x-openstack-request-id (a valid incoming one, else req-<Envoy's x-request-id>) and
--           x-cindermesh-base-url set; only the headers the api reads go on; refused here, in
--           Cinder's shape by local_reply_config: a gRPC call (415: the REST edge serves REST
--           only) and a non-empty body that is not JSON (Cinder's 415). A POST to a path ending
--           in `/action` goes to `/action/<the body's first key>`: Cinder's actions share one
--           URL and name themselves in the body, and each is its own RPC bound to its own path
--           (this filter knows no action names). A JSON object body's top-level keys go to
--           the api in x-cindermesh-body-keys (the transcoder drops the keys no field takes).
-- Response: a success gets its RPC's declared REST status and no-body flag (route metadata from
--           the rest_status and rest_no_body options); an api error's CinderFault becomes the
--           status and body; gRPC's headers go; the request id is set.

local META = "envoy.filters.http.lua"
local HEX = "[0-9a-f]"
local UUID = HEX:rep(8) .. "%-" .. HEX:rep(4) .. "%-" .. HEX:rep(4) .. "%-" .. HEX:rep(4)
  .. "%-" .. HEX:rep(12)
local REQUEST_ID_PATTERN = "^req%-" .. UUID .. "$"

-- Content types Cinder accepts for a request body.
local BODY_TYPES = {
  ["application/json"] = true,
  ["application/vnd.openstack.volume+json"] = true,
}

-- The request headers that go on to the api (pseudo-headers apart): what it reads, what the
-- transcoder needs, trace context and Envoy's own. Nothing the api ignores reaches it.
local FORWARDED_HEADERS = {
  ["x-auth-token"] = true, ["openstack-api-version"] = true, ["if-match"] = true,
  ["x-openstack-request-id"] = true, ["x-cindermesh-base-url"] = true,
  ["content-type"] = true, ["content-length"] = true, ["transfer-encoding"] = true,
  ["te"] = true, ["traceparent"] = true, ["tracestate"] = true, ["baggage"] = true,
  ["x-request-id"] = true, ["x-forwarded-proto"] = true, ["x-forwarded-for"] = true,
}

-- UNSHAPED: Cinder's body by status for an api error without a CinderFault (gRPC's own
-- failures); rendered from cindermesh/gateway_faults.py, which replaces the next line.
local UNSHAPED = {} -- @generated-unshaped

local GRPC_HEADERS = {
  "grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-accept-encoding",
}
-- How the transcoder prints the api's typed error detail (google.rpc.Status JSON, details last).
local FAULT_DETAIL = '"details":[{"@type":"type.googleapis.com/cindermesh.api.v1.CinderFault"'

-- {status, Cinder's body} from the transcoded status of an api error, or nil. The detail is the
-- last value of the status JSON and its body the detail's last field, so the body's JSON is the
-- text between `"body":` and the closing `}]}`; quotes inside strings are escaped, so the
-- FAULT_DETAIL text cannot come from a message. No fault key: an answer without a body.
local function api_fault(text)
  local start = text:find(FAULT_DETAIL, 1, true)
  if start == nil then
    return nil
  end
  local rest = text:sub(start + #FAULT_DETAIL)
  local key, after = rest:match('^,"fault_key":"(%w*)"()')
  local body = rest:sub(after or 1):match('^,"body":(.*)}%s*]%s*}%s*$')
  local code = body and tonumber(body:match('^{"code":(%d+)'))
  if code == nil then
    return nil
  end
  return code, (key or "") == "" and "" or ('{"' .. key .. '":' .. body .. "}")
end

-- The status of a request refused here, or nil. Reading the body (sent without a length)
-- invalidates the headers handle, so this comes last.
local function refusal(request_handle, headers)
  local content_type = headers:get("content-type")
  local media = ((content_type or ""):match("^%s*([^;%s]+)") or ""):lower()
  if media:find("^application/grpc") then
    return 415
  end
  if content_type == nil or BODY_TYPES[media] then
    return nil
  end
  local length = tonumber(headers:get("content-length") or "")
  if length == nil then
    local body = request_handle:body()
    length = body and body:length() or 0
  end
  return length > 0 and 415 or nil
end

-- The characters an action name may have (Cinder's are `os-reset_status`, `create-from-src`).
local ACTION_NAME = "^[%w_%-%.:]+$"

-- The path of an action request with its action named, or nil: `.../action` (a query string
-- kept) with the first key of the JSON body appended. Reading the body invalidates the
-- headers handle.
local function action_path(request_handle, path)
  local route, query = path:match("^([^?]*/action)(%??.*)$")
  if route == nil then
    return nil
  end
  local body = request_handle:body()
  local text = body and body:getBytes(0, body:length()) or ""
  local name = text:match('^%s*{%s*"([^"\\]*)"%s*:')
  if name == nil or not name:find(ACTION_NAME) then
    return nil
  end
  return route .. "/" .. name .. query
end

-- The keys of a JSON object's top level, each as its JSON text (quotes included), joined by
-- commas into a JSON array: what x-cindermesh-body-keys tells the api, which refuses the keys
-- no field of the RPC takes (the transcoder drops them). Nil for a body that is not an object.
-- At most MAX_KEYS keys of MAX_KEY characters are told (Cinder's bodies have one to three).
local MAX_KEYS, MAX_KEY = 16, 255
local function top_level_keys(text)
  local start = text:find("%S")
  if start == nil or text:sub(start, start) ~= "{" then
    return nil
  end
  local keys, depth, expect_key, pos = {}, 0, false, start
  while true do
    pos = text:find('[\\"{}%[%],]', pos)
    if pos == nil then
      break
    end
    local c = text:sub(pos, pos)
    if c == '"' then
      local finish = pos + 1
      while true do
        finish = text:find('[\\"]', finish)
        if finish == nil or text:sub(finish, finish) == '"' then
          break
        end
        finish = finish + 2
      end
      if finish == nil then
        return nil
      end
      if depth == 1 and expect_key then
        -- A key too long for a header, or with a byte a header cannot carry (a control
        -- character, or beyond ASCII), stands as "..." (it is not a field's name either).
        local key = text:sub(pos, finish)
        local unfit = finish - pos > MAX_KEY or key:find("[^\32-\126]") ~= nil
        keys[#keys + 1] = unfit and '"..."' or key
        expect_key = false
        if #keys == MAX_KEYS then
          break
        end
      end
      pos = finish + 1
    else
      if c == "{" or c == "[" then
        depth = depth + 1
        expect_key = depth == 1
      elseif c == "}" or c == "]" then
        depth = depth - 1
      elseif c == "," and depth == 1 then
        expect_key = true
      end
      pos = pos + 1
    end
  end
  return "[" .. table.concat(keys, ",") .. "]"
end

-- The base URL of Cinder's links: http or https (X-Forwarded-Proto, first hop) and the host.
local function base_url(headers)
  local proto = (headers:get("x-forwarded-proto") or ""):match("^%s*([^,%s]*)") or ""
  local scheme = proto:lower() == "https" and "https" or "http"
  return scheme .. "://" .. (headers:get(":authority") or "")
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local request_id = headers:get("x-openstack-request-id")
  if request_id == nil or not request_id:find(REQUEST_ID_PATTERN) then
    -- Envoy's own (the early header mutation drops a client's x-request-id).
    request_id = "req-" .. (headers:get("x-request-id") or "")
    headers:replace("x-openstack-request-id", request_id)
  end
  headers:replace("x-cindermesh-base-url", base_url(headers))
  local dropped = {}
  for name, _ in pairs(headers) do
    if name:sub(1, 1) ~= ":" and not FORWARDED_HEADERS[name] then
      dropped[#dropped + 1] = name
    end
  end
  for _, name in ipairs(dropped) do
    headers:remove(name)
  end
  request_handle:streamInfo():dynamicMetadata():set(META, "request_id", request_id)
  local status = refusal(request_handle, headers)
  if status ~= nil then
    -- Envoy answers a gRPC request the gRPC way (200, grpc-status); the response side
    -- restores the status.
    request_handle:streamInfo():dynamicMetadata():set(META, "refused", tostring(status))
    request_handle:respond({ [":status"] = tostring(status) }, "")
    return
  end
  local method = request_handle:headers():get(":method")
  if method == "POST" or method == "PUT" then
    local body = request_handle:body()
    local keys = top_level_keys(body and body:getBytes(0, body:length()) or "")
    if keys ~= nil then
      request_handle:headers():replace("x-cindermesh-body-keys", keys)
    end
  end
  if method == "POST" then
    local path = action_path(request_handle, request_handle:headers():get(":path") or "")
    if path ~= nil then
      request_handle:headers():replace(":path", path)
    end
  end
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  local meta = response_handle:streamInfo():dynamicMetadata():get(META) or {}
  local status = tonumber(headers:get(":status")) or 500
  local route = response_handle:metadata()
  local declared, no_body = route:get("status"), route:get("no_body") == true
  local is_json = (headers:get("content-type") or ""):find("application/json", 1, true)
  local message = headers:get("grpc-message")
  -- Reading the body invalidates the headers handle: each branch says the new status and body.
  local new_status, new_body = nil, nil
  if meta.refused ~= nil then
    -- This filter's refusal; Envoy's reply to a gRPC call carried the body in grpc-message.
    new_status = meta.refused
    if message ~= nil then
      new_body = message:gsub("%%(%x%x)", function(hex)
        return string.char(tonumber(hex, 16))
      end)
    end
  elseif status < 400 then
    new_status = declared
    new_body = no_body and "" or nil
  elseif is_json then
    local body = response_handle:body(true)
    local original = body:getBytes(0, body:length())
    local code, text = api_fault(original)
    if code == nil and original:find('^{"code":') then
      -- A transcoded gRPC status without the api's fault (Envoy's own replies are shaped).
      code = UNSHAPED[status] and status or 500
      text = UNSHAPED[code]
    end
    new_status, new_body = code and tostring(code), text
  end
  if new_body ~= nil then
    response_handle:body(true):setBytes(new_body)
  end
  headers = response_handle:headers()
  if new_body == "" then
    headers:remove("content-type")
  elseif new_body ~= nil then
    headers:replace("content-type", "application/json")
  end
  if new_status ~= nil then
    headers:replace(":status", new_status)
  end
  for _, name in ipairs(GRPC_HEADERS) do
    headers:remove(name)
  end
  if meta.request_id ~= nil then
    headers:replace("x-openstack-request-id", meta.request_id)
  end
end
