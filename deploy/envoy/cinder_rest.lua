-- cindermesh gateway: Cinder's REST shaping around Envoy's gRPC-JSON transcoder.
--
-- Listed before the transcoder, so this filter sees the REST request first and the
-- transcoded (or locally generated) response last.
--
-- Request:  x-openstack-request-id (a valid incoming one is kept, else req-<x-request-id>),
--           x-cindermesh-base-url (always overwritten), both remembered with the path, the
--           method and the requested OpenStack-API-Version in dynamic metadata for the
--           response side; Cinder's 415 for a non-empty body that is not JSON.
-- Response: the api's hint headers (x-cindermesh-http-status, -fault, -no-body), Cinder's
--           JSON keys (json_key option), Cinder's error shape for errors the api did not
--           shape (405 with Allow for a wrong method on a known path), x-openstack-request-id,
--           OpenStack-API-Version and Vary on every response (no version header when the
--           requested version is malformed, as Cinder).

local META = "envoy.filters.http.lua"
-- A lowercase uuid: 8-4-4-4-12 hex digits.
local UUID_PATTERN = "^" .. ("[0-9a-f]"):rep(8) .. "%-" .. ("[0-9a-f]"):rep(4) .. "%-"
  .. ("[0-9a-f]"):rep(4) .. "%-" .. ("[0-9a-f]"):rep(4) .. "%-" .. ("[0-9a-f]"):rep(12) .. "$"
local REQUEST_ID_PATTERN = "^req%-" .. UUID_PATTERN:sub(2)

-- REST_ROUTES: every REST path pattern of the public services with the methods allowed on it
-- (tells 405 from 404); KEY_RENAMES: {Lua pattern of '"<proto field>":', '"<JSON key>":'} for
-- the fields with the json_key option. Both are generated from the descriptor set by
-- cindermesh/gateway_api.py, which replaces the next line when it renders the configuration.
local REST_ROUTES, KEY_RENAMES = {}, {} -- @generated-tables

-- Content types Cinder accepts for a request body.
local BODY_TYPES = {
  ["application/json"] = true,
  ["application/vnd.openstack.volume+json"] = true,
}

local FAULT_KEYS = {
  [400] = "badRequest",
  [401] = "unauthorized",
  [403] = "forbidden",
  [404] = "itemNotFound",
  [405] = "badMethod",
  [409] = "conflictingRequest",
  [413] = "overLimit",
  [415] = "badMediaType",
  [429] = "overLimit",
  [501] = "notImplemented",
  [503] = "serviceUnavailable",
}

local DEFAULT_MESSAGES = {
  [404] = "The resource could not be found.",
  [405] = "The method specified is not allowed for this resource.",
  [415] = "Unsupported Content-Type",
  [500] = "The server has either erred or is incapable of performing the requested operation.",
  [503] = "The service is unavailable. Please try again later.",
}

local HINT_STATUS = "x-cindermesh-http-status"
local HINT_FAULT = "x-cindermesh-fault"
local HINT_NO_BODY = "x-cindermesh-no-body"
local DROPPED_HEADERS = {
  HINT_STATUS, HINT_FAULT, HINT_NO_BODY, "grpc-status", "grpc-message", "grpc-accept-encoding",
}

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

