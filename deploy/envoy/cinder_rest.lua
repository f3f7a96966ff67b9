-- cindermesh gateway: Cinder's REST shaping around Envoy's gRPC-JSON transcoder.
--
-- Listed before the transcoder, so this filter sees the REST request first and the
-- transcoded (or locally generated) response last.
--
-- Request:  x-openstack-request-id (a valid incoming one is kept, else req-<x-request-id>),
--           x-cindermesh-base-url (always overwritten), both remembered with the requested
--           OpenStack-API-Version in dynamic metadata for the response side.
-- Response: the api's hint headers (x-cindermesh-http-status, -fault, -no-body), Cinder's
--           os-vol-* key names, Cinder's error shape for errors the api did not shape,
--           x-openstack-request-id, OpenStack-API-Version and Vary on every response.

local META = "envoy.filters.http.lua"
-- A lowercase uuid: 8-4-4-4-12 hex digits.
local UUID_PATTERN = "^" .. ("[0-9a-f]"):rep(8) .. "%-" .. ("[0-9a-f]"):rep(4) .. "%-"
  .. ("[0-9a-f]"):rep(4) .. "%-" .. ("[0-9a-f]"):rep(4) .. "%-" .. ("[0-9a-f]"):rep(12) .. "$"
local REQUEST_ID_PATTERN = "^req%-" .. UUID_PATTERN:sub(2)

-- The REST paths the api serves, only to tell 405 (known path, wrong method) from 404.
-- Add a line per new resource; {name} stands for one path segment.
local REST_PATHS = {
  "/v3/{project}/volumes",
  "/v3/{project}/volumes/detail",
  "/v3/{project}/volumes/{id}",
  "/v3/volumes",
  "/v3/volumes/detail",
  "/v3/volumes/{id}",
}

local REST_PATTERNS = {}
for i, path in ipairs(REST_PATHS) do
  REST_PATTERNS[i] = "^" .. path:gsub("%-", "%%-"):gsub("{[^}]+}", "[^/]+") .. "/?$"
end

-- Proto field names (printed by the transcoder) -> Cinder's JSON keys.
local KEY_RENAMES = {
  { '"os_vol_tenant_attr_tenant_id":', '"os-vol-tenant-attr:tenant_id":' },
  { '"os_vol_host_attr_host":', '"os-vol-host-attr:host":' },
  { '"os_vol_mig_status_attr_migstat":', '"os-vol-mig-status-attr:migstat":' },
  { '"os_vol_mig_status_attr_name_id":', '"os-vol-mig-status-attr:name_id":' },
  { '"os_volume_replication_extended_status":', '"os-volume-replication:extended_status":' },
  { '"os_volume_replication_driver_data":', '"os-volume-replication:driver_data":' },
}
-- Every key above starts with this; one plain find decides whether to rename at all.
local KEY_PREFIX = '"os_vol'

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

local function known_rest_path(path)
  path = path:gsub("%?.*$", "")
  for _, pattern in ipairs(REST_PATTERNS) do
    if path:find(pattern) then
      return true
    end
  end
  return false
end

-- A transcoder type error, e.g. `project_id: invalid value 5 for type TYPE_STRING` or
-- `INVALID_ARGUMENT:(volume.name): invalid value 5 for type TYPE_STRING`.
local function type_error_message(text)
  local field, value, kind = text:match("([%w_.]+)%)?:%s*invalid value (.-) for type (%S+)")
  if field == nil then
    return nil
  end
  local name = field:match("([^.]+)$") or field
  value = value:gsub('^"(.*)"$', "%1")
  local readable = "object"
  if kind:find("^TYPE_") then
    readable = kind:gsub("^TYPE_", ""):lower()
  end
  return "Invalid input for field/attribute " .. name .. ". Value: " .. value
    .. ". Value is not a valid " .. readable .. "."
end

-- {status, escaped message} for an error the api did not shape.
local function shape_error(status, content_type, text, path)
  if status == 404 and text:find("Could not resolve", 1, true) and known_rest_path(path) then
    return 405, json_escape(DEFAULT_MESSAGES[405])
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
  local metadata = request_handle:streamInfo():dynamicMetadata()
  metadata:set(META, "request_id", request_id)
  metadata:set(META, "path", headers:get(":path") or "")
  local version = headers:get("openstack-api-version")
  if version ~= nil then
    metadata:set(META, "api_version", version)
  end
end

local function api_version(requested)
  if requested ~= nil then
    local number = requested:lower():match("volume%s+(%d+%.%d+)")
    if number ~= nil then
      return number
    end
  end
  return "3.0"
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

  if fault ~= nil or no_body or unshaped_error then
    local body = response_handle:body(true)
    local text = ""
    if not unshaped_error then
      text = fault or ""
    else
      local path = ""
      local meta = response_handle:streamInfo():dynamicMetadata():get(META)
      if meta ~= nil then
        path = meta.path or ""
      end
      local original = body:getBytes(0, body:length())
      local shaped_status, message = shape_error(status, content_type, original, path)
      status = shaped_status
      local key = FAULT_KEYS[status] or "computeFault"
      text = string.format('{"%s":{"code":%d,"message":"%s"}}', key, status, message)
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
  elseif json then
    local body = response_handle:body()
    if body ~= nil then
      local text = body:getBytes(0, body:length())
      if text:find(KEY_PREFIX, 1, true) then
        for _, pair in ipairs(KEY_RENAMES) do
          text = text:gsub(pair[1], pair[2])
        end
        body:setBytes(text)
      end
      headers = response_handle:headers()
    end
  end

  if hint_status ~= nil then
    headers:replace(":status", hint_status)
  end
  for _, name in ipairs(DROPPED_HEADERS) do
    headers:remove(name)
  end
  local meta = response_handle:streamInfo():dynamicMetadata():get(META) or {}
  if meta.request_id ~= nil then
    headers:replace("x-openstack-request-id", meta.request_id)
  end
  if headers:get("openstack-api-version") == nil then
    headers:replace("openstack-api-version", "volume " .. api_version(meta.api_version))
    headers:replace("vary", "OpenStack-API-Version")
  end
end
