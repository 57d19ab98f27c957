// @authex/next/server: the Next.js side that needs next and next-auth (the
// app's own copies: both are peer dependencies). proxy.ts / middleware.ts
// refresh here, where the response can set the cookie; route handlers and
// server actions read the session and verify authex's access token here.
import { decode, encode } from "next-auth/jwt";
import { NextResponse, type NextRequest } from "next/server.js";
import type { JWTHeaderParameters } from "jose";
import { type Authex, type AuthexClaims, type AuthexJWT, verifyFailureReason } from "./index.js";
import {
  type JWTCodec,
  type NextAuthVersion,
  type SessionCookieOptions,
  parseCookieHeader,
  readSessionCookie,
  refreshSessionCookie,
} from "./cookie.js";

export * from "./cookie.js";

export type ServerOptions = {
  /** Which next-auth the app runs: 5 (Auth.js, the default) or 4. */
  nextAuth?: NextAuthVersion;
  /** The cookie secret; default env AUTH_SECRET (v5) or NEXTAUTH_SECRET (v4). */
  secret?: string;
  /** session.maxAge in seconds, if the app changed next-auth's 30 days. */
  maxAge?: number;
};

/**
 * Anything cookies can be read from: a Request or NextRequest (route handlers), next/headers'
 * cookies() (server actions, Server Components), or a Node request (Pages Router API routes).
 */
export type CookieSource =
  | Request
  | { getAll(): Array<{ name: string; value: string }> }
  | { headers: { cookie?: string | undefined; authorization?: string | undefined } };

/** The outcome of verifyRequest: the verified claims, or the JSON error and status to answer with. */
export type VerifyOutcome =
  | { ok: true; claims: AuthexClaims; header: JWTHeaderParameters; accessToken: string }
  | { ok: false; status: 401; body: { error: "unauthorized" | "session_expired" | "invalid_token"; reason: string } };

export type AuthexServer = {
  /** proxy.ts (Next 16) / middleware.ts (Next 14, 15): refresh near expiry and keep the rotated cookie. */
  proxy(req: NextRequest): Promise<NextResponse>;
  /** The decoded session (next-auth JWT) of a request or of cookies(); null when signed out. */
  readSession(source: CookieSource): Promise<(Record<string, unknown> & AuthexJWT) | null>;
  /** The authex access token to call an API with: the Bearer header's, else the session's. */
  accessToken(source: CookieSource): Promise<string | null>;
  /** Route handlers and server actions: the Bearer token or the session's, verified offline. */
  verifyRequest(source: CookieSource): Promise<VerifyOutcome>;
};

// next-auth's encode and decode have the same shape in v4 and v5: the one
// the app installed is the one this module resolves.
const codec: JWTCodec = {
  encode: (p) => encode(p as Parameters<typeof encode>[0]),
  decode: (p) => decode(p as Parameters<typeof decode>[0]) as Promise<Record<string, unknown> | null>,
};

function cookiesOf(source: CookieSource): Map<string, string> {
  if (source instanceof Request) return parseCookieHeader(source.headers.get("cookie"));
  if ("getAll" in source) return new Map(source.getAll().map((c) => [c.name, c.value] as const));
  return parseCookieHeader(source.headers.cookie);
}

function bearer(source: CookieSource): string | null {
  let header: string | null | undefined;
  if (source instanceof Request) header = source.headers.get("authorization");
  else if ("headers" in source) header = source.headers.authorization;
  return header?.match(/^Bearer ([^\s]+)$/i)?.[1] ?? null;
}

/** authexServer binds authex to this app's next-auth version and cookie secret. */
export function authexServer(authex: Authex, options: ServerOptions = {}): AuthexServer {
  const cookieOptions: SessionCookieOptions = { nextAuth: options.nextAuth ?? 5, secret: options.secret, maxAge: options.maxAge, codec };

  async function readSession(source: CookieSource) {
    return (await readSessionCookie(cookiesOf(source), cookieOptions))?.token ?? null;
  }

  return {
    async proxy(req) {
      const outcome = await refreshSessionCookie(authex, cookiesOf(req), cookieOptions);
      if (!outcome.refreshed) return NextResponse.next();
      // To this request's render: its Cookie header now holds the new
      // token, so auth() / getServerSession() and route handlers see it and
      // do not refresh (and lose the rotated token) again.
      for (const c of outcome.cookies) {
        if (c.value) req.cookies.set(c.name, c.value);
        else req.cookies.delete(c.name);
      }
      const res = NextResponse.next({ request: { headers: req.headers } });
      // To the browser: its next request carries the new token.
      for (const c of outcome.cookies) res.cookies.set(c.name, c.value, c.options);
      return res;
    },

    readSession,

    async accessToken(source) {
      const fromHeader = bearer(source);
      if (fromHeader) return fromHeader;
      const session = await readSession(source);
      return session && !session.error ? (session.access_token ?? null) : null;
    },

    async verifyRequest(source) {
      let accessToken = bearer(source);
      if (!accessToken) {
        const session = await readSession(source);
        if (session?.error) return { ok: false, status: 401, body: { error: "session_expired", reason: session.error } };
        accessToken = session?.access_token ?? null;
      }
      if (!accessToken) return { ok: false, status: 401, body: { error: "unauthorized", reason: "missing_token" } };
      try {
        const { payload, protectedHeader } = await authex.verify(accessToken);
        return { ok: true, claims: payload, header: protectedHeader, accessToken };
      } catch (e) {
        return { ok: false, status: 401, body: { error: "invalid_token", reason: verifyFailureReason(e) } };
      }
    },
  };
}
