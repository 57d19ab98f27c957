package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// issuer is a local OpenID Connect provider: discovery and a JWKS for one
// RSA-2048 key, and RS256 id_tokens minted ahead of the load so that
// minting never competes with the server for CPU during a measurement.
type issuer struct {
	url string
	key *rsa.PrivateKey
	kid string
	srv *http.Server
}

// The provider's client id (the id_tokens' audience), and our clients: the
// web app that exchanges and the API that introspects, both confidential,
// as a production deployment would configure them.
const (
	clientID  = "bench"
	webClient = "nextjs"
	webSecret = "bench-web-secret-0123456789"
	apiClient = "api-gateway"
	apiSecret = "bench-api-secret-0123456789"
)

func startIssuer() (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	iss := &issuer{url: "http://" + ln.Addr().String(), key: key, kid: "bench-1"}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: key.Public(), KeyID: iss.kid, Algorithm: "RS256", Use: "sig",
	}}})
	disc, _ := json.Marshal(map[string]any{
		"issuer":                                iss.url,
		"jwks_uri":                              iss.url + "/keys",
		"authorization_endpoint":                iss.url + "/authorize",
		"token_endpoint":                        iss.url + "/token",
		"response_types_supported":              []string{"code", "id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(disc)
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(set)
	})
	iss.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go iss.srv.Serve(ln)
	return iss, nil
}

func (iss *issuer) close() { iss.srv.Close() }

// subject names user i; the store is pre-populated with the same names.
func subject(i int) string { return fmt.Sprintf("user-%08d", i) }

func email(sub string) string { return sub + "@bench.example.com" }

func (iss *issuer) mint(sub string) (string, error) {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": iss.url, "sub": sub, "aud": clientID,
		"iat": now.Unix(), "exp": now.Add(3 * time.Hour).Unix(),
		"email": email(sub), "email_verified": true, "name": "Bench " + sub,
	})
	t.Header["kid"] = iss.kid
	return t.SignedString(iss.key)
}

// mintBodies returns ready /v1/exchange bodies for the subjects, minted on
// every CPU.
func (iss *issuer) mintBodies(subjects []string) ([][]byte, error) {
	out := make([][]byte, len(subjects))
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(subjects) {
					return
				}
				tok, err := iss.mint(subjects[i])
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				out[i], _ = json.Marshal(map[string]string{"provider": "corp", "id_token": tok,
					"client_id": webClient, "client_secret": webSecret})
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}
