-- Argo CD health of a recops Rollout, read from the status the rollout controller writes.
-- Promoted is Healthy, Aborted and Failed are Degraded, a paused rollout is Suspended (it
-- waits for a person or for metrics), and every step in between is Progressing.
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

local function decision(status)
  local text = status.reason or ""
  if status.message ~= nil and status.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. status.message
  end
  return text
end

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the rollout controller"
  return hs
end

local status = obj.status
if obj.metadata.generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to act on generation " .. obj.metadata.generation
  return hs
end

local specValid = condition("SpecValid")
if specValid ~= nil and specValid.status == "False" then
  hs.status = "Degraded"
  hs.message = "Invalid spec: " .. specValid.reason .. ": " .. (specValid.message or "")
  return hs
end

local candidate = status.candidateVersion or obj.spec.candidateVersion
if status.phase == "Promoted" then
  hs.status = "Healthy"
  hs.message = "Promoted " .. candidate
  return hs
end
if status.phase == "Aborted" or status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = status.phase .. ": " .. decision(status)
  return hs
end

local where = ""
if status.currentStepIndex ~= nil then
  where = "step " .. status.currentStepIndex
end
if status.weightsText ~= nil then
  where = where .. " (" .. status.weightsText .. ")"
end
if status.phase == "Paused" then
  hs.status = "Suspended"
  hs.message = "Paused at " .. where .. ": " .. decision(status)
  return hs
end

hs.status = "Progressing"
hs.message = "Rolling out " .. candidate .. " at " .. where
return hs
