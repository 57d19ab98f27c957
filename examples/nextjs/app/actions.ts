"use server";
// A server action has no request: it verifies the session's authex access
// token from the cookie store.
import { cookies } from "next/headers";
import { authexNext } from "@/lib/authex";

export async function whoAmI(): Promise<string | null> {
  const v = await authexNext.verifyRequest(await cookies());
  return v.ok ? v.claims.sub : null;
}
