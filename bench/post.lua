-- wrk script: POST the body file named by BODY_FILE with the bearer key in AIGATE_KEY (when set).
local f = assert(io.open(os.getenv("BODY_FILE"), "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("AIGATE_KEY")
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
-- The peer gateway (Portkey) is told where the upstream is per request, by headers.
local custom_host = os.getenv("PEER_CUSTOM_HOST")
if custom_host and custom_host ~= "" then
  wrk.headers["x-portkey-provider"] = "openai"
  wrk.headers["x-portkey-custom-host"] = custom_host
end
