// Package providertest runs an in-process OpenID Connect issuer for tests:
// discovery, a JWKS, and tokens minted on demand, including forged ones
// (alg none, HMAC with the public key, unknown keys, bad signatures).
//
// It grows from go-oidc's oidc/oidctest idea, but serves its own documents
// and can rotate keys, go down and count fetches, so that tests of the
// providers package and of everything above it (exchange, web, cmd) verify
// real tokens with real go-oidc code. It is for tests only.
package providertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// RSA-2048 keys are slow to generate, so every issuer in a test binary
// draws from one lazily grown pool: the n-th key of every issuer is the same
// key. Tokens stay issuer-specific through iss, which is what verifiers
// check; tests that need a key no issuer publishes use ForeignKey.
var (
	poolMu  sync.Mutex
	pool    []*rsa.PrivateKey
	foreign *rsa.PrivateKey
)

func poolKey(n int) *rsa.PrivateKey {
	poolMu.Lock()
	defer poolMu.Unlock()
	for len(pool) <= n {
		pool = append(pool, generateRSA())
	}
	return pool[n]
}

// ForeignKey returns an RSA-2048 key that no Issuer ever publishes, for
// tokens signed "by an unknown key". It is generated once per test binary.
func ForeignKey() *rsa.PrivateKey {
	poolMu.Lock()
	defer poolMu.Unlock()
	if foreign == nil {
		foreign = generateRSA()
	}
	return foreign
}

func generateRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("providertest: generating an RSA key: " + err.Error())
	}
	return k
}

