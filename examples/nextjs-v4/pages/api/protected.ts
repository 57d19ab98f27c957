// A protected API route: only a valid authex access token (Authorization:
// Bearer, or this app's session cookie), verified offline against authex's
// JWKS: iss, aud (AUTHEX_AUDIENCE) and typ at+jwt.
import type { NextApiRequest, NextApiResponse } from "next";
import { authexNext } from "@/lib/authex";

export default async function handler(req: NextApiRequest, res: NextApiResponse) {
  const v = await authexNext.verifyRequest(req);
  if (!v.ok) return res.status(v.status).json(v.body);
  const { sub, email, sid, exp } = v.claims;
  res.status(200).json({ ok: true, sub, email, sid, exp, alg: v.header.alg, kid: v.header.kid });
}
