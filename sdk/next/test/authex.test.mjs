// The package against a real authex (bin/authex --dev): exchange for every
// credential shape the jwt callback meets, typed errors, refresh (also
// concurrent), sign-out and offline verification.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { AuthexError, basicAuth, createAuthex } from "../dist/index.js";
import { CLIENT_ID, CLIENT_SECRET, CODE_REDIRECT, OTHER_CLIENT_ID, startAuthex } from "./authex-server.mjs";

const quiet = { warn() {}, error() {} };
let server;
let authex;

before(async () => {
  server = await startAuthex();
  authex = createAuthex({ url: server.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, providers: { emulator: "dev" }, logger: quiet });
});
after(async () => server?.stop());

const email = (name) => `${name}-${randomBytes(4).toString("hex")}@example.com`;

async function expectAuthexError(promise, status, error, reason) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof AuthexError, `not an AuthexError: ${e}`);
    assert.equal(e.status, status, e.message);
    assert.equal(e.error, error, e.message);
    if (reason) assert.equal(e.reason, reason, e.message);
    assert.ok(e.requestId, "authex's request id is kept");
    return true;
  });
}

describe("exchange", () => {
  test("an id_token through the jwt callback: authex's tokens and user id, never the provider's token", async () => {
    const who = email("ada");
    const idToken = await server.mint({ email: who, name: "Ada" });
    const token = await authex.jwt({
      token: { name: "Ada", sub: "random-authjs-id" },
      account: { provider: "emulator", type: "oidc", id_token: idToken },
      user: { name: "Ada" },
    });
    assert.equal(token.user.email, who);
    assert.equal(token.sub, token.user.id, "sub is authex's user id");
    assert.ok(token.access_token && token.refresh_token && token.session_id);
    assert.ok(token.expires_at > Date.now() / 1000);
    assert.equal(token.error, undefined);
    assert.ok(!JSON.stringify(token).includes(idToken), "the provider's id_token is not kept");
  });

  test("an authorization code, redeemed by authex", async () => {
    const who = email("code");
    const verifier = randomBytes(32).toString("base64url");
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const form = new URLSearchParams({
      response_type: "code", client_id: "authex-dev", redirect_uri: CODE_REDIRECT, scope: "openid email profile",
      state: "s", code_challenge: challenge, code_challenge_method: "S256", email: who, name: "Code", action: "approve",
    });
    const r = await fetch(`${server.url}/emulator/authorize`, { method: "POST", body: form, redirect: "manual" });
    assert.equal(r.status, 302);
    const code = new URL(r.headers.get("location")).searchParams.get("code");
    assert.ok(code, r.headers.get("location"));
    const t = await authex.exchange("emucode", { code, code_verifier: verifier, redirect_uri: CODE_REDIRECT });
    assert.equal(t.user.email, who);
    assert.equal(t.created, true);
  });

  test("typed errors: audience, replay, unknown provider, missing client credentials", async () => {
    const foreign = await server.mint({ email: email("aud"), aud: "someone-else" });
    await expectAuthexError(authex.exchange("dev", { id_token: foreign }), 401, "invalid_token", "audience_mismatch");

    const once = await server.mint({ email: email("replay") });
    await authex.exchange("dev", { id_token: once });
    await expectAuthexError(authex.exchange("dev", { id_token: once }), 401, "invalid_token", "replayed");

    await expectAuthexError(authex.exchange("nope", { id_token: once }), 400, "unsupported_provider");

    const anonymous = createAuthex({ url: server.url, logger: quiet });
    await expectAuthexError(anonymous.exchange("dev", { id_token: await server.mint({ email: email("anon") }) }), 401, "invalid_client");
  });

  test("an account without any token is refused before any request", async () => {
    await assert.rejects(authex.exchangeAccount({ provider: "emulator" }), TypeError);
  });
});

describe("a nonce checked by Auth.js (verifies_nonce)", () => {
  // Auth.js checked the nonce of its flow and hands the jwt callback the
  // id_token without it; authex accepts it from this client only, once.
  test("the authenticated client's exchange of a nonce-bearing id_token succeeds, once", async () => {
    const idToken = await server.mint({ email: email("apple"), nonce: randomBytes(16).toString("base64url") });
    const token = await authex.jwt({ token: {}, account: { provider: "emulator", id_token: idToken } });
    assert.ok(token.refresh_token);
    await expectAuthexError(authex.exchangeAccount({ provider: "emulator", id_token: idToken }), 401, "invalid_token", "replayed");
  });

  test("anyone else presenting it is refused: no client, or a client without verifies_nonce", async () => {
    const idToken = await server.mint({ email: email("stolen"), nonce: "n-0123456789" });
    const anonymous = createAuthex({ url: server.url, providers: { emulator: "dev" }, logger: quiet });
    await expectAuthexError(anonymous.exchangeAccount({ provider: "emulator", id_token: idToken }), 401, "invalid_client");
    const other = createAuthex({ url: server.url, clientId: OTHER_CLIENT_ID, clientSecret: CLIENT_SECRET, logger: quiet });
    await expectAuthexError(other.exchange("dev", { id_token: idToken }), 401, "invalid_token", "nonce_mismatch");
    const wrongSecret = createAuthex({ url: server.url, clientId: CLIENT_ID, clientSecret: "not-the-secret-at-all", logger: quiet });
    await expectAuthexError(wrongSecret.exchange("dev", { id_token: idToken }), 401, "invalid_client");
    // A nonce that is sent is still compared, for this client too.
    await expectAuthexError(authex.exchange("dev", { id_token: idToken, nonce: "another" }), 401, "invalid_token", "nonce_mismatch");
    // And the refusals spent nothing: the app's own exchange still works.
    assert.ok((await authex.exchange("dev", { id_token: idToken })).refresh_token);
  });
});

