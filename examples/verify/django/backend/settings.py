# The tutorial's backend/settings.py with its auth half handed to authex:
# no login, register or refresh views, no user table to look tokens up in.
# DRF authenticates each request from the access token alone, checked
# against authex's JWKS.
import os

AUTHEX_URL = os.environ.get("AUTHEX_URL", "http://localhost:8080")  # server.public_url

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
ROOT_URLCONF = "backend.urls"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework_simplejwt",
    "accounts",
]

REST_FRAMEWORK = {
    # Stateless: request.user is a TokenUser built from the verified
    # token, not a row of the Django user table (authex owns the users).
    "DEFAULT_AUTHENTICATION_CLASSES": (
        "rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication",
    ),
}

SIMPLE_JWT = {
    "ALGORITHM": "ES256",  # authex's tokens.algorithm
    "JWK_URL": f"{AUTHEX_URL}/.well-known/jwks.json",
    "ISSUER": AUTHEX_URL,
    "AUDIENCE": os.environ.get("AUTHEX_AUDIENCE", "api"),  # one of tokens.audience
    "USER_ID_CLAIM": "sub",  # authex's user id
    # authex marks its access tokens with the header typ "at+jwt" (RFC 9068),
    # not with simplejwt's own token_type claim.
    "TOKEN_TYPE_CLAIM": None,
}
