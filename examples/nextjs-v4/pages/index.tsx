import type { GetServerSideProps } from "next";
import { getServerSession, type Session } from "next-auth";
import { signIn, signOut } from "next-auth/react";
import { ProtectedAnswer } from "@/components/protected-answer";
import { authOptions } from "./api/auth/[...nextauth]";

type Props = { session: Session | null; providers: Array<{ id: string; label: string }> };

// Rendered per request: the session is read from this request's cookie
// (which middleware.ts refreshed when it was near expiry).
export const getServerSideProps: GetServerSideProps<Props> = async ({ req, res }) => {
  const session = await getServerSession(req, res, authOptions);
  const providers = [
    ...(process.env.GOOGLE_CLIENT_ID ? [{ id: "google", label: "Sign in with Google" }] : []),
    ...(process.env.AUTHEX_EMULATOR !== "off" ? [{ id: "emulator", label: "Sign in with the authex emulator" }] : []),
  ];
  // JSON drops the undefined fields that props may not hold.
  return { props: { session: session ? JSON.parse(JSON.stringify(session)) : null, providers } };
};

export default function Home({ session, providers }: Props) {
  if (!session?.user || session.error === "RefreshTokenError") {
    return (
      <main>
        <h1>authex + Next.js (next-auth v4)</h1>
        {session?.error === "RefreshTokenError" && (
          <p id="session-ended" role="alert">
            Your session has ended (it was signed out or expired). Please sign in again.
          </p>
        )}
        {providers.map((p) => (
          <button key={p.id} id={`signin-${p.id}`} type="button" onClick={() => signIn(p.id, { callbackUrl: "/" })}>
            {p.label}
          </button>
        ))}
      </main>
    );
  }

  return (
    <main>
      <h1>authex + Next.js (next-auth v4)</h1>
      <p>
        Signed in as <b id="user-name">{session.user.name}</b> &lt;<span id="user-email">{session.user.email}</span>&gt;
      </p>
      <p>
        authex user id <code id="user-id">{session.user.id}</code>, session <code id="session-id">{session.session_id}</code>
      </p>
      <h2>Protected API</h2>
      <ProtectedAnswer />
      <button id="signout" type="button" onClick={() => signOut({ callbackUrl: "/" })}>
        Sign out
      </button>
    </main>
  );
}
