// A real authex for the package's tests: bin/authex (built by `make build`
// when missing) serving --dev on a free loopback port, with a temporary
// bbolt file, the emulator as provider "dev", a second provider over the
// emulator that takes authorization codes, and two confidential clients.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const CLIENT_ID = "nextjs";
export const OTHER_CLIENT_ID = "worker";
export const CLIENT_SECRET = "sdk-test-secret-0123456789";
export const CODE_REDIRECT = "http://localhost:3000/api/auth/callback/emulator";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** startAuthex starts authex and resolves once /readyz answers 200. */
export async function startAuthex() {
  const bin = process.env.AUTHEX_BIN ?? path.join(ROOT, "bin/authex");
  if (!existsSync(bin)) execFileSync("make", ["-C", ROOT, "build"], { stdio: "inherit" });
  const dir = mkdtempSync(path.join(tmpdir(), "authex-sdk-test-"));
  const port = await freePort();
  const url = `http://localhost:${port}`;
  writeFileSync(
    path.join(dir, "authex.yaml"),
    `tokens:
  access_ttl: 60s
  refresh_reuse_grace: 10s
  audience: [ "api" ]
providers:
  # The emulator again, as a provider that redeems authorization codes.
  emucode:
    type: oidc
    issuer: "${url}/emulator"
    client_ids: [ "authex-dev" ]
    client_secret: "any-secret-the-emulator-accepts"
    redirect_uris: [ "${CODE_REDIRECT}" ]
    link_by_email: auto
clients:
  # The app: checks the nonce of its own flows, as Auth.js does.
  - { id: ${CLIENT_ID}, secret: "${CLIENT_SECRET}", verifies_nonce: true }
  # A confidential client without verifies_nonce.
  - { id: ${OTHER_CLIENT_ID}, secret: "${CLIENT_SECRET}" }
log: { level: info, format: json }
`,
  );
  let log = "";
  const proc = spawn(bin, ["serve", "-config", path.join(dir, "authex.yaml"), "--dev"], {
    env: { ...process.env, AUTHEX_LISTEN: `127.0.0.1:${port}`, AUTHEX_PUBLIC_URL: url, AUTHEX_BOLT_PATH: path.join(dir, "data/authex.db") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout.on("data", (d) => (log += d));
  proc.stderr.on("data", (d) => (log += d));
  let exited = false;
  proc.on("exit", () => (exited = true));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`authex exited:\n${log}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      proc.kill();
      throw new Error(`authex not ready after 30s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    log: () => log,
    /** An id_token of the emulator (provider "dev") for these claims. */
    async mint(claims) {
      const r = await fetch(`${url}/emulator/mint`, { method: "POST", body: JSON.stringify(claims) });
      if (!r.ok) throw new Error(`mint: ${r.status} ${await r.text()}`);
      return (await r.json()).id_token;
    },
    async stop() {
      if (!exited) {
        proc.kill("SIGTERM");
        await new Promise((r) => proc.on("exit", r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
