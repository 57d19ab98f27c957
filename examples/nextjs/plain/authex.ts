// The example without @authex/next: the same calls with fetch, for apps
// that would rather own them (docs/nextjs.md, "Without the package"). The
// example app type-checks this directory; the browser test runs the
// package. The jwt callback (auth.ts) and the proxy (proxy.ts) share these
// calls. Nothing here runs in the browser, and no provider token or authex
// token ever reaches it.
import type { JWT } from "next-auth/jwt";

export const AUTHEX_URL = (process.env.AUTHEX_URL ?? "http://localhost:8080").replace(/\/$/, "");

// Refresh when the access token has less than this many seconds left.
export const REFRESH_MARGIN_SECONDS = Number(process.env.AUTHEX_REFRESH_MARGIN ?? 30);

// When authex's config lists `clients:`, this app is a confidential client
// and authenticates on sign-in and refresh: set AUTHEX_CLIENT_ID and
// AUTHEX_CLIENT_SECRET. Unset (authex without clients, as in `--dev`),
// no client credentials are sent.
const CLIENT_ID = process.env.AUTHEX_CLIENT_ID ?? "";
const CLIENT_SECRET = process.env.AUTHEX_CLIENT_SECRET ?? "";

// clientAuth is HTTP Basic as RFC 6749 §2.3.1 has it: id and secret
// form-encoded, then base64.
function clientAuth(): Record<string, string> {
  if (!CLIENT_ID) return {};
  const pair = `${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`;
  return { Authorization: `Basic ${btoa(pair)}` };
}

// Auth.js provider id -> authex provider name (its key in authex's config).
export const AUTHEX_PROVIDER: Record<string, string> = {
  google: "google",
  emulator: "dev", // `authex serve --dev` registers its emulator as "dev"
};

// What authex answers on /v1/exchange and /v1/token/refresh (docs/api.md).
export type AuthexUser = { id: string; email: string; email_verified: boolean; name?: string; picture?: string; roles: string[] };
export type AuthexTokens = {
  access_token: string;
  refresh_token: string;
  expires_at: number; // seconds since the epoch
  session_id: string;
  user: AuthexUser;
};
export type AuthexError = { error: string; error_description: string; reason?: string; request_id: string };

// The part of the Auth.js JWT we keep: authex's tokens and user, never the
// provider's tokens, so the session cookie stays well under 4 KB.
export type AuthexJWT = {
  access_token?: string;
  refresh_token?: string;
  expires_at?: number;
  session_id?: string;
  user?: Pick<AuthexUser, "id" | "email" | "name" | "picture" | "roles">;
  error?: "RefreshTokenError";
};

export class AuthexRequestError extends Error {
  constructor(public status: number, public body: AuthexError) {
    super(`authex ${status} ${body.error}/${body.reason ?? ""}: ${body.error_description} (request ${body.request_id})`);
  }
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${AUTHEX_URL}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
    cache: "no-store",
  });
}

async function fail(r: Response): Promise<never> {
  const body = (await r.json().catch(() => ({ error: "server_error", error_description: r.statusText, request_id: "" }))) as AuthexError;
  throw new AuthexRequestError(r.status, body);
}

// exchange trades the provider's id_token for authex's tokens (sign-in).
export async function exchange(provider: string, idToken: string, accessToken?: string): Promise<AuthexTokens> {
  const r = await post("/v1/exchange", { provider, id_token: idToken, access_token: accessToken }, clientAuth());
  if (!r.ok) return fail(r);
  return r.json();
}

// refresh rotates the refresh token. Concurrent calls with the same token
// (parallel renders, several tabs) all get the same new pair from authex
// within its reuse grace. With clients configured, authex refreshes a
// session only for the client it was issued to, so the same credentials go
// along.
export async function refresh(refreshToken: string): Promise<AuthexTokens> {
  const r = await post("/v1/token/refresh", { refresh_token: refreshToken }, clientAuth());
  if (!r.ok) return fail(r);
  return r.json();
}

// logout revokes the authex session of this refresh token. With clients
// configured, authex logs a refresh token out only for its own client, as
// it refreshes it: the same credentials go along.
export async function logout(refreshToken: string): Promise<void> {
  const r = await post("/v1/logout", { refresh_token: refreshToken, scope: "local" }, clientAuth());
  if (!r.ok) return fail(r);
}

export function fromTokens(t: AuthexTokens): AuthexJWT {
  const { id, email, name, picture, roles } = t.user;
  return {
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    expires_at: t.expires_at,
    session_id: t.session_id,
    user: { id, email, name, picture, roles },
  };
}

export function needsRefresh(token: AuthexJWT, now = Date.now() / 1000): boolean {
  return !!token.refresh_token && !token.error && (token.expires_at ?? 0) - REFRESH_MARGIN_SECONDS <= now;
}

// refreshed returns the token after one refresh attempt: the rotated pair;
// RefreshTokenError when authex refused the refresh token (session
// revoked, expired or reused: the user must sign in again); the token
// unchanged when authex could not be reached (try again next request).
export async function refreshed<T extends JWT>(token: T & AuthexJWT): Promise<T & AuthexJWT> {
  try {
    const t = await refresh(token.refresh_token!);
    return { ...token, ...fromTokens(t), error: undefined };
  } catch (e) {
    if (e instanceof AuthexRequestError && e.status === 400 && e.body.error === "invalid_grant") {
      console.warn(`authex refused the refresh token: ${e.body.reason} (request ${e.body.request_id})`);
      return { ...token, error: "RefreshTokenError" };
    }
    console.error("authex refresh failed; keeping the session for now:", e);
    return token;
  }
}
