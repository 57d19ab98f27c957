// @authex/next: what a Next.js app with Auth.js (next-auth v5) or next-auth
// v4 needs from authex, on the server only. This module imports neither next
// nor next-auth (the cookie and proxy side is in "@authex/next/server"), and
// nothing here may ever run in the browser: it holds the client secret and
// authex's refresh tokens.
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyResult } from "jose";

/** authex's user, as /v1/exchange and /v1/token/refresh answer it (docs/api.md). */
export type AuthexUser = {
  id: string;
  email: string;
  email_verified: boolean;
  name?: string;
  picture?: string;
  roles: string[];
  preferred_username?: string;
};

/** The answer of /v1/exchange and /v1/token/refresh. */
export type AuthexTokens = {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  /** Seconds since the epoch. */
  expires_at: number;
  refresh_token: string;
  refresh_expires_at: number;
  session_id: string;
  /** Only on /v1/exchange: whether authex created the user. */
  created?: boolean;
  user: AuthexUser;
};

/** A provider credential for /v1/exchange; send what the provider gave. */
export type Credential = {
  /** OIDC providers (Google, Apple, Microsoft, any OIDC): alone is enough. */
  id_token?: string;
  /** With id_token authex checks at_hash; alone (GitHub) authex binds it to the provider's client id. */
  access_token?: string;
  /** A server-side code exchange by authex (the provider needs redirect_uris and a secret in authex's config). */
  code?: string;
  code_verifier?: string;
  redirect_uri?: string;
  /** The raw nonce, when the caller knows it (native apps). Auth.js does not hand it over: see verifies_nonce. */
  nonce?: string;
};

/** The part of the Auth.js / next-auth JWT that authex owns. The provider's tokens are never kept: the cookie stays small. */
export type AuthexJWT = {
  access_token?: string;
  refresh_token?: string;
  expires_at?: number;
  session_id?: string;
  user?: Pick<AuthexUser, "id" | "email" | "name" | "picture" | "roles">;
  /** Set when authex refused the refresh token (revoked, expired, reused): the user must sign in again. */
  error?: "RefreshTokenError";
};

/** The fields of Auth.js's / next-auth's `account` that the exchange reads. */
export type AccountLike = {
  provider: string;
  id_token?: string | null;
  access_token?: string | null;
};

/** authex's error body: one shape everywhere (docs/api.md). */
export type AuthexErrorBody = {
  error: string;
  error_description?: string;
  reason?: string;
  request_id?: string;
  link_token?: string;
};

/**
 * AuthexError is authex's answer to a failed request: the HTTP status, the
 * OAuth-style `error`, and the `reason` that says which check failed.
 */
export class AuthexError extends Error {
  override readonly name = "AuthexError";
  readonly status: number;
  readonly error: string;
  readonly reason: string | undefined;
  readonly requestId: string | undefined;
  readonly body: AuthexErrorBody;

  constructor(status: number, body: AuthexErrorBody) {
    super(
      `authex ${status} ${body.error}${body.reason ? `/${body.reason}` : ""}` +
        `${body.error_description ? `: ${body.error_description}` : ""}${body.request_id ? ` (request ${body.request_id})` : ""}`,
    );
    this.status = status;
    this.error = body.error;
    this.reason = body.reason;
    this.requestId = body.request_id;
    this.body = body;
  }

  /** The refresh token is dead for good (400 invalid_grant): sign in again. Anything else may pass. */
  get sessionEnded(): boolean {
    return this.status === 400 && this.error === "invalid_grant";
  }
}

export type AuthexOptions = {
  /** authex's server.public_url; the access token's `iss`. Default: env AUTHEX_URL, else http://localhost:8080. */
  url?: string;
  /** This app's entry in authex's `clients:` (env AUTHEX_CLIENT_ID / AUTHEX_CLIENT_SECRET). Sent as HTTP Basic when set. */
  clientId?: string;
  clientSecret?: string;
  /** Auth.js provider id -> authex provider name; an id not listed is sent as it is. */
  providers?: Record<string, string>;
  /** Refresh when the access token has fewer seconds left (env AUTHEX_REFRESH_MARGIN, default 30). */
  refreshMargin?: number;
  /** The `aud` verify demands (env AUTHEX_AUDIENCE, comma-separated; default "api"). */
  audience?: string | string[];
  /** The `iss` verify demands; default `url`. */
  issuer?: string;
  /** For tests and instrumentation. */
  fetch?: typeof fetch;
  /** Where a refused or failed refresh is reported; default console. */
  logger?: Pick<Console, "warn" | "error">;
};

export type LogoutScope = "local" | "others" | "global";

/** Verified authex access token claims (RFC 9068 plus authex's). */
export type AuthexClaims = JWTPayload & {
  sub: string;
  sid?: string;
  client_id?: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  roles?: string[];
  amr?: string[];
  idp?: string;
};

