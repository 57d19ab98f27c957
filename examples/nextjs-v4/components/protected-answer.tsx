import { useEffect, useState } from "react";

// Calls the protected API route from the browser; the session cookie goes
// along, and the route verifies the authex access token behind it.
export function ProtectedAnswer() {
  const [answer, setAnswer] = useState<string>("loading…");
  useEffect(() => {
    fetch("/api/protected", { cache: "no-store" })
      .then(async (r) => setAnswer(`${r.status} ${JSON.stringify(await r.json(), null, 2)}`))
      .catch((e) => setAnswer(`failed: ${e}`));
  }, []);
  return <pre id="api-answer">{answer}</pre>;
}
