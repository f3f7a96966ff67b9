-- cindermesh gateway: Cinder's REST shaping around Envoy's gRPC-JSON transcoder.
--
-- Listed before the transcoder, so this filter sees the REST request first and the
-- transcoded (or locally generated) response last.
--
-- Request:  x-openstack-request-id (a valid incoming one is kept, else req-<x-request-id>),
--           x-cindermesh-base-url (always overwritten), both remembered with the path, the
--           method and the requested OpenStack-API-Version in dynamic metadata for the
--           response side; only the headers the api needs go on (FORWARDED_HEADERS);
--           refusals before anything reaches the transcoder: 413 for a body over the size
--           limit, 431 (414) for headers (a path) the api's gRPC server could refuse, 415 for
--           a gRPC call (the REST edge serves REST only), 404 (405)
--           for a path, 401 for a token, 400 for another header the api reads or for a query
--           string that is not valid UTF-8 once percent-decoded (protobuf strings must be
--           UTF-8: the api could not even parse the call); Cinder's 415 for a non-empty body
--           that is not JSON.
-- Response: an api error arrives from the transcoder as google.rpc.Status JSON whose detail is a
--           cindermesh.api.v1.CinderFault: its fault key and body become Cinder's error body
--           and its code the status, with no table here; a success gets the RPC's declared
--           REST status and no-body flag (route metadata); Cinder's error shape for errors Envoy makes
--           (405 with Allow for a wrong method on a known path), x-openstack-request-id,
--           OpenStack-API-Version and Vary on every response (no version header when the
--           requested version is malformed, as Cinder).

local META = "envoy.filters.http.lua"
-- A lowercase uuid: 8-4-4-4-12 hex digits.
local UUID_PATTERN = "^" .. ("[0-9a-f]"):rep(8) .. "%-" .. ("[0-9a-f]"):rep(4) .. "%-"
  .. ("[0-9a-f]"):rep(4) .. "%-" .. ("[0-9a-f]"):rep(4) .. "%-" .. ("[0-9a-f]"):rep(12) .. "$"
local REQUEST_ID_PATTERN = "^req%-" .. UUID_PATTERN:sub(2)

-- REST_ROUTES: every REST path pattern of the public services with the methods allowed on it
-- (tells 405 from 404). Generated from the descriptor set by cindermesh/gateway_api.py, which
-- replaces the next line when it renders the configuration. (JSON keys need no table: the
-- transcoder prints the json_name the descriptor set carries.)
local REST_ROUTES = {} -- @generated-tables
-- MAX_REQUEST_BODY_SIZE: Cinder's request body limit in bytes (GatewaySettings); MAX_API_HEADERS:
-- the most header bytes (name + value + 32 each, as HTTP/2 and gRPC count) the api's gRPC
-- server always accepts. Rendered by cindermesh/gateway_config.py, which replaces the next line.
local MAX_REQUEST_BODY_SIZE, MAX_API_HEADERS = 0, 0 -- @generated-limits
-- What the transcoder and the router add to a request on its way to the api, generously.
local ADDED_HEADER_BYTES = 1024

-- Content types Cinder accepts for a request body.
local BODY_TYPES = {
  ["application/json"] = true,
  ["application/vnd.openstack.volume+json"] = true,
}

-- FAULT_KEYS, DEFAULT_MESSAGES: Cinder's fault key and default message by HTTP status, for the
-- errors Envoy makes itself. Rendered from cindermesh/gateway_faults.py, which replaces the
-- next line.
local FAULT_KEYS, DEFAULT_MESSAGES = {}, {} -- @generated-faults

local DROPPED_HEADERS = {
  "grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-accept-encoding",
}
-- How the transcoder prints the api's typed error detail (google.rpc.Status JSON, details last).
local FAULT_DETAIL = '"details":[{"@type":"type.googleapis.com/cindermesh.api.v1.CinderFault"'

