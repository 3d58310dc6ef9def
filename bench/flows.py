"""Full authorization-code flows per second against a running `portcullis serve` (scripts/bench
with BENCH=flows): each of CONCURRENCY threads repeats, for DURATION seconds, the flow a person
and an MCP client go through: GET /oauth/authorize (sign-in page), POST /oauth/login (argon2id
password check), POST /oauth/consent (approve), the code redeemed at /oauth/token with PKCE, and
one refresh. FLOW_SESSION=fresh (default) starts every flow with no session, so every flow signs
in; FLOW_SESSION=kept keeps each thread's browser session, as for a person who signed in once and
authorizes again (no sign-in form). Prints flows, flows per second (wall) and each step's
latency (p50/p99). Any unexpected answer stops the run with an error.

    python3 bench/flows.py http://127.0.0.1:19400"""
import base64, hashlib, http.cookiejar, json, os, re, secrets, sys, threading, time
import urllib.error, urllib.parse, urllib.request

base = sys.argv[1]
duration = float(os.environ.get("DURATION", "20"))
concurrency = int(os.environ.get("CONCURRENCY", "4"))
session = os.environ.get("FLOW_SESSION", "fresh")
resource = os.environ["BENCH_MCP"]
client_id = "bench-agent"
redirect = "http://127.0.0.1:1/cb"
user, password = "bench-user", "bench-password-0123456789"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def inputs(html):
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


class Browser:
    def __init__(self):
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect)

    def call(self, url, form=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, headers={"accept": "text/html"})
        try:
            r = self.opener.open(req)
            return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()


timings = {k: [] for k in ("authorize", "login", "consent", "token", "refresh")}
lock = threading.Lock()
flows = 0
failure = []


def timed(step, f, *args):
    t = time.perf_counter()
    out = f(*args)
    with lock:
        timings[step].append(time.perf_counter() - t)
    return out


def expect(cond, what, status, body):
    if not cond:
        raise RuntimeError(f"{what}: unexpected answer {status}: {body[:300]}")


def token(form):
    req = urllib.request.Request(f"{base}/oauth/token", data=urllib.parse.urlencode(form).encode())
    try:
        r = urllib.request.urlopen(req)
        return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def flow(b):
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect,
        "code_challenge": challenge, "code_challenge_method": "S256", "resource": resource,
        "scope": "mcp:tools", "state": secrets.token_urlsafe(8)})
    status, headers, page = timed("authorize", b.call, f"{base}/oauth/authorize?{q}")
    expect(status == 200, "authorize", status, page)
    f = inputs(page)
    if 'name="password"' in page:
        status, headers, page = timed("login", b.call, f"{base}/oauth/login", {
            "request": f["request"], "csrf": f["csrf"], "username": user, "password": password})
        expect(status in (302, 303), "login", status, page)
        status, headers, page = b.call(headers["location"])
        expect(status == 200, "consent page", status, page)
        f = inputs(page)
    status, headers, page = timed("consent", b.call, f"{base}/oauth/consent",
                                  {"request": f["request"], "csrf": f["csrf"], "decision": "approve"})
    expect(status in (302, 303) and headers["location"].startswith(redirect), "consent", status, page)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(headers["location"]).query)["code"][0]
    status, body = timed("token", token, {
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
        "code_verifier": verifier, "client_id": client_id, "resource": resource})
    expect(status == 200, "token", status, body)
    rt = json.loads(body).get("refresh_token")
    expect(rt, "token (no refresh_token)", status, body)
    status, body = timed("refresh", token, {"grant_type": "refresh_token", "refresh_token": rt,
                                            "client_id": client_id})
    expect(status == 200, "refresh", status, body)


def worker(deadline):
    global flows
    b = Browser()
    try:
        while time.monotonic() < deadline:
            if session == "fresh":
                b = Browser()
            flow(b)
            with lock:
                flows += 1
    except Exception as e:  # the first unexpected answer ends the run
        failure.append(str(e))


start = time.monotonic()
threads = [threading.Thread(target=worker, args=(start + duration,)) for _ in range(concurrency)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - start
if failure:
    sys.exit(f"flows benchmark failed: {failure[0]}")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] * 1000 if v else 0.0


print(f"{flows} flows in {elapsed:.1f}s ({concurrency} concurrent, session {session})")
print(f"flows per second (wall): {flows / elapsed:.1f}")
for step, v in timings.items():
    if v:
        print(f"  {step}: p50 {pct(v, 0.5):.1f} ms, p99 {pct(v, 0.99):.1f} ms ({len(v)} requests)")
print(f"requests: {sum(len(v) for v in timings.values()) + (flows if session == 'fresh' else 0)}")
