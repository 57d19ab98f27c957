// A protected API route: it accepts only a valid authex access token,
// verified offline with jose against authex's JWKS, the way any API (in
// any language) verifies them. The token comes from an Authorization:
// Bearer header (other clients), or from this app's session cookie (the
// page's fetch).
import { createRemoteJWKSet, jwtVerify, errors } from "jose";
import { getToken } from "next-auth/jwt";
import { NextResponse, type NextRequest } from "next/server";
import { AUTHEX_URL } from "./authex";

const jwks = createRemoteJWKSet(new URL(`${AUTHEX_URL}/.well-known/jwks.json`));
const AUDIENCE = process.env.AUTHEX_AUDIENCE ?? "api";

export async function GET(req: NextRequest) {
  let accessToken = req.headers.get("authorization")?.match(/^Bearer (.+)$/)?.[1];
  if (!accessToken) {
    const secure = req.nextUrl.protocol === "https:";
    const token = await getToken({ req, secret: process.env.AUTH_SECRET!, secureCookie: secure });
    if (token?.error) return NextResponse.json({ error: "session_expired", reason: token.error }, { status: 401 });
    accessToken = token?.access_token;
  }
  if (!accessToken) return NextResponse.json({ error: "unauthorized", reason: "missing_token" }, { status: 401 });
  try {
    const { payload, protectedHeader } = await jwtVerify(accessToken, jwks, {
      issuer: AUTHEX_URL,
      audience: AUDIENCE,
      typ: "at+jwt", // RFC 9068: refuse an id_token or any other JWT
    });
    return NextResponse.json({
      ok: true,
      sub: payload.sub,
      email: payload.email,
      sid: payload.sid,
      exp: payload.exp,
      alg: protectedHeader.alg,
      kid: protectedHeader.kid,
    });
  } catch (e) {
    const reason = e instanceof errors.JWTExpired ? "expired" : e instanceof errors.JOSEError ? e.code : "invalid";
    return NextResponse.json({ error: "invalid_token", reason }, { status: 401 });
  }
}
