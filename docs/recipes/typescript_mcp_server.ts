// An MCP server (MCP TypeScript SDK, streamable HTTP, Express) protected by Portcullis.
//
// Tokens are RFC 9068 JWTs verified locally with `jose` against the issuer's JWKS. Two
// settings: MCP_AUTH_ISSUER (Portcullis's issuer URL) and MCP_RESOURCE_URL (this server's URL,
// as registered at Portcullis). Run: node typescript_mcp_server.ts (Node >= 22.18; or tsx).
import type { NextFunction, Request, Response } from 'express';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { mcpAuthMetadataRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { OAuthMetadata } from '@modelcontextprotocol/sdk/shared/auth.js';

const issuer = process.env.MCP_AUTH_ISSUER!.replace(/\/+$/, '');
const resource = new URL(process.env.MCP_RESOURCE_URL!);
// Every request needs `required`; a tool listed in `toolScopes` needs its scopes as well.
const required = ['mcp:read'];
const toolScopes: Record<string, string[]> = { write_note: ['mcp:read', 'mcp:write'] };

// RFC 8414 discovery; the metadata must name this very issuer.
const oauthMetadata = (await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()) as OAuthMetadata;
if (oauthMetadata.issuer !== issuer) throw new Error(`${issuer}'s metadata names issuer ${oauthMetadata.issuer}`);
// Keys are cached, and fetched again (at most every 30 s) when a token names an unknown `kid`.
const jwks = createRemoteJWKSet(new URL(oauthMetadata.jwks_uri!));

const verifier = {
  async verifyAccessToken(token: string): Promise<AuthInfo> {
    const { payload } = await jwtVerify(token, jwks, {
      issuer, audience: resource.href, typ: 'at+jwt', algorithms: ['ES256'], clockTolerance: 30,
      requiredClaims: ['exp', 'sub', 'client_id'],
    }).catch((e) => { throw new InvalidTokenError(`invalid token: ${e.code ?? e.message}`); });
    // DPoP-bound: only valid with a DPoP proof, which requireBearerAuth does not check.
    if (payload.cnf) throw new InvalidTokenError('DPoP-bound token sent as a bearer token');
    return {
      token, clientId: String(payload.client_id), scopes: String(payload.scope ?? '').split(' ').filter(Boolean),
      expiresAt: payload.exp, resource, extra: { sub: payload.sub },
    };
  },
};

const resourceMetadataUrl = getOAuthProtectedResourceMetadataUrl(resource);
const auth = (scopes: string[]) => requireBearerAuth({ verifier, requiredScopes: scopes, resourceMetadataUrl, expectedResource: resource });
// 403 insufficient_scope (naming the scopes to ask for) for a tools/call that needs more.
const perTool = (req: Request, res: Response, next: NextFunction) => {
  const tool = req.body?.method === 'tools/call' ? toolScopes[req.body.params?.name] : undefined;
  return tool ? auth(tool)(req, res, next) : next();
};

function mcpServer(): McpServer {
  const server = new McpServer({ name: 'typescript-recipe', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who is calling (needs mcp:read).' }, async (extra) => ({
    content: [{ type: 'text', text: JSON.stringify({ sub: extra.authInfo?.extra?.sub, client_id: extra.authInfo?.clientId, scopes: extra.authInfo?.scopes }) }],
  }));
  server.registerTool('write_note', { description: 'Saves a note (needs mcp:write).', inputSchema: { text: z.string() } }, async ({ text }, extra) => {
    notes.push(text);
    return { content: [{ type: 'text', text: `saved note ${notes.length} for ${extra.authInfo?.extra?.sub}` }] };
  });
  return server;
}
const notes: string[] = [];

const app = createMcpExpressApp({ host: resource.hostname });
app.use(mcpAuthMetadataRouter({ oauthMetadata, resourceServerUrl: resource, scopesSupported: ['mcp:read', 'mcp:write'] }));
// Stateless streamable HTTP: a server and a transport per request.
app.post(resource.pathname, auth(required), perTool, async (req: Request, res: Response) => {
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => transport.close());
  await mcpServer().connect(transport);
  await transport.handleRequest(req, res, req.body);
});
// No server-initiated stream in stateless mode.
app.all(resource.pathname, (_req: Request, res: Response) => { res.set('Allow', 'POST').status(405).end(); });
app.listen(Number(resource.port), resource.hostname);
