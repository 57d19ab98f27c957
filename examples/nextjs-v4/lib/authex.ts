// One authex for the server side of the app (the NextAuth route,
// middleware.ts, API routes); settings from the environment (AUTHEX_URL,
// AUTHEX_CLIENT_ID, AUTHEX_CLIENT_SECRET, ...: docs/nextjs.md).
import { createAuthex } from "@authex/next";
import { authexServer } from "@authex/next/server";

// next-auth provider id -> authex provider name; `authex serve --dev`
// registers its emulator as "dev". Ids not listed (google) pass unchanged.
export const authex = createAuthex({ providers: { emulator: "dev" } });
export const authexNext = authexServer(authex, { nextAuth: 4 });
