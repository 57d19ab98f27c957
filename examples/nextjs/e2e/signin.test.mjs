// Browser end-to-end test of the Next-Auth path: Debian's chromium driven
// by playwright-core against an example app (examples/nextjs on Auth.js v5,
// examples/nextjs-v4 on next-auth v4) and a real authex --dev. Run by
// e2e/run.sh (make e2e), which starts both and sets the env below.
// playwright-core and next-auth/jwt are the app's own (APP_DIR), so the
// test reads the session cookie with the app's next-auth version.
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

const APP_URL = need("APP_URL"); // http://localhost:PORT (not 127.0.0.1: Next rewrites it)
const APP_DIR = need("APP_DIR");
const AUTHEX_URL = need("AUTHEX_URL");
const AUTH_SECRET = need("AUTH_SECRET");
const AUTHEX_LOG = need("AUTHEX_LOG");
const CLIENT_ID = need("AUTHEX_CLIENT_ID");
const CLIENT_SECRET = need("AUTHEX_CLIENT_SECRET");
const ARTIFACTS = process.env.ARTIFACTS ?? "test-artifacts";
const ACCESS_TTL = Number(process.env.ACCESS_TTL_SECONDS ?? 4);

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through e2e/run.sh)`);
  return v;
}

const appRequire = createRequire(path.join(APP_DIR, "package.json"));
// A CommonJS module's exports come as `default` (and maybe named too).
const appImport = async (spec) => {
  const m = await import(pathToFileURL(appRequire.resolve(spec)).href);
  return m.default ?? m;
};
const { chromium } = await appImport("playwright-core");
const { decode } = await appImport("next-auth/jwt");
const NEXT_AUTH = Number(JSON.parse(readFileSync(path.join(APP_DIR, "node_modules/next-auth/package.json"), "utf8")).version.split(".")[0]);
// v5 (Auth.js) salts the cookie's key with the cookie's name; v4 does not.
const COOKIE = NEXT_AUTH >= 5 ? "authjs.session-token" : "next-auth.session-token";
const SALT = NEXT_AUTH >= 5 ? COOKIE : "";
const LABEL = path.basename(APP_DIR);
const clientAuth = `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString("base64")}`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const step = (msg) => console.log(`[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

// The Auth.js session JWT from the browser's cookie jar, decrypted with the
// app's secret: the test reads the authex tokens the app keeps.
async function sessionToken(context) {
  const c = (await context.cookies(APP_URL)).find((c) => c.name === COOKIE);
  if (!c) return null;
  return decode({ token: c.value, secret: AUTH_SECRET, salt: SALT });
}

async function authexRefresh(refreshToken) {
  const r = await fetch(`${AUTHEX_URL}/v1/token/refresh`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: clientAuth },
    body: JSON.stringify({ refresh_token: refreshToken }),
  });
  return { status: r.status, body: await r.json() };
}

// Requests authex logged for a route, with their statuses.
function authexRequests(route) {
  return readFileSync(AUTHEX_LOG, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l))
    .filter((e) => e.msg === "request" && e.route === route);
}

async function expectSignedIn(page, email) {
  await page.waitForSelector("#user-email", { timeout: 15000 });
  assert.equal(await page.textContent("#user-email"), email);
  const answer = page.locator("#api-answer");
  await answer.filter({ hasText: /^\d{3} / }).waitFor({ timeout: 15000 });
  const text = await answer.textContent();
  assert.match(text, /^200 /, `protected API answered ${text}`);
  const body = JSON.parse(text.slice(4));
  assert.equal(body.ok, true);
  assert.equal(body.sub, await page.textContent("#user-id"), "API's sub is the authex user id");
  assert.equal(body.email, email);
  if (await page.locator("#action-sub").count()) {
    assert.equal(await page.textContent("#action-sub"), body.sub, "the server action verified the same user's token");
  }
  return body;
}

async function signInWithEmulator(page, email, name) {
  await page.goto(APP_URL);
  await page.click("#signin-emulator");
  await page.waitForURL(`${AUTHEX_URL}/emulator/authorize?**`);
  // The app's provider config checks the nonce (as Auth.js's Apple provider
  // does): the id_token will carry it, and authex accepts it from the
  // authenticated client with verifies_nonce.
  const authorize = new URL(page.url());
  assert.ok(authorize.searchParams.get("nonce"), `Auth.js sent no nonce: ${authorize}`);
  const recent = page.locator(`button[data-email="${email}"]`);
  if (name === undefined) {
    await recent.click(); // pick the recent account
  } else {
    await page.fill("#email", email);
    await page.fill("#name", name);
    await page.click("#approve");
  }
  await page.waitForURL(`${APP_URL}/`);
}

