import type { AuthexJWT, SessionFields } from "@authex/next";
import type { DefaultSession } from "next-auth";

declare module "next-auth" {
  interface Session extends SessionFields {
    user?: DefaultSession["user"] & { id?: string };
  }
}

declare module "next-auth/jwt" {
  interface JWT extends AuthexJWT {}
}