// KeyID returns the kid an Issuer gives pub: the start of its RFC 7638
// thumbprint.
func KeyID(pub crypto.PublicKey) string {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		panic("providertest: thumbprint: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(tp)[:16]
}

// Issuer is an OpenID Connect issuer served by an httptest.Server:
//
//	/.well-known/openid-configuration  discovery
//	/keys                              JWKS (the current key only)
//	/token                             authorization codes added by AddCode
//	/authorize, /userinfo              advertised, not served (404)
type Issuer struct {
	downable
	srv *httptest.Server
	mux *http.ServeMux

	codesMu    sync.Mutex
	codes      map[string]CodeGrant
	tokenCalls atomic.Int64

	mu       sync.Mutex
	keyIndex int
	key      *rsa.PrivateKey
	kid      string
	algs     []string
	extra    map[string]string // AddDiscovery: path -> issuer
	jwksHdr  http.Header       // SetJWKSHeader

	jwksFetches      atomic.Int64
	discoveryFetches atomic.Int64
}

// NewIssuer starts an issuer; tb.Cleanup closes it.
func NewIssuer(tb testing.TB) *Issuer {
	tb.Helper()
	iss := &Issuer{algs: []string{"RS256"}}
	iss.setKey(0)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", iss.serveDiscovery)
	mux.HandleFunc("GET /keys", iss.serveJWKS)
	mux.HandleFunc("POST /token", iss.serveToken)
	iss.mux = mux
	iss.codes = map[string]CodeGrant{}
	iss.extra = map[string]string{}
	iss.srv = httptest.NewServer(mux)
	tb.Cleanup(iss.srv.Close)
	return iss
}

func (iss *Issuer) setKey(n int) {
	iss.keyIndex = n
	iss.key = poolKey(n)
	iss.kid = KeyID(iss.key.Public())
}

// URL is the issuer identifier (no trailing slash); tokens carry it in iss.
func (iss *Issuer) URL() string { return iss.srv.URL }

// KeyID is the kid of the current signing key.
func (iss *Issuer) KeyID() string {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.kid
}

// PublicKey is the current signing key's public half.
func (iss *Issuer) PublicKey() *rsa.PublicKey {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return &iss.key.PublicKey
}

// PublicKeyPEM is the current public key as a PKIX "PUBLIC KEY" PEM block:
// the HMAC secret of the classic RS256-to-HS256 confusion attack.
func (iss *Issuer) PublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(iss.PublicKey())
	if err != nil {
		panic("providertest: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// RotateKey switches to a new signing key; the old one leaves the JWKS.
func (iss *Issuer) RotateKey() {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.setKey(iss.keyIndex + 1)
}

// SetSigningAlgs sets id_token_signing_alg_values_supported in discovery
// (default ["RS256"]); call it before the verifier discovers the issuer.
func (iss *Issuer) SetSigningAlgs(algs ...string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.algs = algs
}

// SetJWKSHeader sets a header of every JWKS answer from now on (for
// example Cache-Control: max-age=600); an empty value removes it.
func (iss *Issuer) SetJWKSHeader(name, value string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if iss.jwksHdr == nil {
		iss.jwksHdr = http.Header{}
	}
	if value == "" {
		iss.jwksHdr.Del(name)
	} else {
		iss.jwksHdr.Set(name, value)
	}
}

// JWKSFetches counts requests to the JWKS, including those answered 503.
func (iss *Issuer) JWKSFetches() int { return int(iss.jwksFetches.Load()) }

// DiscoveryFetches counts requests for the discovery document.
func (iss *Issuer) DiscoveryFetches() int { return int(iss.discoveryFetches.Load()) }

// AtHash is the at_hash of accessToken for an RS256 id_token.
func (iss *Issuer) AtHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

func (iss *Issuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	iss.serveDiscoveryFor(w, iss.URL())
}

// AddDiscovery serves a second discovery document at
// PATH/.well-known/openid-configuration that names issuer (which may be a
// template such as URL()+"/{tenantid}/v2.0", the way Microsoft's
// multi-tenant endpoints do) with the same keys and token endpoint.
// Adding the same path again replaces the issuer it names.
func (iss *Issuer) AddDiscovery(path, issuer string) {
	path = strings.TrimSuffix(path, "/")
	iss.mu.Lock()
	_, seen := iss.extra[path]
	iss.extra[path] = issuer
	iss.mu.Unlock()
	if seen {
		return
	}
	iss.mux.HandleFunc("GET "+path+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss.mu.Lock()
		issuer := iss.extra[path]
		iss.mu.Unlock()
		iss.serveDiscoveryFor(w, issuer)
	})
}

func (iss *Issuer) serveDiscoveryFor(w http.ResponseWriter, issuer string) {
	iss.discoveryFetches.Add(1)
	if iss.refuse(w) {
		return
	}
	iss.mu.Lock()
	algs := iss.algs
	iss.mu.Unlock()
	u := iss.URL()
	writeJSON(w, map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              u + "/keys",
		"authorization_endpoint":                u + "/authorize",
		"token_endpoint":                        u + "/token",
		"userinfo_endpoint":                     u + "/userinfo",
		"response_types_supported":              []string{"code", "id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": algs,
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"claims_supported":                      []string{"sub", "email", "email_verified", "name", "picture", "nonce", "at_hash"},
	})
}

func (iss *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	iss.jwksFetches.Add(1)
	if iss.refuse(w) {
		return
	}
	iss.mu.Lock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: iss.key.Public(), KeyID: iss.kid, Algorithm: "RS256", Use: "sig",
	}}}
	for k, v := range iss.jwksHdr {
		w.Header()[k] = v
	}
	iss.mu.Unlock()
	writeJSON(w, set)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Mint returns an RS256 id_token signed with the current key, with the
// current kid. It fills iss, iat (now), exp (now+1h) and a random jti unless claims gives
// them; a claim set to nil is left out ("exp": nil makes a token without
// exp).
func (iss *Issuer) Mint(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return iss.MintWith(tb, MintOptions{}, claims)
}

// MintOptions shape a token, mostly to forge one.
type MintOptions struct {
	// Alg is the header alg: RS256 (default), RS384, RS512, PS256, PS384,
	// PS512, ES256, ES384, ES512, EdDSA (with a matching Key), "none"
	// (empty signature), HS256, HS384, HS512 (HMAC, see Key).
	Alg string

	// KeyID is the header kid. Empty: the current kid when Key is nil,
	// else KeyID(Key's public key). To leave kid out, set
	// Header["kid"] = nil.
	KeyID string

	// Key signs the token: a crypto.Signer (*rsa.PrivateKey,
	// *ecdsa.PrivateKey, ed25519.PrivateKey) or, for HS*, the []byte
	// secret. Nil: the current key; for HS*, PublicKeyPEM() (the key
	// confusion attack).
	Key any

	// Header overrides or adds header fields after alg, kid and typ are
	// set; a nil value removes the field.
	Header map[string]any
}

