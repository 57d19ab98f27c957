// The session cookie of Auth.js (next-auth v5) and next-auth v4: where it
// is, how it is salted, and the refresh that rewrites it. The cookie's
// cryptography is next-auth's own (its encode and decode are passed in as a
// codec), so this file imports neither next nor next-auth and the tests
// run it against both versions' real codecs.
import type { Authex, AuthexJWT } from "./index.js";

export type NextAuthVersion = 4 | 5;

/** next-auth's `encode` and `decode` ("next-auth/jwt" in v4 and v5 alike). */
export type JWTCodec = {
  encode(params: { token: Record<string, unknown>; secret: string; salt: string; maxAge: number }): Promise<string>;
  decode(params: { token: string; secret: string; salt: string }): Promise<Record<string, unknown> | null>;
};

export type SessionCookieOptions = {
  /** 5: Auth.js (next-auth v5), cookie `authjs.session-token`, salted with its name. 4: `next-auth.session-token`, no salt. */
  nextAuth: NextAuthVersion;
  /** The cookie secret; default env AUTH_SECRET (v5) or NEXTAUTH_SECRET (v4), the other as fallback. */
  secret?: string;
  /** session.maxAge in seconds (default 30 days, next-auth's default). */
  maxAge?: number;
  codec: JWTCodec;
};

export type CookieWrite = {
  name: string;
  /** Empty with maxAge 0: delete the cookie (a chunk no longer used). */
  value: string;
  options: { httpOnly: true; sameSite: "lax"; path: "/"; secure: boolean; maxAge: number };
};

export type SessionCookie = {
  /** The decoded next-auth JWT. */
  token: Record<string, unknown> & AuthexJWT;
  /** The cookie's name (a `__Secure-` one on https), as the request carried it. */
  name: string;
  /** Every cookie the value was read from: the name itself, or its chunks name.0, name.1, ... */
  parts: string[];
};

const DEFAULT_MAX_AGE = 30 * 24 * 60 * 60;

// next-auth splits a cookie value longer than this into chunks (v4:
// 4096 - 163, v5: 4096 - 160); the smaller keeps both happy.
export const CHUNK_SIZE = 3933;

/** The session cookie's name. */
export function sessionCookieName(version: NextAuthVersion, secure: boolean): string {
  const base = version === 5 ? "authjs.session-token" : "next-auth.session-token";
  return secure ? `__Secure-${base}` : base;
}

/** The salt next-auth derives the cookie's key with: the cookie name in v5, none in v4. */
export function sessionCookieSalt(version: NextAuthVersion, name: string): string {
  return version === 5 ? name : "";
}

export function cookieSecret(options: Pick<SessionCookieOptions, "nextAuth" | "secret">): string {
  const env = typeof process !== "undefined" ? process.env : {};
  const secret = options.secret ?? (options.nextAuth === 5 ? env.AUTH_SECRET ?? env.NEXTAUTH_SECRET : env.NEXTAUTH_SECRET ?? env.AUTH_SECRET);
  if (!secret) throw new Error(`authex: no cookie secret (set ${options.nextAuth === 5 ? "AUTH_SECRET" : "NEXTAUTH_SECRET"})`);
  return secret;
}

/** parseCookieHeader reads a Cookie header; a malformed pair is skipped, the first of two equal names wins. */
export function parseCookieHeader(header: string | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of (header ?? "").split(";")) {
    const i = pair.indexOf("=");
    if (i <= 0) continue;
    const name = pair.slice(0, i).trim();
    let value = pair.slice(i + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    try {
      value = decodeURIComponent(value);
    } catch {
      continue;
    }
    if (name && !out.has(name)) out.set(name, value);
  }
  return out;
}

