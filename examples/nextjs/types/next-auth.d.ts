import type { AuthexJWT, SessionFields } from "@authex/next";

declare module "next-auth" {
  interface Session extends SessionFields {}
}

// next-auth v5's JWT is @auth/core's (next-auth/jwt re-exports it).
declare module "@auth/core/jwt" {
  interface JWT extends AuthexJWT {}
}
