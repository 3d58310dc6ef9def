#!/usr/bin/env python3
"""Random-request smoke test (SECURITY-CHECKLIST G2/G3): 3000 seeded random requests (methods,
paths, query strings, form/JSON/binary bodies, content types, Authorization, DPoP and Cookie
headers) against a running server; every answer must be a 4xx/2xx/3xx, never a 5xx or a dropped
connection. Deterministic (fixed seed), bounded (3000 requests, 10 s timeout each).

usage: random_requests.py ISSUER_URL ADMIN_URL ADMIN_KEY
"""
import json, random, urllib.error, urllib.parse, urllib.request
random.seed(7)
import sys
base, admin, admin_key = sys.argv[1], sys.argv[2], sys.argv[3]
paths=["/oauth/authorize","/oauth/login","/oauth/consent","/logout","/oauth/token","/oauth/register","/oauth/revoke","/oauth/introspect","/.well-known/jwks.json","/.well-known/oauth-authorization-server","/.well-known/oauth-protected-resource/mcp","/health","/ready","/admin/users","/admin/resources","/admin/clients","/admin/idps","/admin/keys/rotate","/admin/audit"]
keys=["grant_type","code","client_id","client_secret","redirect_uri","code_verifier","refresh_token","scope","resource","token","token_type_hint","subject_token","subject_token_type","actor_token","assertion","client_assertion","client_assertion_type","response_type","code_challenge","code_challenge_method","state","request","csrf","username","password","decision","dpop_jkt","audience"]
vals=["", "x", "%", "%zz", "\u00ff", "a"*300, "authorization_code","refresh_token","client_credentials","urn:ietf:params:oauth:grant-type:token-exchange","urn:ietf:params:oauth:grant-type:jwt-bearer","urn:ietf:params:oauth:client-assertion-type:jwt-bearer","eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.","a.b.c","https://mcp.example.com/mcp","http://127.0.0.1:3000/mcp","S256","plain","code","reporting-bot","https://evil.example/x","\n\r\t","{}","[1,2]","null"]
cts=["application/x-www-form-urlencoded","application/json","text/plain","","application/x-www-form-urlencoded; charset=utf-16","multipart/form-data; boundary=x"]
bad=0; n=0
def rnd_body():
    k=random.random()
    if k<0.4:
        return "&".join(f"{random.choice(keys)}={urllib.parse.quote(random.choice(vals))}" for _ in range(random.randint(0,8))).encode()
    if k<0.6:
        return json.dumps({random.choice(keys+["uri","scopes","redirect_uris","issuer","jwks"]): random.choice([random.choice(vals),[random.choice(vals)],{"keys":[{"kty":"EC"}]},5,None,True]) for _ in range(random.randint(0,5))}).encode()
    return bytes(random.getrandbits(8) for _ in range(random.randint(0,200)))
for i in range(3000):
    p=random.choice(paths)
    host=admin if p.startswith("/admin") else base
    method=random.choice(["GET","POST","POST","DELETE","PUT","OPTIONS"])
    q=""
    if random.random()<0.5:
        q="?"+"&".join(f"{random.choice(keys)}={urllib.parse.quote(random.choice(vals))}" for _ in range(random.randint(0,6)))
    data=rnd_body() if method in ("POST","PUT") else None
    req=urllib.request.Request(host+p+q, data=data, method=method)
    if data is not None: req.add_header("Content-Type", random.choice(cts))
    r=random.random()
    if r<0.2: req.add_header("Authorization", random.choice(["Basic ","Basic !!!","Basic cmVwb3J0aW5nLWJvdDo=","Bearer "+admin_key,"Bearer x","DPoP a.b.c"]))
    if random.random()<0.15: req.add_header("DPoP", random.choice(["a.b.c","eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2In0.e30.AAAA",""]))
    if random.random()<0.15: req.add_header("Cookie", random.choice(["pc_session=x; pc_csrf=y","pc_csrf="+"a"*40,"=;;;"]))
    try:
        resp=urllib.request.urlopen(req, timeout=10); status=resp.status
    except urllib.error.HTTPError as e:
        status=e.code
    except Exception as e:
        status=-1; print("EXC", p, method, e)
    n+=1
    if status>=500 or status<0:
        bad+=1
        if bad<10: print("BAD", status, method, p+q[:80], (data or b"")[:80])
print(f"random-request smoke: {n} requests, {bad} answered 5xx or failed")
sys.exit(1 if bad else 0)