export type Authex = {
  readonly url: string;
  /** POST /v1/exchange: a provider credential -> authex's tokens. */
  exchange(provider: string, credential: Credential, options?: { profileName?: string }): Promise<AuthexTokens>;
  /** The exchange for an Auth.js `account` at sign-in: id_token and/or access_token, provider mapped. */
  exchangeAccount(account: AccountLike, options?: { profileName?: string }): Promise<AuthexTokens>;
  /** POST /v1/token/refresh: rotates the refresh token. */
  refresh(refreshToken: string): Promise<AuthexTokens>;
  /** POST /v1/logout: revokes the session of this refresh token (scope local by default). */
  logout(refreshToken: string, scope?: LogoutScope): Promise<number>;
  /** The JWT fields to keep from an answer. */
  toJWT(tokens: AuthexTokens): AuthexJWT;
  /** Whether the token's access token expires within the refresh margin. */
  needsRefresh(token: AuthexJWT, nowSeconds?: number): boolean;
  /**
   * One refresh attempt: the rotated pair; `error: "RefreshTokenError"` when authex refused the
   * refresh token; the very same token object when authex could not answer (try again later).
   */
  refreshed<T extends AuthexJWT>(token: T): Promise<T>;
  /** The `jwt` callback (v5 and v4): exchange at sign-in, refresh near expiry. */
  jwt<T extends object>(params: { token: T; account?: AccountLike | null; user?: { name?: string | null } | null }): Promise<T & AuthexJWT>;
  /** The `session` callback (v5 and v4): exposes the user, the error and the session id, never the tokens. */
  session<S extends { user?: object | null }>(params: { session: S; token: AuthexJWT }): Promise<S & SessionFields>;
  /** The `signOut` event (v5 and v4): revokes the authex session. Never throws. */
  signOut(message: { token?: AuthexJWT | null; session?: unknown }): Promise<void>;
  /** Verifies an authex access token offline (JWKS cached per URL for the process), iss, aud and typ at+jwt. */
  verify(accessToken: string): Promise<JWTVerifyResult<AuthexClaims>>;
};

/** What the session callback adds to the session. */
export type SessionFields = {
  error?: "RefreshTokenError";
  session_id?: string;
};

function env(name: string): string | undefined {
  // `process` is absent in some edge bundles; Next inlines process.env.X at build.
  return typeof process !== "undefined" ? process.env?.[name] : undefined;
}

// One remote key set per JWKS URL for the whole process: jose caches the
// keys and refetches (with a cooldown) only on an unknown kid, after a key
// rotation. A key set per request would fetch on every request.
const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function keySet(url: string): ReturnType<typeof createRemoteJWKSet> {
  let set = keySets.get(url);
  if (!set) {
    set = createRemoteJWKSet(new URL(url));
    keySets.set(url, set);
  }
  return set;
}

/** basicAuth is HTTP Basic as RFC 6749 §2.3.1 has it: id and secret form-encoded, then base64. */
export function basicAuth(clientId: string, clientSecret: string): string {
  const form = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
  const bytes = new TextEncoder().encode(`${form(clientId)}:${form(clientSecret)}`);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return `Basic ${btoa(bin)}`;
}