describe("refresh", () => {
  async function signedIn() {
    const idToken = await server.mint({ email: email("refresh") });
    return authex.jwt({ token: {}, account: { provider: "emulator", id_token: idToken } });
  }

  test("near expiry the jwt callback rotates the refresh token; otherwise leaves the token alone", async () => {
    const token = await signedIn();
    assert.equal(await authex.jwt({ token }), token, "not due: the same object");
    const eager = createAuthex({ url: server.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, refreshMargin: 3600, logger: quiet });
    const next = await eager.jwt({ token });
    assert.notEqual(next.refresh_token, token.refresh_token);
    assert.equal(next.session_id, token.session_id);
    assert.equal(next.error, undefined);
  });

  test("concurrent refreshes with one refresh token all succeed, with the same pair, and the session lives on", async () => {
    const token = await signedIn();
    const answers = await Promise.all(Array.from({ length: 8 }, () => authex.refreshed(token)));
    for (const a of answers) {
      assert.equal(a.error, undefined);
      assert.equal(a.refresh_token, answers[0].refresh_token, "one new pair for all");
    }
    const later = await authex.refreshed(answers[0]);
    assert.equal(later.error, undefined, "no reuse detected: the session was not revoked");
    assert.notEqual(later.refresh_token, answers[0].refresh_token);
  });

  test("a revoked session becomes RefreshTokenError; an unreachable authex keeps the token", async () => {
    const token = await signedIn();
    await authex.signOut({ token });
    const ended = await authex.refreshed(token);
    assert.equal(ended.error, "RefreshTokenError");
    assert.equal(authex.needsRefresh(ended, Number.MAX_SAFE_INTEGER), false, "no refresh after the session ended");

    const down = createAuthex({ url: "http://127.0.0.1:9", clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, logger: quiet });
    assert.equal(await down.refreshed(token), token, "the very same token: try again next request");
  });

  test("logout of a refresh token without the client's credentials is refused", async () => {
    const token = await signedIn();
    const anonymous = createAuthex({ url: server.url, logger: quiet });
    await expectAuthexError(anonymous.logout(token.refresh_token), 401, "invalid_client");
    assert.equal(await authex.logout(token.refresh_token), 1);
  });
});

describe("session callback", () => {
  test("exposes the user, the error and the session id, never authex's tokens", async () => {
    const session = await authex.session({
      session: { user: { name: "x" }, expires: "2030-01-01" },
      token: { access_token: "at", refresh_token: "rt", session_id: "sid", user: { id: "u1", email: "a@b.c", name: "A", roles: [] } },
    });
    assert.deepEqual(session, { user: { name: "A", id: "u1", email: "a@b.c", image: null }, expires: "2030-01-01", error: undefined, session_id: "sid" });
  });
});

describe("verify", () => {
  test("authex's access token verifies; an id_token, another audience or a tampered token does not", async () => {
    const idToken = await server.mint({ email: email("verify") });
    const t = await authex.exchange("dev", { id_token: idToken });
    const { payload, protectedHeader } = await authex.verify(t.access_token);
    assert.equal(payload.sub, t.user.id);
    assert.equal(payload.sid, t.session_id);
    assert.equal(protectedHeader.typ, "at+jwt");

    // A provider's id_token is signed by a key authex's JWKS does not hold.
    await assert.rejects(authex.verify(await server.mint({ email: email("id") })), { code: "ERR_JWKS_NO_MATCHING_KEY" });
    const otherAudience = createAuthex({ url: server.url, audience: "billing" });
    await assert.rejects(otherAudience.verify(t.access_token), { code: "ERR_JWT_CLAIM_VALIDATION_FAILED" });
    const [h, p, s] = t.access_token.split(".");
    const tampered = `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === "AAAA" ? "BBBB" : "AAAA"}`;
    await assert.rejects(authex.verify(tampered), { code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });
  });
});

describe("request shape", () => {
  // What reaches authex for a GitHub sign-in (an access token, no
  // id_token): captured by a local HTTP server, since GitHub's API is not
  // reachable from a test.
  test("a GitHub account sends its access_token alone, with HTTP Basic client authentication", async () => {
    const seen = [];
    const capture = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        seen.push({ url: req.url, auth: req.headers.authorization, body: JSON.parse(body) });
        res.writeHead(401, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: "invalid_token", reason: "signature", error_description: "x", request_id: "r1" }));
      });
    });
    await new Promise((r) => capture.listen(0, "127.0.0.1", r));
    try {
      const a = createAuthex({ url: `http://127.0.0.1:${capture.address().port}/`, clientId: "my app", clientSecret: "s:é", providers: { github: "gh" } });
      await assert.rejects(a.exchangeAccount({ provider: "github", access_token: "gho_x", id_token: null }), AuthexError);
      assert.deepEqual(seen, [{ url: "/v1/exchange", auth: basicAuth("my app", "s:é"), body: { provider: "gh", access_token: "gho_x" } }]);
      assert.equal(basicAuth("my app", "s:é"), `Basic ${Buffer.from("my+app:s%3A%C3%A9").toString("base64")}`);
    } finally {
      capture.close();
    }
  });
});
