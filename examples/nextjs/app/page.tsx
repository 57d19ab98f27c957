import { auth, signIn, signOut } from "@/auth";
import { whoAmI } from "./actions";
import { ProtectedAnswer } from "./protected-answer";

// Rendered per request: the session is read from this request's cookie.
export const dynamic = "force-dynamic";

const providers = [
  ...(process.env.AUTH_GOOGLE_ID ? [{ id: "google", label: "Sign in with Google" }] : []),
  ...(process.env.AUTHEX_EMULATOR !== "off" ? [{ id: "emulator", label: "Sign in with the authex emulator" }] : []),
];

export default async function Home() {
  const session = await auth();

  if (!session?.user || session.error === "RefreshTokenError") {
    return (
      <main>
        <h1>authex + Next.js</h1>
        {session?.error === "RefreshTokenError" && (
          <p id="session-ended" role="alert">
            Your session has ended (it was signed out or expired). Please sign in again.
          </p>
        )}
        {providers.map((p) => (
          <form
            key={p.id}
            action={async () => {
              "use server";
              await signIn(p.id, { redirectTo: "/" });
            }}
          >
            <button id={`signin-${p.id}`} type="submit">{p.label}</button>
          </form>
        ))}
      </main>
    );
  }

  return (
    <main>
      <h1>authex + Next.js</h1>
      <p>
        Signed in as <b id="user-name">{session.user.name}</b> &lt;<span id="user-email">{session.user.email}</span>&gt;
      </p>
      <p>
        authex user id <code id="user-id">{session.user.id}</code>, session <code id="session-id">{session.session_id}</code>
      </p>
      <p>
        The server action verified the access token of user <code id="action-sub">{await whoAmI()}</code>
      </p>
      <h2>Protected API</h2>
      <ProtectedAnswer />
      <form
        action={async () => {
          "use server";
          await signOut({ redirectTo: "/" });
        }}
      >
        <button id="signout" type="submit">Sign out</button>
      </form>
    </main>
  );
}
