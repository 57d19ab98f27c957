import type { AuthexJWT } from "@/lib/authex";

declare module "next-auth" {
  interface Session {
    error?: "RefreshTokenError";
    session_id?: string;
  }
}

declare module "next-auth/jwt" {
  interface JWT extends AuthexJWT {}
}
