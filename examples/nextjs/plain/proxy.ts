// proxy.ts (Next 16's middleware) refreshes authex's tokens once per
// request, before anything renders, and forwards the rotated session cookie
// both to the browser and to this request's render.
//
// Why here: Server Components cannot set cookies. If the jwt callback
// refreshed during a render, the rotated refresh token would be thrown
// away, and the next request would spend the old one again: inside authex's
// reuse grace (10 s) that is forgiven, after it the session is revoked as
// stolen. Refreshing here, where the response can set the cookie, keeps the
// browser's cookie on the newest token.
import { NextResponse, type NextRequest } from "next/server";
import { encode, getToken } from "next-auth/jwt";
import { needsRefresh, refreshed } from "./authex";

const SESSION_MAX_AGE = 30 * 24 * 60 * 60; // Auth.js's default session.maxAge
const MAX_COOKIE = 4000; // Auth.js would split a larger cookie in chunks

export async function proxy(req: NextRequest) {
  const secure = req.nextUrl.protocol === "https:";
  const cookieName = `${secure ? "__Secure-" : ""}authjs.session-token`;
  const secret = process.env.AUTH_SECRET!;
  const token = await getToken({ req, secret, secureCookie: secure, salt: cookieName });
  if (!token || !needsRefresh(token)) return NextResponse.next();

  const next = await refreshed(token);
  if (next === token) return NextResponse.next(); // authex unreachable: try again next request
  const value = await encode({ token: next, secret, salt: cookieName, maxAge: SESSION_MAX_AGE });
  if (value.length > MAX_COOKIE) {
    console.error(`session cookie would be ${value.length} bytes; not refreshing in the proxy`);
    return NextResponse.next();
  }

  // To the render: this request's Cookie header now holds the new token, so
  // auth() in Server Components and route handlers sees it and does not
  // refresh again.
  req.cookies.set(cookieName, value);
  const res = NextResponse.next({ request: { headers: req.headers } });
  // To the browser: the next request carries the new token.
  res.cookies.set(cookieName, value, { httpOnly: true, sameSite: "lax", path: "/", secure, maxAge: SESSION_MAX_AGE });
  return res;
}

export const config = {
  // Every page and API route, but not Auth.js's own routes (they manage the
  // cookie themselves) nor static files.
  matcher: ["/((?!api/auth|_next/static|_next/image|favicon.ico).*)"],
};
