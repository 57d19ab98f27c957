// The session cookie round trip against a real authex, with next-auth's own
// codecs: v5 (Auth.js, salted with the cookie name) through the proxy on a
// real NextRequest, v4 (no salt) through the cookie functions, each read
// back by that version's getToken, as the app's auth() /
// getServerSession() would read it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import * as v5 from "next-auth/jwt";
import { NextRequest } from "next/server.js";
import { createAuthex } from "../dist/index.js";
import {
  CHUNK_SIZE,
  authexServer,
  parseCookieHeader,
  readSessionCookie,
  refreshSessionCookie,
  sessionCookieName,
  sessionCookieSalt,
  writeSessionCookie,
} from "../dist/server.js";
import { CLIENT_ID, CLIENT_SECRET, startAuthex } from "./authex-server.mjs";

const v4 = createRequire(import.meta.url)("next-auth-v4/jwt");
const SECRET = randomBytes(32).toString("hex");
const quiet = { warn() {}, error() {} };
let server;
let authex;

before(async () => {
  server = await startAuthex();
  // A margin longer than the access token's life: every request is due.
  authex = createAuthex({ url: server.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, refreshMargin: 3600, logger: quiet });
});
after(async () => server?.stop());

async function signIn(extra = {}) {
  const idToken = await server.mint({ email: `c-${randomBytes(4).toString("hex")}@example.com` });
  return authex.jwt({ token: { name: "C", ...extra }, account: { provider: "dev", id_token: idToken } });
}

function cookieHeader(writes) {
  return writes.filter((w) => w.value).map((w) => `${w.name}=${w.value}`).join("; ");
}

test("cookie names and salts", () => {
  assert.equal(sessionCookieName(5, false), "authjs.session-token");
  assert.equal(sessionCookieName(5, true), "__Secure-authjs.session-token");
  assert.equal(sessionCookieName(4, false), "next-auth.session-token");
  assert.equal(sessionCookieName(4, true), "__Secure-next-auth.session-token");
  assert.equal(sessionCookieSalt(5, "__Secure-authjs.session-token"), "__Secure-authjs.session-token");
  assert.equal(sessionCookieSalt(4, "next-auth.session-token"), "");
});

test("parseCookieHeader takes any header without throwing, and reads what browsers send", () => {
  assert.deepEqual([...parseCookieHeader('a=1; b="two"; a=3; =x; bad; c=%E0%A4%A; d=%41')], [["a", "1"], ["b", "two"], ["d", "A"]]);
  assert.equal(parseCookieHeader(undefined).size, 0);
  // Hostile headers: random bytes, huge, many separators. Never an exception.
  const alphabet = ' =;"%\u0000\u00e9abc.0123456789-_';
  for (let i = 0; i < 2000; i++) {
    let h = "";
    const n = Math.floor(Math.random() * 200);
    for (let j = 0; j < n; j++) h += alphabet[Math.floor(Math.random() * alphabet.length)];
    parseCookieHeader(h);
  }
  assert.equal(parseCookieHeader(`x=${"a".repeat(1 << 20)}`).get("x").length, 1 << 20);
});

