# An API in FastAPI that accepts authex access tokens (docs/verify.md).
import os

import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

AUTHEX_URL = os.environ.get("AUTHEX_URL", "http://localhost:8080")  # server.public_url
AUDIENCE = os.environ.get("AUTHEX_AUDIENCE", "api")  # one of tokens.audience

# Fetches authex's JWKS once and again when a token names an unknown kid.
jwks = jwt.PyJWKClient(f"{AUTHEX_URL}/.well-known/jwks.json")
bearer = HTTPBearer(auto_error=False)


def access_token_claims(credentials: HTTPAuthorizationCredentials = Depends(bearer)) -> dict:
    unauthorized = HTTPException(401, "invalid or missing access token", headers={"WWW-Authenticate": "Bearer"})
    if credentials is None:
        raise unauthorized
    token = credentials.credentials
    try:
        claims = jwt.decode(
            token,
            jwks.get_signing_key_from_jwt(token).key,
            algorithms=["ES256"],  # authex's tokens.algorithm
            audience=AUDIENCE,
            issuer=AUTHEX_URL,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.PyJWTError:
        raise unauthorized
    if jwt.get_unverified_header(token).get("typ") != "at+jwt":  # RFC 9068; signed, so checked
        raise unauthorized
    return claims


app = FastAPI()


@app.get("/me")
def me(claims: dict = Depends(access_token_claims)):
    return {"sub": claims["sub"], "email": claims.get("email")}
