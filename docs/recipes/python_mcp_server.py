"""An MCP server (official `mcp` SDK, streamable HTTP) protected by Portcullis.

Tokens are RFC 9068 JWTs verified locally with PyJWT against the issuer's JWKS. Two settings:
MCP_AUTH_ISSUER (Portcullis's issuer URL) and MCP_RESOURCE_URL (this server's URL, as
registered at Portcullis). Run: python python_mcp_server.py
"""

import json
import os
import urllib.request
from urllib.parse import urlsplit

import anyio
import jwt
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import AnyHttpUrl
from starlette.middleware import Middleware

ISSUER = os.environ["MCP_AUTH_ISSUER"].rstrip("/")
RESOURCE = os.environ["MCP_RESOURCE_URL"]
# Every request needs REQUIRED; a tool listed in TOOL_SCOPES needs its scopes as well.
REQUIRED = ["mcp:read"]
TOOL_SCOPES = {"write_note": ["mcp:read", "mcp:write"]}


class JwtVerifier:
    """The SDK's TokenVerifier: an RFC 9068 access token checked against the issuer's JWKS."""

    def __init__(self, issuer: str, resource: str):
        # RFC 8414 discovery; the metadata must name this very issuer.
        with urllib.request.urlopen(f"{issuer}/.well-known/oauth-authorization-server") as r:
            meta = json.load(r)
        if meta["issuer"] != issuer:
            raise RuntimeError(f"{issuer}'s metadata names issuer {meta['issuer']}")
        # Keys are cached, and fetched again when a token names an unknown `kid`.
        self.jwks = jwt.PyJWKClient(meta["jwks_uri"], cache_keys=True, lifespan=300)
        self.issuer, self.resource = issuer, resource

    def _verify(self, token: str) -> AccessToken | None:
        try:
            if jwt.get_unverified_header(token).get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
                return None  # an ID token or anything else that is not an access token
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token, key, algorithms=["ES256"], audience=self.resource, issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub", "client_id"]}, leeway=30,
            )
        except (jwt.PyJWTError, KeyError):
            return None
        if "cnf" in claims:
            return None  # DPoP-bound: only valid with a DPoP proof, which this server does not check
        return AccessToken(
            token=token, client_id=claims["client_id"], scopes=claims.get("scope", "").split(),
            expires_at=claims["exp"], resource=self.resource, subject=claims["sub"], claims=claims,
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        return await anyio.to_thread.run_sync(self._verify, token)  # the JWKS fetch blocks


class ToolScopes:
    """403 insufficient_scope for a `tools/call` whose tool needs more than the token has,
    with the scopes to ask for in the challenge, so that MCP clients step up."""

    def __init__(self, app, metadata_url: str):
        self.app, self.metadata_url = app, metadata_url

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if scope["type"] != "http" or scope["method"] != "POST" or not isinstance(user, AuthenticatedUser):
            return await self.app(scope, receive, send)  # no token: the SDK answers 401
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            call = json.loads(body)
            tool = call["params"]["name"] if call.get("method") == "tools/call" else None
        except (ValueError, KeyError, TypeError, AttributeError):
            tool = None
        missing = [s for s in TOOL_SCOPES.get(tool, []) if s not in user.scopes]
        if missing:
            wanted = " ".join(dict.fromkeys(user.scopes + TOOL_SCOPES[tool]))
            challenge = (f'Bearer error="insufficient_scope", scope="{wanted}", '
                         f'resource_metadata="{self.metadata_url}"')
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"www-authenticate", challenge.encode()),
                                    (b"content-type", b"application/json")]})
            return await send({"type": "http.response.body", "body": b'{"error":"insufficient_scope"}'})

        replayed = False

        async def replay():  # the body once, then the connection's own messages (disconnect)
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


mcp = MCPServer(
    "python-recipe",
    token_verifier=JwtVerifier(ISSUER, RESOURCE),
    auth=AuthSettings(
        issuer_url=AnyHttpUrl(ISSUER),
        resource_server_url=AnyHttpUrl(RESOURCE),
        required_scopes=REQUIRED,
        validate_token_resource=True,
    ),
)


@mcp.tool()
def whoami() -> str:
    """Who is calling (needs mcp:read)."""
    token = get_access_token()
    return json.dumps({"sub": token.subject, "client_id": token.client_id, "scopes": token.scopes})


notes: list[str] = []


@mcp.tool()
def write_note(text: str) -> str:
    """Saves a note (needs mcp:write)."""
    notes.append(text)
    return f"saved note {len(notes)} for {get_access_token().subject}"


url = urlsplit(RESOURCE)
app = mcp.streamable_http_app(streamable_http_path=url.path, host=url.hostname)
# Inside the SDK's authentication middleware, so that the verified token is known.
app.user_middleware.append(Middleware(ToolScopes, metadata_url=str(build_resource_metadata_url(AnyHttpUrl(RESOURCE)))))

if __name__ == "__main__":
    uvicorn.run(app, host=url.hostname, port=url.port, log_level="warning")
