// A protected API route: only a valid authex access token (Authorization:
// Bearer, or this app's session cookie), verified offline against authex's
// JWKS: iss, aud (AUTHEX_AUDIENCE) and typ at+jwt.
import { NextResponse, type NextRequest } from "next/server";
import { authexNext } from "@/lib/authex";

export async function GET(req: NextRequest) {
  const v = await authexNext.verifyRequest(req);
  if (!v.ok) return NextResponse.json(v.body, { status: v.status });
  const { sub, email, sid, exp } = v.claims;
  return NextResponse.json({ ok: true, sub, email, sid, exp, alg: v.header.alg, kid: v.header.kid });
}
