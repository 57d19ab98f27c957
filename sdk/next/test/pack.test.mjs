// `npm pack` gives a tarball that installs and imports on its own: dist is
// in it (built by prepare), the sources and tests are not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

test("npm pack, install the tarball elsewhere, import it", { timeout: 180_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), "authex-next-pack-"));
  try {
    const out = execFileSync("npm", ["pack", "--json", "--pack-destination", dir], { cwd: PKG, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const [info] = JSON.parse(out);
    const files = info.files.map((f) => f.path);
    for (const f of ["dist/index.js", "dist/index.d.ts", "dist/server.js", "dist/cookie.js", "README.md", "package.json"]) assert.ok(files.includes(f), `${f} in the tarball`);
    assert.ok(!files.some((f) => f.startsWith("src/") || f.startsWith("test/")), `no sources or tests: ${files}`);

    const app = path.join(dir, "app");
    execFileSync("mkdir", ["-p", app]);
    writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "pack-check", private: true, type: "module" }));
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", path.join(dir, info.filename)], { cwd: app, stdio: "ignore" });
    const probe = `
      import { createAuthex, AuthexError } from "@authex/next";
      const a = createAuthex({ url: "http://127.0.0.1:9" });
      console.log(JSON.stringify([typeof a.jwt, typeof a.verify, new AuthexError(400, { error: "invalid_grant" }).sessionEnded]));`;
    const printed = execFileSync("node", ["--input-type=module", "-e", probe], { cwd: app, encoding: "utf8" });
    assert.deepEqual(JSON.parse(printed), ["function", "function", true]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