// The value under name, joined from its chunks (name.0, name.1, ...) when
// next-auth split it, as next-auth's SessionStore reads it.
function cookieValue(cookies: Map<string, string>, name: string): { value: string; parts: string[] } | null {
  const chunks: Array<[number, string]> = [];
  for (const key of cookies.keys()) {
    if (!key.startsWith(`${name}.`)) continue;
    const suffix = key.slice(name.length + 1);
    if (/^\d{1,3}$/.test(suffix)) chunks.push([Number(suffix), key]);
  }
  if (chunks.length > 0) {
    chunks.sort((a, b) => a[0] - b[0]);
    return { value: chunks.map(([, key]) => cookies.get(key) ?? "").join(""), parts: chunks.map(([, key]) => key) };
  }
  const whole = cookies.get(name);
  return whole ? { value: whole, parts: [name] } : null;
}

/**
 * readSessionCookie decodes the session cookie, looking for the secure
 * name first. A cookie that does not decode (another secret, tampered,
 * expired) is no session: null, never an exception.
 */
export async function readSessionCookie(cookies: Map<string, string>, options: SessionCookieOptions): Promise<SessionCookie | null> {
  const secret = cookieSecret(options);
  for (const secure of [true, false]) {
    const name = sessionCookieName(options.nextAuth, secure);
    const found = cookieValue(cookies, name);
    if (!found) continue;
    try {
      const token = await options.codec.decode({ token: found.value, secret, salt: sessionCookieSalt(options.nextAuth, name) });
      if (token) return { token: token as SessionCookie["token"], name, parts: found.parts };
    } catch {
      // Not ours (rotated secret, tampering): treated as signed out.
    }
  }
  return null;
}

/** writeSessionCookie encodes token into the cookie writes that replace `previous` (chunked past CHUNK_SIZE). */
export async function writeSessionCookie(
  token: Record<string, unknown>,
  name: string,
  previous: string[],
  options: SessionCookieOptions,
): Promise<CookieWrite[]> {
  const maxAge = options.maxAge ?? DEFAULT_MAX_AGE;
  const value = await options.codec.encode({ token, secret: cookieSecret(options), salt: sessionCookieSalt(options.nextAuth, name), maxAge });
  const cookieOptions = { httpOnly: true, sameSite: "lax", path: "/", secure: name.startsWith("__Secure-"), maxAge } as const;
  const writes: CookieWrite[] = [];
  if (value.length <= CHUNK_SIZE) {
    writes.push({ name, value, options: cookieOptions });
  } else {
    for (let i = 0; i * CHUNK_SIZE < value.length; i++) {
      writes.push({ name: `${name}.${i}`, value: value.slice(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE), options: cookieOptions });
    }
  }
  // A part the new value no longer uses must go, or next-auth would join
  // a stale chunk to the new value.
  for (const part of previous) {
    if (!writes.some((w) => w.name === part)) writes.push({ name: part, value: "", options: { ...cookieOptions, maxAge: 0 } });
  }
  return writes;
}

export type RefreshOutcome =
  /** Nothing to write: no session, not due, or authex could not answer (the next request tries again). */
  | { refreshed: false; token: SessionCookie["token"] | null }
  /** The rotated pair, or RefreshTokenError: set these cookies on the response and on the request. */
  | { refreshed: true; token: SessionCookie["token"]; cookies: CookieWrite[] };

/**
 * refreshSessionCookie refreshes authex's tokens in the session cookie when
 * they are near expiry and returns the cookies that keep the rotated
 * refresh token. Concurrent requests with the same cookie each refresh with
 * the same refresh token; authex's reuse grace answers them all with the
 * same pair, so none signs the user out.
 */
export async function refreshSessionCookie(authex: Authex, cookies: Map<string, string>, options: SessionCookieOptions): Promise<RefreshOutcome> {
  const session = await readSessionCookie(cookies, options);
  if (!session || !authex.needsRefresh(session.token)) return { refreshed: false, token: session?.token ?? null };
  const next = await authex.refreshed(session.token);
  if (next === session.token) return { refreshed: false, token: session.token };
  return { refreshed: true, token: next, cookies: await writeSessionCookie(next, session.name, session.parts, options) };
}
