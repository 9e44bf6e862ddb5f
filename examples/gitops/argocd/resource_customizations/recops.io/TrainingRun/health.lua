-- Argo CD health of a recops TrainingRun: its phase state machine, with the gate's verdict.
local hs = {}

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the recops operator"
  return hs
end

local status = obj.status
local function reason()
  local text = status.reason or status.phase
  if status.message ~= nil and status.message ~= "" then
    text = text .. ": " .. status.message
  end
  return text
end

if status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = reason()
  return hs
end
if status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Trained version " .. (status.modelVersion or "?")
  if status.gate ~= nil then
    hs.message = hs.message .. "; gate: " .. status.gate.verdict .. " (" .. status.gate.reason .. ")"
  end
  return hs
end

hs.status = "Progressing"
hs.message = reason()
return hs
