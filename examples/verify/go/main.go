// Command api is an API in Go that accepts authex access tokens
// (docs/verify.md): go-oidc finds the JWKS and the signing algorithm in
// authex's discovery document and checks iss, aud, exp and the signature.
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

func main() {
	issuer := envOr("AUTHEX_URL", "http://localhost:8080") // server.public_url
	provider, err := oidc.NewProvider(context.Background(), issuer)
	if err != nil {
		log.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: envOr("AUTHEX_AUDIENCE", "api")}) // one of tokens.audience

	http.Handle("GET /me", requireAccessToken(verifier, http.HandlerFunc(me)))
	log.Fatal(http.ListenAndServe(envOr("LISTEN", "127.0.0.1:8000"), nil))
}

type claimsKey struct{}

// requireAccessToken answers 401 unless the request carries a valid
// authex access token, and hands its claims to next.
func requireAccessToken(verifier *oidc.IDTokenVerifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		token, err := verifier.Verify(r.Context(), raw)
		if !ok || err != nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, `{"error":"invalid or missing access token"}`, http.StatusUnauthorized)
			return
		}
		var claims map[string]any
		if err := token.Claims(&claims); err != nil {
			http.Error(w, "", http.StatusInternalServerError)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
}

func me(w http.ResponseWriter, r *http.Request) {
	claims := r.Context().Value(claimsKey{}).(map[string]any)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"sub": claims["sub"], "email": claims["email"]})
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
