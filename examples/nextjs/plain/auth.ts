import NextAuth, { type NextAuthConfig } from "next-auth";
import type { Provider } from "next-auth/providers";
import Google from "next-auth/providers/google";
import {
  AUTHEX_PROVIDER,
  AUTHEX_URL,
  AuthexRequestError,
  exchange,
  fromTokens,
  logout,
  needsRefresh,
  refreshed,
} from "./authex";

const providers: Provider[] = [];
if (process.env.AUTH_GOOGLE_ID) {
  // Reads AUTH_GOOGLE_ID and AUTH_GOOGLE_SECRET. authex must list the same
  // client id in providers.google.client_ids.
  providers.push(Google);
}
if (process.env.AUTHEX_EMULATOR !== "off") {
  // The authex emulator (`authex serve --dev`, or `authex emulator`): a
  // local OpenID provider where you type any email. Auth.js does the code
  // flow with PKCE and checks the nonce, as for Apple; authex accepts the
  // nonce-bearing id_token because the exchange authenticates as a client
  // with verifies_nonce (AUTHEX_CLIENT_ID, AUTHEX_CLIENT_SECRET).
  providers.push({
    id: "emulator",
    name: "authex emulator",
    type: "oidc",
    issuer: process.env.AUTHEX_EMULATOR_ISSUER ?? `${AUTHEX_URL}/emulator`,
    clientId: process.env.AUTHEX_EMULATOR_CLIENT_ID ?? "authex-dev",
    clientSecret: "unused", // the emulator accepts any secret
    checks: ["pkce", "state", "nonce"],
  });
}

export const config = {
  providers,
  session: { strategy: "jwt" },
  callbacks: {
    async jwt({ token, account }) {
      // Sign-in: trade the provider's id_token for authex's tokens, and keep
      // only those (not account.*: the cookie must stay small).
      if (account) {
        const provider = AUTHEX_PROVIDER[account.provider];
        if (!provider || !account.id_token) throw new Error(`no authex provider for ${account.provider}`);
        const t = await exchange(provider, account.id_token, account.access_token);
        // Without a database adapter Auth.js makes up a new random user id
        // at every sign-in: use authex's user id instead.
        return { ...token, sub: t.user.id, ...fromTokens(t), error: undefined };
      }
      // Every later call: refresh near expiry. proxy.ts normally did it
      // already for this request (and could set the cookie); this covers
      // requests it does not see.
      if (needsRefresh(token)) return refreshed(token);
      return token;
    },
    async session({ session, token }) {
      // What the browser may see (/api/auth/session): the user and the error,
      // never authex's tokens.
      if (token.user) {
        session.user = { ...session.user, id: token.user.id, email: token.user.email, name: token.user.name ?? null, image: token.user.picture ?? null };
      }
      session.error = token.error;
      session.session_id = token.session_id;
      return session;
    },
  },
  events: {
    // Sign-out revokes the authex session, so its refresh token dies with
    // the cookie.
    async signOut(message) {
      const token = "token" in message ? message.token : null;
      if (!token?.refresh_token) return;
      try {
        await logout(token.refresh_token);
      } catch (e) {
        console.error("authex logout failed:", e instanceof AuthexRequestError ? e.message : e);
      }
    },
  },
} satisfies NextAuthConfig;

export const { handlers, auth, signIn, signOut } = NextAuth(config);
