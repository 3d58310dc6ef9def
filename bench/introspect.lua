-- wrk script: RFC 7662 introspection of one access token, authenticated with HTTP Basic as a
-- client allowed to introspect for the token's resource. The token and the credentials come
-- from the environment (set by scripts/bench with BENCH=introspect).
local auth = os.getenv("BENCH_INTROSPECT_AUTH")
local token = os.getenv("BENCH_INTROSPECT_TOKEN")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. auth
wrk.body = "token=" .. token

function response(status, headers, body)
  if status == 200 and not body:find('"active":true', 1, true) then
    io.stderr:write("an introspection answered inactive: " .. body .. "\n")
    os.exit(1)
  end
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx responses: %d\n", summary.errors.status))
end
