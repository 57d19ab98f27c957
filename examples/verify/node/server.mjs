// An API in Node that accepts authex access tokens (docs/verify.md).
import { createServer } from "node:http";
import { createRemoteJWKSet, jwtVerify } from "jose";

const issuer = process.env.AUTHEX_URL ?? "http://localhost:8080"; // server.public_url
const audience = process.env.AUTHEX_AUDIENCE ?? "api"; // one of tokens.audience

// Fetched on first use, cached, refetched when a token names an unknown kid.
const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));

export async function accessTokenClaims(authorization) {
  const token = /^Bearer (\S+)$/.exec(authorization ?? "")?.[1];
  if (!token) throw new Error("no Bearer token");
  const { payload } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: "at+jwt", // RFC 9068
    algorithms: ["ES256"], // authex's tokens.algorithm
  });
  return payload;
}

createServer(async (req, res) => {
  let claims;
  try {
    claims = await accessTokenClaims(req.headers.authorization);
  } catch {
    res.writeHead(401, { "WWW-Authenticate": "Bearer", "Content-Type": "application/json" });
    return res.end(JSON.stringify({ error: "invalid or missing access token" }));
  }
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify({ sub: claims.sub, email: claims.email }));
}).listen(Number(process.env.PORT ?? 8000), "127.0.0.1");
