-- Argo CD health of a recops RecModel, read from the status the operator writes.
-- A rollout in flight shows as Progressing; Degraded and Failed phases, a Degraded condition
-- or an invalid spec show as Degraded; a Ready model is Healthy.
local hs = {}

local function condition(kind)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == kind then
        return c
      end
    end
  end
  return nil
end

local function describe(c)
  if c == nil then
    return ""
  end
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the recops operator"
  return hs
end

local status = obj.status
if obj.metadata.generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. obj.metadata.generation
  return hs
end

local specValid = condition("SpecValid")
if specValid ~= nil and specValid.status == "False" then
  hs.status = "Degraded"
  hs.message = "Invalid spec: " .. describe(specValid)
  return hs
end

local ready = condition("Ready")
local degraded = condition("Degraded")
if status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Failed: " .. describe(ready)
  return hs
end
if status.phase == "Degraded" or (degraded ~= nil and degraded.status == "True") then
  hs.status = "Degraded"
  hs.message = "Degraded: " .. describe(degraded or ready)
  return hs
end

if status.phase == "RollingOut" then
  hs.status = "Progressing"
  hs.message = "Rolling out " .. (status.candidateVersion or "a candidate")
  if status.weights ~= nil then
    hs.message = hs.message .. " (" .. status.weights .. ")"
  end
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Serving version " .. (status.stableVersion or "?")
  if status.phase == "Training" or status.phase == "Compiling" then
    hs.message = hs.message .. "; " .. string.lower(status.phase) .. " a new version"
  end
  return hs
end

hs.status = "Progressing"
hs.message = status.phase
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = hs.message .. ": " .. ready.message
end
return hs