-- {status, Cinder's body} from the transcoded status of an api error, or nil. The detail is the
-- last value of the status JSON and its body the detail's last field, so the body's JSON is the
-- text between `"body":` and the closing `}]}`; quotes inside strings are escaped, so the
-- FAULT_DETAIL text cannot come from a message.
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
  if (key or "") == "" then
    return code, ""
  end
  return code, '{"' .. key .. '":' .. body .. "}"
end

local function random_uuid()
  local hex = "0123456789abcdef"
  local out = {}
  for i = 1, 36 do
    if i == 9 or i == 14 or i == 19 or i == 24 then
      out[i] = "-"
    elseif i == 15 then
      out[i] = "4"
    elseif i == 20 then
      local n = math.random(9, 12)
      out[i] = hex:sub(n, n)
    else
      local n = math.random(1, 16)
      out[i] = hex:sub(n, n)
    end
  end
  return table.concat(out)
end

-- Whether text is valid UTF-8 (RFC 3629: shortest form, no surrogates, at most U+10FFFF).
local function valid_utf8(text)
  if not text:find("[\128-\255]") then
    return true
  end
  local i, n = 1, #text
  while i <= n do
    local c = text:byte(i)
    local size, low, high = 1, 0x80, 0xBF
    if c >= 0xC2 and c <= 0xDF then
      size = 2
    elseif c >= 0xE0 and c <= 0xEF then
      size = 3
      low = (c == 0xE0) and 0xA0 or 0x80
      high = (c == 0xED) and 0x9F or 0xBF
    elseif c >= 0xF0 and c <= 0xF4 then
      size = 4
      low = (c == 0xF0) and 0x90 or 0x80
      high = (c == 0xF4) and 0x8F or 0xBF
    elseif c >= 0x80 then
      return false
    end
    for k = 1, size - 1 do
      local b = text:byte(i + k)
      if b == nil or b < (k == 1 and low or 0x80) or b > (k == 1 and high or 0xBF) then
        return false
      end
    end
    i = i + size
  end
  return true
end

-- text with each invalid UTF-8 byte replaced by U+FFFD, so that a JSON body stays UTF-8.
local function utf8_text(text)
  if valid_utf8(text) then
    return text
  end
  local out, i = {}, 1
  while i <= #text do
    local taken = nil
    for size = 4, 1, -1 do
      local piece = text:sub(i, i + size - 1)
      if #piece == size and valid_utf8(piece) then
        taken = piece
        break
      end
    end
    out[#out + 1] = taken or "\239\191\189"
    i = i + (taken and #taken or 1)
  end
  return table.concat(out)
end

local function percent_decode(text)
  return (text:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

local function json_escape(text)
  return (utf8_text(text):gsub('[%c"\\]', function(c)
    if c == '"' then
      return '\\"'
    elseif c == "\\" then
      return "\\\\"
    elseif c == "\n" then
      return "\\n"
    elseif c == "\t" then
      return "\\t"
    elseif c == "\r" then
      return "\\r"
    end
    return string.format("\\u%04x", c:byte())
  end))
end

-- The methods allowed on a REST path (a set, the union over every matching route), or nil
-- when no route has this path.
local function allowed_methods(path)
  path = path:gsub("%?.*$", "")
  local allowed = nil
  for _, route in ipairs(REST_ROUTES) do
    if path:find(route.pattern) then
      allowed = allowed or {}
      for method in pairs(route.methods) do
        allowed[method] = true
      end
    end
  end
  return allowed
end

local function allow_header(allowed)
  local names = {}
  for method in pairs(allowed) do
    names[#names + 1] = method
  end
  table.sort(names)
  return table.concat(names, ", ")
end

-- jsonschema's names for the proto types the transcoder reports.
local SCHEMA_TYPES = {
  TYPE_STRING = "string", TYPE_BYTES = "string", TYPE_ENUM = "string", TYPE_BOOL = "boolean",
  TYPE_DOUBLE = "number", TYPE_FLOAT = "number",
}

-- A JSON literal as Cinder's messages show it: {Value: text, repr in the jsonschema message}.
local function python_value(value)
  if value == "true" or value == "false" then
    local shown = value == "true" and "True" or "False"
    return shown, shown
  elseif value == "null" then
    return "None", "None"
  end
  local text = value:match('^"(.*)"$')
  if text ~= nil then
    return text, "'" .. text .. "'"
  end
  return value, value
end

-- Cinder's "Invalid input for field/attribute <field>. Value: <value>. <jsonschema message>"
-- for a transcoder type error, e.g. `project_id: invalid value 5 for type TYPE_STRING`,
-- `INVALID_ARGUMENT:(volume.name): invalid value 5 for type TYPE_STRING`, or `invalid value
-- Starting an object on a scalar field for type project_id`.
local function type_error_message(text)
  local prefix = "Invalid input for field/attribute "
  local scalar = text:match("invalid value Starting an object on a scalar field for type ([%w_.]+)")
  if scalar ~= nil then
    local name = scalar:match("([^.]+)$")
    return prefix .. name .. ". Value: {...}. {...} is not of the field's type"
  end
  local field, value, kind = text:match("([%w_.]+)%)?:%s*invalid value (.-) for type (%S+)")
  if field == nil then
    return nil
  end
  local name = field:match("([^.]+)$") or field
  local shown, repr = python_value(value)
  local wanted = SCHEMA_TYPES[kind]
  if wanted == nil then
    wanted = kind:find("INT", 1, true) and "integer" or "object"
  end
  return prefix .. name .. ". Value: " .. shown .. ". " .. repr .. " is not of type '" .. wanted .. "'"
end

-- {status, escaped message, allowed methods or nil} for an error the api did not shape.
-- `path` is nil when the request never reached this filter (refused by the codec or the
-- connection manager: bad header, headers too large). Server errors and gRPC's own limits
-- (an unshaped RESOURCE_EXHAUSTED, 429) never show their text: it is gRPC's or Envoy's.
local function shape_error(status, content_type, text, path, method)
  if path == nil then
    local generic = DEFAULT_MESSAGES[status >= 500 and 500 or 400]
    return status, json_escape(DEFAULT_MESSAGES[status] or generic)
  end
  if status == 429 or status == 413 then
    return 413, json_escape(DEFAULT_MESSAGES[413])
  end
  if status >= 500 then
    return status, json_escape(DEFAULT_MESSAGES[status] or DEFAULT_MESSAGES[500])
  end
  if status == 404 and text:find("Could not resolve", 1, true) then
    local allowed = allowed_methods(path)
    if allowed ~= nil and not allowed[method] then
      return 405, json_escape(DEFAULT_MESSAGES[405]), allowed
    end
  end
  if status == 404 and not content_type:find("json", 1, true) then
    return 404, json_escape(DEFAULT_MESSAGES[404])
  end
  if content_type:find("json", 1, true) then
    -- A gRPC error without the api's typed fault: no text of it is shown.
    return status, json_escape(DEFAULT_MESSAGES[status] or DEFAULT_MESSAGES[400])
  end
  if status == 400 then
    local typed = type_error_message(text)
    if typed ~= nil then
      return 400, json_escape(typed)
    end
    local unknown = text:match('^Could not find field "([^"]*)"')
    if unknown ~= nil then
      return 400, json_escape("Invalid filters " .. unknown .. " are found in query options.")
    end
    local repeated = text:match("oneof field '_([%w_]+)' is already set")
    if repeated ~= nil then
      return 400, json_escape("Invalid input received: " .. repeated .. " is given more than once.")
    end
    if text:find("Proto field is not repeating, cannot start list", 1, true) then
      return 400, json_escape("Invalid input received: a list where the API expects no list.")
    end
    if text:find("Root element must be a message", 1, true) then
      return 400, json_escape("Invalid input received: the request body is not of type 'object'.")
    end
    if text:find("INVALID_ARGUMENT:", 1, true) then
      local detail = text:gsub("^%s*INVALID_ARGUMENT:%s*", ""):gsub("%s+$", "")
      return 400, json_escape("Invalid input: " .. detail)
    end
    return 400, json_escape("Malformed request body")
  end
  local message = DEFAULT_MESSAGES[status]
  if message == nil then
    message = text:gsub("%s+$", "")
    if message == "" then
      message = DEFAULT_MESSAGES[500]
    end
  end
  return status, json_escape(message)
end

-- The microversion Cinder echoes in OpenStack-API-Version: 3.0 when none is asked, the asked
-- one when well formed (in range or not), nil when malformed (Cinder then sends no version
-- header) and for `latest` (the gateway does not know the maximum; the api answers those).
local function echo_version(requested)
  local value = nil
  for item in (requested or ""):gmatch("[^,]+") do
    local service, rest = item:match("^%s*(%S+)%s*(.-)%s*$")
    if service ~= nil and service:lower() == "volume" then
      value = rest
    end
  end
  if value == nil or value == "" then
    return "3.0"
  end
  if value:find("^[1-9]%d*%.[1-9]%d*$") or value:find("^[1-9]%d*%.0$") then
    return value
  end
  return nil
end

local function fault_text(status, message)
  local key = FAULT_KEYS[status] or "computeFault"
  return string.format('{"%s":{"code":%d,"message":"%s"}}', key, status, message)
end

-- The request headers that go on to the api (pseudo-headers apart): what it reads, what the
-- transcoder needs, trace context and Envoy's own. Every other header is dropped here, so that
-- nothing the api ignores can push a call over gRPC's metadata limit or reach it unchecked.
local FORWARDED_HEADERS = {
  ["x-auth-token"] = true, ["openstack-api-version"] = true, ["if-match"] = true,
  ["x-openstack-request-id"] = true, ["x-cindermesh-base-url"] = true,
  ["content-type"] = true, ["content-length"] = true, ["transfer-encoding"] = true,
  ["te"] = true, ["traceparent"] = true, ["tracestate"] = true, ["baggage"] = true,
  ["x-request-id"] = true, ["x-forwarded-proto"] = true, ["x-forwarded-for"] = true,
}

local function drop_unforwarded(headers)
  local dropped = {}
  for name, _ in pairs(headers) do
    if name:sub(1, 1) ~= ":" and not FORWARDED_HEADERS[name] then
      dropped[#dropped + 1] = name
    end
  end
  for _, name in ipairs(dropped) do
    headers:remove(name)
  end
end

-- The size of the metadata the api will receive, as gRPC counts it.
local function api_header_bytes(headers)
  local size = ADDED_HEADER_BYTES
  for name, value in pairs(headers) do
    size = size + #name + #value + 32
  end
  return size
end

-- Request headers the api reads, as Cinder names them in its messages (the token apart: 401).
local CHECKED_HEADERS = {
  { "openstack-api-version", "OpenStack-API-Version" },
  { "if-match", "If-Match" },
  { "content-type", "Content-Type" },
}

-- Answers the request here, in Cinder's error shape; `allowed` adds Allow (405). The answer is
-- remembered for the response side: Envoy recasts a local reply to a gRPC request as a gRPC one
-- (200, grpc-status), which that side turns back.
local function refuse(request_handle, status, message, request_id, version, allowed)
  local body = fault_text(status, json_escape(message))
  local metadata = request_handle:streamInfo():dynamicMetadata()
  metadata:set(META, "refused_status", tostring(status))
  metadata:set(META, "refused_fault", body)
  if allowed ~= nil then
    metadata:set(META, "refused_allow", allow_header(allowed))
  end
  local reply = {
    [":status"] = tostring(status),
    ["content-type"] = "application/json",
    ["x-openstack-request-id"] = request_id,
  }
  if version ~= nil then
    reply["openstack-api-version"] = "volume " .. version
    reply["vary"] = "OpenStack-API-Version"
  end
  if allowed ~= nil then
    reply["allow"] = allow_header(allowed)
  end
  request_handle:respond(reply, body)
end

-- {status, message, allowed or nil} for a request refused on its headers alone, or nil.
-- Cinder's order: the size limits, then routing, then the token, then the rest.
local function header_refusal(headers, method, path)
  local length = tonumber(headers:get("content-length") or "0") or 0
  if length > MAX_REQUEST_BODY_SIZE then
    return 413, DEFAULT_MESSAGES[413]
  end
  if api_header_bytes(headers) > MAX_API_HEADERS then
    -- The path travels too (x-envoy-original-path): a long one is a long URI.
    if #path > MAX_API_HEADERS / 2 then
      return 414, DEFAULT_MESSAGES[414]
    end
    return 431, DEFAULT_MESSAGES[431]
  end
  -- The transcoder would pass a gRPC call through untouched, to any service of the api.
  local media = (headers:get("content-type") or ""):match("^%s*([^;%s]*)"):lower()
  if media:find("^application/grpc") then
    return 415, DEFAULT_MESSAGES[415]
  end
  local route_path, query = path:match("^([^?]*)%??(.*)$")
  if not valid_utf8(percent_decode(route_path)) then
    -- No resource has such a name; a wrong method on a known path stays 405.
    local allowed = allowed_methods(route_path)
    if allowed ~= nil and not allowed[method] then
      return 405, DEFAULT_MESSAGES[405], allowed
    end
    return 404, DEFAULT_MESSAGES[404]
  end
  if not valid_utf8(headers:get("x-auth-token") or "") then
    return 401, DEFAULT_MESSAGES[401]
  end
  for _, header in ipairs(CHECKED_HEADERS) do
    if not valid_utf8(headers:get(header[1]) or "") then
      return 400, "Invalid input received: the " .. header[2] .. " header is not valid UTF-8."
    end
  end
  if not valid_utf8(percent_decode(query)) then
    return 400, "Invalid input received: the query string is not valid UTF-8."
  end
  return nil
end

-- {status, message} for a body refused here, or nil: 413 for a body sent without a
-- Content-Length that grows over the limit (counted here: the transcoder's own limit counts
-- its buffer, not the bytes sent), Cinder's 415 for a non-empty body that is not JSON on a
-- route that takes this method.
local function body_refusal(request_handle, headers, method, path)
  local allowed = allowed_methods(path)
  local content_type = headers:get("content-type")
  local media = ((content_type or ""):match("^%s*([^;%s]+)") or ""):lower()
  local not_json = content_type ~= nil and not BODY_TYPES[media]
  local size = tonumber(headers:get("content-length") or "")
  if size == nil then
    -- Reading the body invalidates the headers handle.
    local body = request_handle:body()
    size = body ~= nil and body:length() or 0
    if size > MAX_REQUEST_BODY_SIZE then
      return 413, DEFAULT_MESSAGES[413]
    end
  end
  if allowed ~= nil and allowed[method] and not_json and size > 0 then
    return 415, DEFAULT_MESSAGES[415]
  end
  return nil
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
    local generated = headers:get("x-request-id")
    if generated == nil or not generated:find(UUID_PATTERN) then
      generated = random_uuid()
    end
    request_id = "req-" .. generated
    headers:replace("x-openstack-request-id", request_id)
  end
  headers:replace("x-cindermesh-base-url", base_url(headers))
  drop_unforwarded(headers)
  local path = headers:get(":path") or ""
  local method = headers:get(":method") or ""
  local metadata = request_handle:streamInfo():dynamicMetadata()
  metadata:set(META, "request_id", request_id)
  metadata:set(META, "path", path)
  metadata:set(META, "method", method)
  local requested = headers:get("openstack-api-version")
  if requested ~= nil then
    metadata:set(META, "api_version", requested)
  end
  local version = echo_version(requested)
  local status, message, allowed = header_refusal(headers, method, path)
  if status == nil then
    status, message = body_refusal(request_handle, headers, method, path)
  end
  if status ~= nil then
    refuse(request_handle, status, message, request_id, version, allowed)
  end
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  local meta = response_handle:streamInfo():dynamicMetadata():get(META) or {}
  local status = tonumber(headers:get(":status")) or 500
  -- This filter's own refusal, or the RPC's declared REST answer (route metadata, from the
  -- rest_status and rest_no_body options in the descriptor set) for a success.
  local route = response_handle:metadata()
  local success = status < 400 and meta.refused_status == nil
  local hint_status = meta.refused_status or (success and route:get("status")) or nil
  local fault = meta.refused_fault
  local no_body = success and route:get("no_body") == true
  local content_type = headers:get("content-type") or ""
  local allowed = nil

  if fault ~= nil or no_body or status >= 400 then
    local body = response_handle:body(true)
    local text = fault or ""
    if fault == nil and status >= 400 then
      local original = body:getBytes(0, body:length())
      local code, rendered = nil, nil
      if content_type:find("json", 1, true) then
        code, rendered = api_fault(original)
      end
      if code ~= nil then
        status, text = code, rendered
      else
        local message
        status, message, allowed =
          shape_error(status, content_type, original, meta.path, meta.method or "")
        text = fault_text(status, message)
      end
    end
    body:setBytes(text)
    headers = response_handle:headers()
    if text ~= "" then
      headers:replace("content-type", "application/json")
    else
      headers:remove("content-type")
    end
    if meta.refused_status == nil then
      headers:replace(":status", tostring(status))
    end
  end

  if hint_status ~= nil then
    headers:replace(":status", hint_status)
  end
  if allowed ~= nil then
    headers:replace("allow", allow_header(allowed))
  elseif meta.refused_allow ~= nil then
    headers:replace("allow", meta.refused_allow)
  end
  for _, name in ipairs(DROPPED_HEADERS) do
    headers:remove(name)
  end
  headers:replace("x-openstack-request-id", meta.request_id or ("req-" .. random_uuid()))
  if headers:get("openstack-api-version") == nil then
    local version = echo_version(meta.api_version)
    if version ~= nil then
      headers:replace("openstack-api-version", "volume " .. version)
      headers:replace("vary", "OpenStack-API-Version")
    end
  end
end
