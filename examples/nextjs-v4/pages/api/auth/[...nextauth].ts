import NextAuth, { type NextAuthOptions } from "next-auth";
import GoogleProvider from "next-auth/providers/google";
import type { Provider } from "next-auth/providers/index";
import { authex } from "@/lib/authex";

const providers: Provider[] = [];
// authex must list the same client id in providers.google.client_ids.
if (process.env.GOOGLE_CLIENT_ID) {
  providers.push(GoogleProvider({ clientId: process.env.GOOGLE_CLIENT_ID, clientSecret: process.env.GOOGLE_CLIENT_SECRET ?? "" }));
}
if (process.env.AUTHEX_EMULATOR !== "off") {
  // The authex emulator (`authex serve --dev`). next-auth checks the nonce,
  // as its Apple provider does: authex accepts the id_token because this
  // app authenticates as a client with verifies_nonce (docs/nextjs.md).
  providers.push({
    id: "emulator",
    name: "authex emulator",
    type: "oauth",
    wellKnown: `${authex.url}/emulator/.well-known/openid-configuration`,
    clientId: "authex-dev",
    clientSecret: "unused", // the emulator accepts any secret
    idToken: true,
    checks: ["pkce", "state", "nonce"],
    authorization: { params: { scope: "openid email profile" } },
    profile: (p) => ({ id: p.sub, email: p.email, name: p.name }),
  });
}

export const authOptions: NextAuthOptions = {
  providers,
  session: { strategy: "jwt" },
  // jwt: exchange at sign-in, refresh near expiry; session: the user and
  // session.error, never the tokens; signOut: revoke the authex session.
  callbacks: { jwt: authex.jwt, session: authex.session },
  events: { signOut: authex.signOut },
};

export default NextAuth(authOptions);
