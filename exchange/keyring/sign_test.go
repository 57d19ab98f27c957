package keyring

import (
	"crypto/ecdsa"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestSignMatchesGolangJWT: Sign writes the token golang-jwt's
// SignedString wrote before it (every algorithm signs deterministically),
// and an ES256 signature verifies whatever the lengths of r and s (about
// one signature in 128 has a short one).
func TestSignMatchesGolangJWT(t *testing.T) {
	for _, sk := range testKeys(t, 1) {
		t.Run(sk.record.Algorithm, func(t *testing.T) {
			ring := &Ring{now: time.Now, current: sk}
			rounds := 3
			if _, ok := sk.signer.(*ecdsa.PrivateKey); ok {
				rounds = 600
			}
			for i := range rounds {
				claims := jwt.MapClaims{"sub": fmt.Sprintf("user-%d", i), "aud": []string{"api"}, "exp": 1767225600 + i, "name": "<Ada & Bob>"}
				got, err := ring.Sign("at+jwt", claims)
				if err != nil {
					t.Fatal(err)
				}
				ref := jwt.NewWithClaims(sk.method, claims)
				ref.Header["typ"] = "at+jwt"
				ref.Header["kid"] = sk.record.ID
				want, err := ref.SignedString(sk.signer)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("Sign = %s\ngolang-jwt: %s", got, want)
				}
				if _, err := jwt.Parse(got, func(*jwt.Token) (any, error) { return sk.signer.Public(), nil },
					jwt.WithValidMethods([]string{sk.method.Alg()}), jwt.WithoutClaimsValidation()); err != nil {
					t.Fatalf("token %d does not verify: %v", i, err)
				}
			}
		})
	}
}
