-- wrk script: the vault's vend (RFC 8693 exchange of a user's token for the upstream token)
-- by a confidential MCP server. The subject token and credentials come from scripts/bench.
local auth = os.getenv("BENCH_VEND_AUTH")
local subject = os.getenv("BENCH_SUBJECT_TOKEN")
local upstream = os.getenv("BENCH_UPSTREAM")

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. auth
wrk.body = "grant_type=" .. enc("urn:ietf:params:oauth:grant-type:token-exchange") ..
  "&subject_token=" .. enc(subject) ..
  "&subject_token_type=" .. enc("urn:ietf:params:oauth:token-type:access_token") ..
  "&resource=" .. enc(upstream)

function done(summary, latency, requests)
  io.write(string.format("non-2xx responses: %d\n", summary.errors.status))
end
