package providertest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/authex/authex/providers/providertest"
)

// Tokens from Mint verify with plain go-oidc discovery, so the issuer is a
// real OIDC issuer and not just something our verifier happens to accept.
func TestMintVerifiesWithGoOIDC(t *testing.T) {
	iss := providertest.NewIssuer(t)
	p, err := oidc.NewProvider(t.Context(), iss.URL())
	if err != nil {
		t.Fatal(err)
	}
	v := p.Verifier(&oidc.Config{ClientID: "client"})
	token := iss.Mint(t, map[string]any{"aud": "client", "sub": "u1", "at_hash": iss.AtHash("at")})
	tok, err := v.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Subject != "u1" || tok.Issuer != iss.URL() {
		t.Fatalf("token = %+v", tok)
	}
	if err := tok.VerifyAccessToken("at"); err != nil {
		t.Fatalf("AtHash: %v", err)
	}
}

func TestMintClaims(t *testing.T) {
	iss := providertest.NewIssuer(t)
	token := iss.Mint(t, map[string]any{"sub": "u1", "exp": nil, "iat": 7})
	body := decodePart(t, token, 1)
	if _, ok := body["exp"]; ok {
		t.Fatal(`"exp": nil did not remove exp`)
	}
	if body["iat"] != float64(7) || body["iss"] != iss.URL() || body["sub"] != "u1" {
		t.Fatalf("claims = %v", body)
	}
	hdr := decodePart(t, token, 0)
	if hdr["alg"] != "RS256" || hdr["kid"] != iss.KeyID() {
		t.Fatalf("header = %v", hdr)
	}
}

func TestMintWith(t *testing.T) {
	iss := providertest.NewIssuer(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)

	t.Run("none", func(t *testing.T) {
		token := iss.MintWith(t, providertest.MintOptions{Alg: "none"}, nil)
		if !strings.HasSuffix(token, ".") || strings.Count(token, ".") != 2 {
			t.Fatalf("token %q has a signature", token)
		}
	})
	t.Run("HS256 with the public key PEM", func(t *testing.T) {
		token := iss.MintWith(t, providertest.MintOptions{Alg: "HS256"}, nil)
		parts := strings.Split(token, ".")
		m := hmac.New(sha256.New, iss.PublicKeyPEM())
		m.Write([]byte(parts[0] + "." + parts[1]))
		if base64.RawURLEncoding.EncodeToString(m.Sum(nil)) != parts[2] {
			t.Fatal("HS256 signature is not keyed with the public key PEM")
		}
	})
	t.Run("header overrides", func(t *testing.T) {
		token := iss.MintWith(t, providertest.MintOptions{Header: map[string]any{"kid": nil, "typ": "at+jwt"}}, nil)
		hdr := decodePart(t, token, 0)
		if _, ok := hdr["kid"]; ok || hdr["typ"] != "at+jwt" {
			t.Fatalf("header = %v", hdr)
		}
	})
	for _, tt := range []struct {
		alg string
		key any
		pub any
	}{
		{"RS256", nil, iss.PublicKey()},
		{"RS512", nil, iss.PublicKey()},
		{"PS256", nil, iss.PublicKey()},
		{"ES384", ec, ec.Public()},
		{"EdDSA", ed, ed.Public()},
		{"RS256", providertest.ForeignKey(), providertest.ForeignKey().Public()},
	} {
		t.Run("signs "+tt.alg, func(t *testing.T) {
			token := iss.MintWith(t, providertest.MintOptions{Alg: tt.alg, Key: tt.key}, map[string]any{"sub": "u"})
			jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tt.alg)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify(tt.pub); err != nil {
				t.Fatalf("signature does not verify: %v", err)
			}
			if tt.key != nil && jws.Signatures[0].Header.KeyID == iss.KeyID() {
				t.Fatal("a foreign key got the issuer's kid")
			}
		})
	}
}

func TestRotateDownAndCounters(t *testing.T) {
	iss := providertest.NewIssuer(t)
	kids := func() []string {
		t.Helper()
		resp, err := http.Get(iss.URL() + "/keys")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil
		}
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.KeyID)
		}
		return out
	}
	first := iss.KeyID()
	if got := kids(); len(got) != 1 || got[0] != first {
		t.Fatalf("JWKS kids = %v, want [%s]", got, first)
	}
	iss.RotateKey()
	if got := kids(); len(got) != 1 || got[0] != iss.KeyID() || got[0] == first {
		t.Fatalf("after rotation JWKS kids = %v, want only the new %s", got, iss.KeyID())
	}
	iss.SetDown(true)
	if got := kids(); got != nil {
		t.Fatalf("down issuer served keys %v", got)
	}
	if _, err := oidc.NewProvider(context.Background(), iss.URL()); err == nil {
		t.Fatal("discovery succeeded while down")
	}
	if iss.JWKSFetches() != 3 || iss.DiscoveryFetches() != 1 {
		t.Fatalf("fetches: jwks %d discovery %d, want 3 and 1", iss.JWKSFetches(), iss.DiscoveryFetches())
	}
}

func decodePart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