// MintWith returns a token shaped by opts. Claims are filled as by Mint.
func (iss *Issuer) MintWith(tb testing.TB, opts MintOptions, claims map[string]any) string {
	tb.Helper()
	iss.mu.Lock()
	curKey, curKid := iss.key, iss.kid
	iss.mu.Unlock()

	alg := opts.Alg
	if alg == "" {
		alg = "RS256"
	}
	key := opts.Key
	kid := opts.KeyID
	if key == nil {
		if strings.HasPrefix(alg, "HS") {
			key = iss.PublicKeyPEM()
		} else {
			key = curKey
		}
		if kid == "" {
			kid = curKid
		}
	} else if kid == "" {
		if s, ok := key.(crypto.Signer); ok {
			kid = KeyID(s.Public())
		}
	}

	header := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	for k, v := range opts.Header {
		if v == nil {
			delete(header, k)
		} else {
			header[k] = v
		}
	}

	now := time.Now()
	body := map[string]any{
		"iss": iss.URL(),
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
		// A fresh jti per token, as real providers send: two tokens minted
		// alike are still two tokens (authex refuses a second use of one).
		"jti": rand.Text(),
	}
	for k, v := range claims {
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
	}

	input := encodeJSON(tb, header) + "." + encodeJSON(tb, body)
	if alg == "none" {
		return input + "."
	}
	sig, err := sign(alg, key, []byte(input))
	if err != nil {
		tb.Fatalf("providertest: signing with %s: %v", alg, err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// MintRaw signs payload, taken byte for byte as the claims, with the
// current key (RS256, current kid): for claims no map can hold, such as a
// duplicate key ("sub" twice) or a claim of the wrong type. Nothing is
// filled in.
func (iss *Issuer) MintRaw(tb testing.TB, payload []byte) string {
	tb.Helper()
	iss.mu.Lock()
	key, kid := iss.key, iss.kid
	iss.mu.Unlock()
	input := encodeJSON(tb, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}) + "." +
		base64.RawURLEncoding.EncodeToString(payload)
	sig, err := sign("RS256", key, []byte(input))
	if err != nil {
		tb.Fatalf("providertest: signing: %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// MintRawHeader is MintRaw with the protected header also given byte for
// byte (it should name alg RS256 and the current kid to verify).
func (iss *Issuer) MintRawHeader(tb testing.TB, header, payload []byte) string {
	tb.Helper()
	iss.mu.Lock()
	key := iss.key
	iss.mu.Unlock()
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := sign("RS256", key, []byte(input))
	if err != nil {
		tb.Fatalf("providertest: signing: %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func encodeJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("providertest: encoding JSON: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashFor(alg string) (crypto.Hash, error) {
	if len(alg) != 5 {
		return 0, fmt.Errorf("unknown alg %q", alg)
	}
	switch alg[2:] {
	case "256":
		return crypto.SHA256, nil
	case "384":
		return crypto.SHA384, nil
	case "512":
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("unknown alg %q", alg)
}

func sign(alg string, key any, input []byte) ([]byte, error) {
	if alg == "EdDSA" {
		k, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("EdDSA needs an ed25519.PrivateKey, got %T", key)
		}
		return ed25519.Sign(k, input), nil
	}
	h, err := hashFor(alg)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(alg, "HS") {
		secret, ok := key.([]byte)
		if !ok {
			return nil, fmt.Errorf("%s needs a []byte secret, got %T", alg, key)
		}
		var mk func() hash.Hash
		switch h {
		case crypto.SHA256:
			mk = sha256.New
		case crypto.SHA384:
			mk = sha512.New384
		default:
			mk = sha512.New
		}
		m := hmac.New(mk, secret)
		m.Write(input)
		return m.Sum(nil), nil
	}
	d := h.New()
	d.Write(input)
	digest := d.Sum(nil)
	switch alg[:2] {
	case "RS", "PS":
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s needs an *rsa.PrivateKey, got %T", alg, key)
		}
		if alg[:2] == "RS" {
			return rsa.SignPKCS1v15(rand.Reader, k, h, digest)
		}
		return rsa.SignPSS(rand.Reader, k, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES":
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s needs an *ecdsa.PrivateKey, got %T", alg, key)
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		return append(pad(r, size), pad(s, size)...), nil
	}
	return nil, fmt.Errorf("unknown alg %q", alg)
}

func pad(n *big.Int, size int) []byte {
	out := make([]byte, size)
	return n.FillBytes(out)
}