/** createAuthex returns the calls to one authex, configured from options and then the environment. */
export function createAuthex(options: AuthexOptions = {}): Authex {
  const url = (options.url ?? env("AUTHEX_URL") ?? "http://localhost:8080").replace(/\/+$/, "");
  const clientId = options.clientId ?? env("AUTHEX_CLIENT_ID") ?? "";
  const clientSecret = options.clientSecret ?? env("AUTHEX_CLIENT_SECRET") ?? "";
  const margin = options.refreshMargin ?? Number(env("AUTHEX_REFRESH_MARGIN") ?? 30);
  const audience = options.audience ?? (env("AUTHEX_AUDIENCE") ?? "api").split(",").map((a) => a.trim());
  const issuer = options.issuer ?? url;
  const providers = options.providers ?? {};
  const log = options.logger ?? console;
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  if (!Number.isFinite(margin) || margin < 0) throw new TypeError(`authex: refresh margin ${margin} is not a number of seconds`);

  async function post<T>(path: string, body: Record<string, unknown>): Promise<T> {
    const headers: Record<string, string> = { "Content-Type": "application/json", Accept: "application/json" };
    // A confidential client authenticates on every call that carries a
    // refresh token or a provider credential: authex refreshes and logs
    // out a session only for the client it was issued to.
    if (clientId) headers.Authorization = basicAuth(clientId, clientSecret);
    const r = await doFetch(`${url}${path}`, { method: "POST", headers, body: JSON.stringify(body), cache: "no-store" });
    const text = await r.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!r.ok) {
      const b = parsed as Partial<AuthexErrorBody> | undefined;
      throw new AuthexError(
        r.status,
        b && typeof b.error === "string" ? (b as AuthexErrorBody) : { error: "server_error", error_description: `${r.status} ${r.statusText}: not an authex answer` },
      );
    }
    if (parsed === undefined || typeof parsed !== "object" || parsed === null) {
      throw new AuthexError(r.status, { error: "server_error", error_description: `${path} answered ${r.status} without a JSON object` });
    }
    return parsed as T;
  }

  function withoutEmpty(c: Credential): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(c)) if (typeof v === "string" && v !== "") out[k] = v;
    return out;
  }

  async function jwt<T extends object>(params: {
    token: T;
    account?: AccountLike | null;
    user?: { name?: string | null } | null;
  }): Promise<T & AuthexJWT> {
    const { token, account, user } = params;
    if (account) {
      const t = await authex.exchangeAccount(account, user?.name ? { profileName: user.name } : undefined);
      // Without a database adapter Auth.js makes up a new random user id
      // at every sign-in: authex's user id is the stable one.
      return { ...token, sub: t.user.id, ...authex.toJWT(t), error: undefined };
    }
    const current = token as T & AuthexJWT;
    // The proxy normally refreshed already (and could set the cookie);
    // this covers requests it does not see.
    return authex.needsRefresh(current) ? authex.refreshed(current) : current;
  }

  const authex: Authex = {
    url,

    exchange(provider, credential, opts) {
      const body: Record<string, unknown> = { provider, ...withoutEmpty(credential) };
      if (opts?.profileName) body.profile = { name: opts.profileName };
      return post<AuthexTokens>("/v1/exchange", body);
    },

    exchangeAccount(account, opts) {
      const credential: Credential = {};
      if (account.id_token) credential.id_token = account.id_token;
      if (account.access_token) credential.access_token = account.access_token;
      if (!credential.id_token && !credential.access_token) {
        return Promise.reject(new TypeError(`authex: Auth.js account of provider ${account.provider} has neither id_token nor access_token`));
      }
      return authex.exchange(providers[account.provider] ?? account.provider, credential, opts);
    },

    refresh(refreshToken) {
      return post<AuthexTokens>("/v1/token/refresh", { refresh_token: refreshToken });
    },

    async logout(refreshToken, scope = "local") {
      const r = await post<{ revoked: number }>("/v1/logout", { refresh_token: refreshToken, scope });
      return r.revoked;
    },

    toJWT(t) {
      const { id, email, name, picture, roles } = t.user;
      return {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        expires_at: t.expires_at,
        session_id: t.session_id,
        user: { id, email, name, picture, roles },
      };
    },

    needsRefresh(token, now = Date.now() / 1000) {
      return !!token.refresh_token && !token.error && (token.expires_at ?? 0) - margin <= now;
    },

    async refreshed(token) {
      try {
        const t = await authex.refresh(token.refresh_token ?? "");
        return { ...token, ...authex.toJWT(t), error: undefined };
      } catch (e) {
        if (e instanceof AuthexError && e.sessionEnded) {
          log.warn(`authex refused the refresh token: ${e.reason ?? e.error} (request ${e.requestId ?? "?"})`);
          return { ...token, error: "RefreshTokenError" };
        }
        // Unreachable, rate-limited or a 5xx: keep the session, the next
        // request tries again (the refresh token is still good).
        log.error("authex refresh failed; keeping the session for now:", e instanceof Error ? e.message : e);
        return token;
      }
    },

    jwt,

    async session({ session, token }) {
      const out = { ...session } as typeof session & SessionFields & { user?: Record<string, unknown> };
      if (token.user) {
        out.user = {
          ...(session.user ?? {}),
          id: token.user.id,
          email: token.user.email,
          name: token.user.name ?? null,
          image: token.user.picture ?? null,
        };
      }
      out.error = token.error;
      out.session_id = token.session_id;
      return out;
    },

    async signOut(message) {
      const refreshToken = message.token?.refresh_token;
      if (!refreshToken) return;
      try {
        await authex.logout(refreshToken);
      } catch (e) {
        // The cookie goes anyway; the session at authex then ends at its
        // idle limit. Say so, with authex's request id.
        log.error("authex logout failed:", e instanceof Error ? e.message : e);
      }
    },

    verify(accessToken) {
      return jwtVerify<AuthexClaims>(accessToken, keySet(`${url}/.well-known/jwks.json`), {
        issuer,
        audience,
        typ: "at+jwt", // RFC 9068: an id_token or another JWT of a trusted key is not an access token
      });
    },
  };
  return authex;
}

/** Why verify refused a token, as a short machine-readable reason. */
export function verifyFailureReason(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return "expired";
  if (e instanceof joseErrors.JOSEError) return e.code;
  return "invalid";
}
