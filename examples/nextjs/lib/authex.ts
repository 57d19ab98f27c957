// One authex for the server side of the app (auth.ts, proxy.ts, route
// handlers); settings from the environment (AUTHEX_URL, AUTHEX_CLIENT_ID,
// AUTHEX_CLIENT_SECRET, ...: docs/nextjs.md). Never imported by the browser.
import { createAuthex } from "@authex/next";
import { authexServer } from "@authex/next/server";

// Auth.js provider id -> authex provider name; `authex serve --dev`
// registers its emulator as "dev". Ids not listed (google) pass unchanged.
export const authex = createAuthex({ providers: { emulator: "dev" } });
export const authexNext = authexServer(authex, { nextAuth: 5 });
