"""Prepares the vend benchmark against a running `portcullis serve` (scripts/bench with
BENCH=vend): the user signs in through the agent's authorization request (sign-in and consent
forms), the agent redeems its code, then the same browser session connects the provider `up`
(this server as its own upstream). Prints the user's access token for the MCP server."""
import base64, hashlib, http.cookiejar, os, re, secrets, sys, urllib.parse, urllib.request

base = sys.argv[1]
mcp = os.environ["BENCH_MCP"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)


def call(url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data, headers={"accept": "text/html"})
    try:
        r = opener.open(req)
        return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def inputs(html):
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def follow(status, headers, body):
    while status in (302, 303) and headers["location"].startswith(base):
        status, headers, body = call(headers["location"])
    return status, headers, body


verifier = secrets.token_urlsafe(32)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
redirect = "http://127.0.0.1:1/cb"
q = urllib.parse.urlencode({
    "response_type": "code", "client_id": "bench-agent", "redirect_uri": redirect,
    "code_challenge": challenge, "code_challenge_method": "S256", "resource": mcp,
    "scope": "mcp:tools", "state": "s",
})
status, headers, page = call(f"{base}/oauth/authorize?{q}")
f = inputs(page)
status, headers, page = follow(*call(f"{base}/oauth/login", {
    "request": f["request"], "csrf": f["csrf"], "username": "bench-user",
    "password": "bench-password-0123456789"}))
f = inputs(page)
status, headers, _ = call(f"{base}/oauth/consent", {"request": f["request"], "csrf": f["csrf"], "decision": "approve"})
code = urllib.parse.parse_qs(urllib.parse.urlparse(headers["location"]).query)["code"][0]
token_req = urllib.request.Request(f"{base}/oauth/token", data=urllib.parse.urlencode({
    "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
    "code_verifier": verifier, "client_id": "bench-agent", "resource": mcp}).encode())
import json
user_token = json.loads(urllib.request.urlopen(token_req).read())["access_token"]

status, headers, page = follow(*call(f"{base}/connect/up"))
f = inputs(page)
status, headers, page = follow(*call(f"{base}/oauth/consent", {"request": f["request"], "csrf": f["csrf"], "decision": "approve"}))
if "Connected" not in page:
    sys.exit(f"the connect did not finish: {status} {page[:300]}")
print(user_token)