const userDataDir = mkdtempSync(path.join(tmpdir(), "authex-e2e-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
let failed = false;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => console.error("page error:", e));

  // 1. Sign in through the emulator page.
  const email = "ada@example.com";
  await signInWithEmulator(page, email, "Ada Lovelace");
  const first = await expectSignedIn(page, email);
  assert.equal(await page.textContent("#user-name"), "Ada Lovelace");
  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = path.join(ARTIFACTS, `${LABEL}-signed-in.png`);
  await page.screenshot({ path: shot, fullPage: true });
  step(`signed in as ${email} (authex user ${first.sub}); protected API verified the token (${first.alg}); screenshot ${shot}`);

  const before = await sessionToken(context);
  assert.ok(before?.refresh_token && before.session_id, "the session cookie holds authex's tokens");
  assert.equal(before.sub, first.sub, "token.sub is the authex user id");
  const cookieSize = (await context.cookies(APP_URL)).find((c) => c.name === COOKIE).value.length;
  assert.ok(cookieSize < 4000, `session cookie is ${cookieSize} bytes`);
  step(`session cookie ${cookieSize} bytes, session ${before.session_id}`);

  // 2. Past expiry, 5 concurrent requests each trigger a refresh with the
  //    same refresh token; then reload: still signed in.
  await sleep(Math.max(0, before.expires_at * 1000 - Date.now()) + 1200);
  const refreshesBefore = authexRequests("/v1/token/refresh").length;
  const statuses = await page.evaluate(() =>
    Promise.all(Array.from({ length: 5 }, () => fetch("/api/protected", { cache: "no-store" }).then((r) => r.status))),
  );
  assert.deepEqual(statuses, [200, 200, 200, 200, 200], "every concurrent request was served");
  const burst = authexRequests("/v1/token/refresh").slice(refreshesBefore);
  assert.ok(burst.length >= 2, `only ${burst.length} refresh(es) reached authex: the requests were not concurrent`);
  assert.ok(burst.every((e) => e.status === 200), `refresh statuses ${burst.map((e) => e.status)}`);
  const after = await sessionToken(context);
  assert.equal(after.session_id, before.session_id, "same authex session");
  assert.notEqual(after.refresh_token, before.refresh_token, "the browser holds the rotated refresh token");
  assert.ok(after.expires_at > before.expires_at);
  step(`5 concurrent requests past expiry: ${burst.length} refreshes at authex, all 200; cookie rotated`);

  await page.reload();
  await expectSignedIn(page, email);
  step("reload: still signed in");

  //    And the session is alive at authex (a reuse would have revoked it):
  //    expire once more and navigate; the proxy's refresh must succeed.
  await sleep(Math.max(0, after.expires_at * 1000 - Date.now()) + 1200);
  const n = authexRequests("/v1/token/refresh").length;
  await page.reload();
  await expectSignedIn(page, email);
  const later = authexRequests("/v1/token/refresh").slice(n);
  assert.ok(later.length >= 1 && later.every((e) => e.status === 200), `refresh after the burst: ${later.map((e) => e.status)}`);
  const latest = await sessionToken(context);
  assert.equal(latest.session_id, before.session_id);
  step("expired again: refreshed once more (session not revoked)");

  // 3. Sign out: the authex session is revoked; its refresh token is refused.
  await page.click("#signout");
  await page.waitForSelector("#signin-emulator");
  assert.equal(await sessionToken(context), null, "session cookie cleared");
  const refused = await authexRefresh(latest.refresh_token);
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.equal(refused.body.error, "invalid_grant");
  assert.equal(refused.body.reason, "revoked");
  step("signed out: authex refuses the session's refresh token (invalid_grant/revoked)");

  // 4. Signing in again (picking the recent account) is the same authex
  //    user, not a new random Auth.js id.
  await signInWithEmulator(page, email);
  const again = await expectSignedIn(page, email);
  assert.equal(again.sub, first.sub, "same authex user id on the second sign-in");
  const second = await sessionToken(context);
  assert.notEqual(second.session_id, before.session_id, "a new session");
  step(`signed in again from the recent list: same user ${again.sub}, new session`);

  // 5. A session revoked elsewhere (the user's other device, through
  //    /v1/me/sessions) surfaces as RefreshTokenError on the page.
  const out = await fetch(`${AUTHEX_URL}/v1/me/sessions/${second.session_id}`, {
    method: "DELETE",
    headers: { Authorization: `Bearer ${second.access_token}` },
  });
  assert.equal(out.status, 204, await out.text());
  await sleep(Math.max(0, second.expires_at * 1000 - Date.now()) + 1200);
  await page.reload();
  await page.waitForSelector("#session-ended", { timeout: 15000 });
  assert.ok(await page.isVisible("#signin-emulator"));
  assert.equal((await sessionToken(context)).error, "RefreshTokenError");
  const refusedApi = await page.evaluate(() => fetch("/api/protected", { cache: "no-store" }).then(async (r) => [r.status, await r.json()]));
  assert.deepEqual(refusedApi, [401, { error: "session_expired", reason: "RefreshTokenError" }]);
  step("session revoked through /v1/me/sessions: the page shows RefreshTokenError and offers sign-in; the API answers 401 session_expired");
} catch (e) {
  failed = true;
  console.error("E2E FAILED:", e);
  try {
    mkdirSync(ARTIFACTS, { recursive: true });
    await context.pages()[0]?.screenshot({ path: path.join(ARTIFACTS, `${LABEL}-failure.png`), fullPage: true });
  } catch {}
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
if (failed) process.exit(1);
step(`${LABEL} (next-auth ${NEXT_AUTH}) passed (access_ttl ${ACCESS_TTL}s)`);