describe("next-auth v5", () => {
  const server5 = () => authexServer(authex, { nextAuth: 5, secret: SECRET });

  for (const secure of [false, true]) {
    test(`the proxy refreshes and sets the rotated cookie on the response and the request (${secure ? "https" : "http"})`, async () => {
      const token = await signIn();
      const name = sessionCookieName(5, secure);
      const value = await v5.encode({ token, secret: SECRET, salt: name, maxAge: 3600 });
      const req = new NextRequest(`${secure ? "https" : "http"}://app.example/page`, { headers: { cookie: `other=1; ${name}=${value}` } });
      const res = await server5().proxy(req);

      const set = res.cookies.get(name);
      assert.ok(set?.value, "the response sets the session cookie");
      assert.equal(set.httpOnly, true);
      assert.equal(set.secure, secure);
      assert.equal(set.sameSite, "lax");
      // What Auth.js's auth() reads on the next request.
      const next = await v5.getToken({ req: new Request("http://app.example/", { headers: { cookie: `${name}=${set.value}` } }), secret: SECRET, secureCookie: secure, salt: name });
      assert.equal(next.session_id, token.session_id);
      assert.notEqual(next.refresh_token, token.refresh_token, "the rotated refresh token is in the cookie");
      assert.equal(next.name, "C", "Auth.js's own claims survive");
      // This request's render sees the new cookie too (x-middleware-request-cookie).
      const forwarded = res.headers.get("x-middleware-request-cookie");
      assert.ok(forwarded?.includes(set.value), "the render gets the rotated cookie");
      assert.ok(forwarded.includes("other=1"));
    });
  }

  test("no session, an undecodable cookie, or a token not due: the proxy passes the request on unchanged", async () => {
    const lazy = authexServer(createAuthex({ url: server.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, logger: quiet }), { nextAuth: 5, secret: SECRET });
    const token = await signIn();
    const fresh = await v5.encode({ token, secret: SECRET, salt: "authjs.session-token", maxAge: 3600 });
    const cases = ["", "authjs.session-token=garbage", `authjs.session-token=${fresh}`];
    for (const cookie of cases) {
      const res = await lazy.proxy(new NextRequest("http://app.example/", { headers: { cookie } }));
      assert.equal(res.cookies.getAll().length, 0, cookie);
      assert.equal(res.headers.get("x-middleware-request-cookie"), null);
    }
  });

  test("a revoked session is written as RefreshTokenError, and verifyRequest answers session_expired", async () => {
    const token = await signIn();
    await authex.logout(token.refresh_token);
    const value = await v5.encode({ token, secret: SECRET, salt: "authjs.session-token", maxAge: 3600 });
    const s = server5();
    const res = await s.proxy(new NextRequest("http://app.example/", { headers: { cookie: `authjs.session-token=${value}` } }));
    const written = res.cookies.get("authjs.session-token").value;
    const after = await v5.decode({ token: written, secret: SECRET, salt: "authjs.session-token" });
    assert.equal(after.error, "RefreshTokenError");
    const v = await s.verifyRequest(new Request("http://app.example/", { headers: { cookie: `authjs.session-token=${written}` } }));
    assert.deepEqual(v, { ok: false, status: 401, body: { error: "session_expired", reason: "RefreshTokenError" } });
  });

  test("verifyRequest: a Bearer token, the session's token, none, and a bad one", async () => {
    const token = await signIn();
    const s = server5();
    const bearer = await s.verifyRequest(new Request("http://app.example/", { headers: { authorization: `Bearer ${token.access_token}` } }));
    assert.equal(bearer.ok, true);
    assert.equal(bearer.claims.sub, token.user.id);
    const value = await v5.encode({ token, secret: SECRET, salt: "authjs.session-token", maxAge: 3600 });
    const fromCookie = await s.verifyRequest({ getAll: () => [{ name: "authjs.session-token", value }] }); // next/headers' cookies()
    assert.equal(fromCookie.ok, true);
    assert.equal(fromCookie.claims.sid, token.session_id);
    const fromNode = await s.verifyRequest({ headers: { cookie: `a=b; authjs.session-token=${value}` } }); // a Pages Router API route's req
    assert.equal(fromNode.ok, true);
    assert.equal(await s.accessToken({ headers: { authorization: "Bearer abc" } }), "abc");
    assert.deepEqual(await s.verifyRequest(new Request("http://app.example/")), { ok: false, status: 401, body: { error: "unauthorized", reason: "missing_token" } });
    const bad = await s.verifyRequest(new Request("http://app.example/", { headers: { authorization: "Bearer not.a.jwt" } }));
    assert.equal(bad.ok, false);
    assert.equal(bad.body.error, "invalid_token");
  });

  test("a session too big for one cookie is written in chunks that Auth.js joins, and stale chunks are deleted", async () => {
    const token = await signIn({ padding: randomBytes(3000).toString("hex") });
    const name = "authjs.session-token";
    const value = await v5.encode({ token, secret: SECRET, salt: name, maxAge: 3600 });
    assert.ok(value.length > CHUNK_SIZE);
    const parts = [];
    for (let i = 0; i * CHUNK_SIZE < value.length; i++) parts.push(`${name}.${i}=${value.slice(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)}`);
    // A stale third chunk from an even bigger cookie.
    const stale = `${name}.${parts.length}=zzz`;
    const cookies = parseCookieHeader([...parts, stale].join("; "));
    const options = { nextAuth: 5, secret: SECRET, codec: v5 };
    assert.equal((await readSessionCookie(parseCookieHeader(parts.join("; ")), options)).token.session_id, token.session_id);
    const outcome = await refreshSessionCookie(authex, new Map([...cookies].filter(([k]) => !k.endsWith(`.${parts.length}`))), options);
    assert.equal(outcome.refreshed, true);
    assert.ok(outcome.cookies.filter((c) => c.value).length >= 2, "written in chunks");
    const next = await v5.getToken({ req: new Request("http://x/", { headers: { cookie: cookieHeader(outcome.cookies) } }), secret: SECRET, salt: name });
    assert.notEqual(next.refresh_token, token.refresh_token);


    // Smaller again: one cookie, and every chunk goes.
    const small = await writeSessionCookie({ session_id: "s" }, name, outcome.cookies.map((c) => c.name), options);
    assert.deepEqual(small.map((c) => [c.name, c.options.maxAge > 0]), [[name, true], ...outcome.cookies.map((c) => [c.name, false])]);
  });
});

describe("next-auth v4", () => {
  const options = () => ({ nextAuth: 4, secret: SECRET, codec: v4 });

  for (const secure of [false, true]) {
    test(`refresh round trip with v4's unsalted codec, read back by v4's getToken (${secure ? "https" : "http"})`, async () => {
      const token = await signIn();
      const name = sessionCookieName(4, secure);
      // As next-auth v4's handler writes it: encode without a salt.
      const value = await v4.encode({ token, secret: SECRET });
      const outcome = await refreshSessionCookie(authex, parseCookieHeader(`${name}=${value}`), options(secure));
      assert.equal(outcome.refreshed, true);
      assert.deepEqual(outcome.cookies.map((c) => [c.name, c.options.secure]), [[name, secure]]);
      const cookies = Object.fromEntries(outcome.cookies.map((c) => [c.name, c.value]));
      const next = await v4.getToken({ req: { cookies, headers: {} }, secret: SECRET, secureCookie: secure });
      assert.equal(next.session_id, token.session_id);
      assert.notEqual(next.refresh_token, token.refresh_token);
    });
  }

  test("a v5 cookie is no v4 session, and the other way round (different names and salts)", async () => {
    const token = await signIn();
    const v5value = await v5.encode({ token, secret: SECRET, salt: "authjs.session-token", maxAge: 60 });
    const v4value = await v4.encode({ token, secret: SECRET });
    assert.equal(await readSessionCookie(parseCookieHeader(`next-auth.session-token=${v5value}`), options(false)), null);
    assert.equal(await readSessionCookie(parseCookieHeader(`authjs.session-token=${v4value}`), { nextAuth: 5, secret: SECRET, codec: v5 }), null);
    assert.equal((await readSessionCookie(parseCookieHeader(`next-auth.session-token=${v4value}`), options(false))).token.session_id, token.session_id);
  });
});
