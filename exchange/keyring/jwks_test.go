package keyring

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/authex/authex/storage"
)

// The JWKS document and the kids were hand-written JSON before go-jose
// wrote them. The hand-written code is kept here as the reference: the
// go-jose document must have the same members, with the same values, for
// every algorithm, and every kid (an RFC 7638 thumbprint, which PEM keys
// recompute at every start) must stay the same.

type handJWK struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

func handBuildJWKS(keys []*signingKey) ([]byte, error) {
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].record.CreatedAt.After(keys[j].record.CreatedAt) })
	set := struct {
		Keys []handJWK `json:"keys"`
	}{Keys: []handJWK{}}
	for _, sk := range keys {
		j, err := handPublicJWK(sk.signer.Public())
		if err != nil {
			return nil, err
		}
		j.Use, j.Alg, j.Kid = "sig", sk.record.Algorithm, sk.record.ID
		set.Keys = append(set.Keys, j)
	}
	return json.Marshal(set)
}

func handPublicJWK(pub crypto.PublicKey) (handJWK, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var j handJWK
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		ecdh, err := p.ECDH()
		if err != nil {
			return j, err
		}
		raw := ecdh.Bytes()
		if len(raw) != 65 {
			return j, errors.New("only P-256 EC keys are supported")
		}
		j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", b64(raw[1:33]), b64(raw[33:])
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(p)
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	default:
		return j, fmt.Errorf("unsupported public key type %T", pub)
	}
	return j, nil
}

func handThumbprint(pub crypto.PublicKey) (string, error) {
	j, err := handPublicJWK(pub)
	if err != nil {
		return "", err
	}
	var canon string
	switch j.Kty {
	case "EC":
		canon = `{"crv":"` + j.Crv + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	case "OKP":
		canon = `{"crv":"` + j.Crv + `","kty":"OKP","x":"` + j.X + `"}`
	case "RSA":
		canon = `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	}
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// testKeys makes n keys of each algorithm, with distinct creation times
// (and two sharing one, as PEM keys do).
func testKeys(t *testing.T, n int) []*signingKey {
	t.Helper()
	var out []*signingKey
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		for _, alg := range []string{AlgES256, AlgEdDSA, AlgRS256} {
			der, err := generateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			sk, err := parseSigningKey(storage.SigningKey{Algorithm: alg, PrivateKey: der})
			if err != nil {
				t.Fatal(err)
			}
			if sk.record.ID, err = thumbprint(sk.signer.Public()); err != nil {
				t.Fatal(err)
			}
			if i > 0 {
				sk.record.CreatedAt = at.Add(time.Duration(len(out)) * time.Minute)
			}
			out = append(out, sk)
		}
	}
	return out
}

func jwksMembers(t *testing.T, doc []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("JWKS is not JSON: %v: %s", err, doc)
	}
	return v
}

func TestJWKSMatchesTheHandWrittenDocument(t *testing.T) {
	for _, keys := range [][]*signingKey{nil, testKeys(t, 1)[:1], testKeys(t, 1)[1:2], testKeys(t, 1)[2:], testKeys(t, 3)} {
		want, err := handBuildJWKS(append([]*signingKey(nil), keys...))
		if err != nil {
			t.Fatal(err)
		}
		got, err := buildJWKS(append([]*signingKey(nil), keys...))
		if err != nil {
			t.Fatal(err)
		}
		if g, w := jwksMembers(t, got), jwksMembers(t, want); !reflect.DeepEqual(g, w) {
			t.Errorf("JWKS of %d keys differs:\n got %s\nwant %s", len(keys), got, want)
		}
	}
}

func TestThumbprintMatchesTheHandWrittenOne(t *testing.T) {
	for _, sk := range testKeys(t, 2) {
		want, err := handThumbprint(sk.signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		got, err := thumbprint(sk.signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s kid %s, want %s", sk.record.Algorithm, got, want)
		}
	}
}