local function json_escape(text)
  return (text:gsub('[%c"\\]', function(c)
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

-- The still-escaped text of the "message" string in the transcoder's gRPC error JSON.
local function json_message(body)
  local _, start = body:find('"message":%s*"')
  if start == nil then
    return nil
  end
  local i = start + 1
  while i <= #body do
    local c = body:sub(i, i)
    if c == "\\" then
      i = i + 2
    elseif c == '"' then
      return body:sub(start + 1, i - 1)
    else
      i = i + 1
    end
  end
  return nil
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
local function shape_error(status, content_type, text, path, method)
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
    local message = json_message(text)
    if message ~= nil and message ~= "" then
      return status, message
    end
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

-- Whether the request carries a non-empty body (read only when there is no content-length).
local function has_body(request_handle, headers)
  local length = headers:get("content-length")
  if length ~= nil then
    return (tonumber(length) or 0) > 0
  end
  local body = request_handle:body()
  return body ~= nil and body:length() > 0
end

-- Cinder's 415 for a body that is not JSON, on a route that takes this method.
local function refuse_media_type(request_handle, headers, method, path, request_id)
  local allowed = allowed_methods(path)
  local content_type = headers:get("content-type")
  if allowed == nil or not allowed[method] or content_type == nil then
    return
  end
  local media = (content_type:match("^%s*([^;%s]+)") or ""):lower()
  -- Read before has_body: reading the body invalidates the headers handle.
  local version = echo_version(headers:get("openstack-api-version"))
  if BODY_TYPES[media] or not has_body(request_handle, headers) then
    return
  end
  local reply = {
    [":status"] = "415",
    ["content-type"] = "application/json",
    ["x-openstack-request-id"] = request_id,
  }
  if version ~= nil then
    reply["openstack-api-version"] = "volume " .. version
    reply["vary"] = "OpenStack-API-Version"
  end
  request_handle:respond(reply, fault_text(415, json_escape(DEFAULT_MESSAGES[415])))
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
  local scheme = headers:get("x-forwarded-proto") or "http"
  headers:replace("x-cindermesh-base-url", scheme .. "://" .. (headers:get(":authority") or ""))
  local path = headers:get(":path") or ""
  local method = headers:get(":method") or ""
  local metadata = request_handle:streamInfo():dynamicMetadata()
  metadata:set(META, "request_id", request_id)
  metadata:set(META, "path", path)
  metadata:set(META, "method", method)
  local version = headers:get("openstack-api-version")
  if version ~= nil then
    metadata:set(META, "api_version", version)
  end
  refuse_media_type(request_handle, headers, method, path, request_id)
end

-- The transcoder prints proto field names; Cinder's keys come from the json_key option.
local function rename_keys(text)
  for _, pair in ipairs(KEY_RENAMES) do
    if text:find(pair[1]) then
      text = text:gsub(pair[1], pair[2])
    end
  end
  return text
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  local status = tonumber(headers:get(":status")) or 500
  local hint_status = headers:get(HINT_STATUS)
  local fault = headers:get(HINT_FAULT)
  local no_body = headers:get(HINT_NO_BODY) ~= nil
  local content_type = headers:get("content-type") or ""
  local unshaped_error = status >= 400 and fault == nil
  local json = content_type:find("json", 1, true) ~= nil
  local meta = response_handle:streamInfo():dynamicMetadata():get(META) or {}
  local allowed = nil

  if fault ~= nil or no_body or unshaped_error then
    local body = response_handle:body(true)
    local text = ""
    if not unshaped_error then
      text = fault or ""
    else
      local original = body:getBytes(0, body:length())
      local message
      status, message, allowed =
        shape_error(status, content_type, original, meta.path or "", meta.method or "")
      text = fault_text(status, message)
    end
    if no_body and fault == nil then
      text = ""
    end
    body:setBytes(text)
    headers = response_handle:headers()
    if text ~= "" then
      headers:replace("content-type", "application/json")
    else
      headers:remove("content-type")
    end
    if unshaped_error then
      headers:replace(":status", tostring(status))
    end
  elseif json and #KEY_RENAMES > 0 then
    local body = response_handle:body()
    if body ~= nil then
      local text = body:getBytes(0, body:length())
      local renamed = rename_keys(text)
      if renamed ~= text then
        body:setBytes(renamed)
      end
      headers = response_handle:headers()
    end
  end

  if hint_status ~= nil then
    headers:replace(":status", hint_status)
  end
  if allowed ~= nil then
    headers:replace("allow", allow_header(allowed))
  end
  for _, name in ipairs(DROPPED_HEADERS) do
    headers:remove(name)
  end
  if meta.request_id ~= nil then
    headers:replace("x-openstack-request-id", meta.request_id)
  end
  if headers:get("openstack-api-version") == nil then
    local version = echo_version(meta.api_version)
    if version ~= nil then
      headers:replace("openstack-api-version", "volume " .. version)
      headers:replace("vary", "OpenStack-API-Version")
    end
  end
end
