// Refreshes authex's tokens before anything renders and keeps the rotated
// session cookie, in the browser and in this request's render (see
// docs/nextjs.md: a rotated refresh token that is dropped would be spent
// again later, which authex treats as theft).
import { authexNext } from "@/lib/authex";

export const middleware = authexNext.proxy;

export const config = {
  // Not next-auth's own routes (they manage the cookie) nor static files.
  matcher: ["/((?!api/auth|_next/static|_next/image|favicon.ico).*)"],
};
