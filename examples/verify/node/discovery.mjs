// openid-client in plain OAuth mode finds authex through its RFC 8414
// metadata and refreshes a session at the token endpoint it names.
import * as client from "openid-client";

const config = await client.discovery(
  new URL(process.env.AUTHEX_URL), // server.public_url
  process.env.AUTHEX_CLIENT_ID,
  undefined,
  client.None(), // a public client; a confidential one: client.ClientSecretBasic(secret)
  { algorithm: "oauth2", execute: [client.allowInsecureRequests] }, // http only on loopback in tests
);
const tokens = await client.refreshTokenGrant(config, process.env.REFRESH_TOKEN);
console.log(JSON.stringify({
  issuer: config.serverMetadata().issuer,
  token_endpoint: config.serverMetadata().token_endpoint,
  refreshed: typeof tokens.access_token === "string" && typeof tokens.refresh_token === "string",
}));
