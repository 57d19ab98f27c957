import NextAuth from "next-auth";
import type { Provider } from "next-auth/providers";
import Google from "next-auth/providers/google";
import { authex } from "@/lib/authex";

const providers: Provider[] = [];
// Reads AUTH_GOOGLE_ID and AUTH_GOOGLE_SECRET; authex must list the same
// client id in providers.google.client_ids.
if (process.env.AUTH_GOOGLE_ID) providers.push(Google);
if (process.env.AUTHEX_EMULATOR !== "off") {
  // The authex emulator (`authex serve --dev`): a local OpenID provider
  // where you type any email. The nonce is checked here, by Auth.js, as
  // Apple's provider does: authex accepts the id_token because this app
  // authenticates as a client with verifies_nonce (docs/nextjs.md).
  providers.push({
    id: "emulator",
    name: "authex emulator",
    type: "oidc",
    issuer: `${authex.url}/emulator`,
    clientId: "authex-dev",
    clientSecret: "unused", // the emulator accepts any secret
    checks: ["pkce", "state", "nonce"],
  });
}

export const { handlers, auth, signIn, signOut } = NextAuth({
  providers,
  session: { strategy: "jwt" },
  // jwt: exchange at sign-in, refresh near expiry; session: the user and
  // session.error, never the tokens; signOut: revoke the authex session.
  callbacks: { jwt: authex.jwt, session: authex.session },
  events: { signOut: authex.signOut },
});
