// Refreshes authex's tokens before anything renders and keeps the rotated
// session cookie, in the browser and in this request's render: Server
// Components cannot set cookies, and a rotated refresh token they dropped
// would be spent again later, which authex treats as theft.
import { authexNext } from "@/lib/authex";

export const proxy = authexNext.proxy;

export const config = {
  // Not Auth.js's own routes (they manage the cookie) nor static files.
  matcher: ["/((?!api/auth|_next/static|_next/image|favicon.ico).*)"],
};
