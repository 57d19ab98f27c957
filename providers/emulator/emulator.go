// Package emulator is a local OpenID Connect provider for development and
// tests, in the spirit of Firebase's auth emulator: discovery, a JWKS, an
// authorize page where you type (or pick) an email and a name and approve,
// a token endpoint (authorization code with PKCE S256, RS256 id_token with
// nonce and at_hash), response_mode=form_post as Sign in with Apple
// answers (with Apple's first-time `user` field), userinfo, a landing page
// at {issuer}/ that runs a whole sign-in as its own client and shows the
// id_token and the curl that exchanges it (try.go), POST {issuer}/mint, which signs an
// id_token for the claims you post (for curl and scripts), and POST
// {issuer}/signal, which signs a security event and pushes it to authex
// (signals.go).
//
// Anyone who reaches it can sign in as anyone: it must only ever listen on
// a loopback address (see IsLoopback), and it must never be configured as a
// provider of a production authex. It knows nothing of authex's users,
// storage or tokens, and it uses plain net/http.
package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// DefaultClientID is the client id the emulator accepts when none is
// configured; the example app uses it.
const DefaultClientID = "authex-dev"

const (
	codeTTL    = 2 * time.Minute
	maxRecent  = 8
	maxPending = 10000 // bound on unexchanged codes and live access tokens
)

// Config configures an Emulator.
type Config struct {
	// Issuer is the emulator's issuer URL, e.g. http://127.0.0.1:9090/emulator.
	// Its path is the prefix of every route.
	Issuer string
	// ClientIDs are the client ids /authorize and /token accept; empty
	// means DefaultClientID only.
	ClientIDs []string
	// KeyFile, when set, keeps the RSA signing key in that PEM file
	// (created at first start, mode 0600), so the key survives restarts.
	// Empty: a key generated at start, lost at exit.
	KeyFile string
	// TokenTTL is the lifetime of id_tokens and access tokens; 0 means 1h.
	TokenTTL time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
	// SignalReceiver, when set, is the URL POST {issuer}/signal pushes the
	// SETs it signs to (authex's /v1/signals).
	SignalReceiver string
	// ExchangeURL, when set, is authex's /v1/exchange: the page a tried
	// sign-in ends on ({issuer}/try) shows the curl that exchanges its
	// id_token there, for provider Provider (default "dev").
	ExchangeURL string
	Provider    string
}

// Emulator is the provider; it is an http.Handler.
type Emulator struct {
	issuer    string
	prefix    string
	clientIDs []string
	ttl       time.Duration
	log       *slog.Logger
	now       func() time.Time
	kid       string
	key       *rsa.PrivateKey
	signer    jose.Signer
	mux       *http.ServeMux
	receiver  string // Config.SignalReceiver
	// exchangeURL and provider: Config.ExchangeURL and Config.Provider.
	exchangeURL, provider string

	mu     sync.Mutex
	codes  map[string]*grant // authorization code -> grant, deleted when used
	tokens map[string]Claims // access token -> userinfo claims
	recent []Person          // most recent first
	// authorized: client and subject pairs that have approved once, for
	// Apple's first-time-only `user` field (firstUser).
	authorized map[string]bool
	tries      map[string]tryFlow // state -> a sign-in started at /try
}

// Person is a user typed on the authorize page.
type Person struct {
	Email string
	Name  string
}

// Claims are id_token / userinfo claims.
type Claims map[string]any

type grant struct {
	clientID, redirectURI, challenge, nonce, scope string
	person                                         Person
	expires                                        time.Time
}

// New builds an emulator. It fails for a bad issuer or an unreadable key
// file.
func New(cfg Config) (*Emulator, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("emulator: issuer %q is not an absolute http(s) URL", cfg.Issuer)
	}
	e := &Emulator{
		issuer:    strings.TrimSuffix(cfg.Issuer, "/"),
		prefix:    strings.TrimSuffix(u.Path, "/"),
		clientIDs: cfg.ClientIDs,
		ttl:       cfg.TokenTTL,
		log:       cfg.Logger,
		now:       cfg.Now,
		codes:     map[string]*grant{},
		tokens:    map[string]Claims{},
		receiver:  cfg.SignalReceiver,

		authorized:  map[string]bool{},
		tries:       map[string]tryFlow{},
		exchangeURL: cfg.ExchangeURL,
		provider:    cfg.Provider,
	}
	if len(e.clientIDs) == 0 {
		e.clientIDs = []string{DefaultClientID}
	}
	if e.ttl <= 0 {
		e.ttl = time.Hour
	}
	if e.provider == "" {
		e.provider = "dev"
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.key, err = loadOrCreateKey(cfg.KeyFile); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&e.key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	e.kid = "emu-" + hex.EncodeToString(sum[:8])
	e.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: e.key, KeyID: e.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	e.routes()
	return e, nil
}

// Issuer is the emulator's issuer URL.
func (e *Emulator) Issuer() string { return e.issuer }

// ClientIDs are the client ids it accepts.
func (e *Emulator) ClientIDs() []string { return slices.Clone(e.clientIDs) }

func (e *Emulator) routes() {
	p := e.prefix
	m := http.NewServeMux()
	m.HandleFunc("GET "+p+"/{$}", e.handleLanding)
	m.HandleFunc("GET "+p+"/try", e.handleTryStart)
	m.HandleFunc("GET "+p+"/try/callback", e.handleTryCallback)
	m.HandleFunc("GET "+p+"/.well-known/openid-configuration", e.handleDiscovery)
	m.HandleFunc("GET "+p+"/jwks", e.handleJWKS)
	m.HandleFunc("GET "+p+"/authorize", e.handleAuthorizePage)
	m.HandleFunc("POST "+p+"/authorize", e.handleApprove)
	m.HandleFunc("POST "+p+"/token", e.handleToken)
	m.HandleFunc("GET "+p+"/userinfo", e.handleUserinfo)
	m.HandleFunc("POST "+p+"/userinfo", e.handleUserinfo)
	m.HandleFunc("POST "+p+"/mint", e.handleMint)
	m.HandleFunc("POST "+p+"/signal", e.handleSignal)
	e.mux = m
}

func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	e.mux.ServeHTTP(w, r)
}

// IsLoopback reports whether a listen address (host:port) binds only the
// loopback interface: 127.0.0.0/8, ::1 or localhost. An empty host (all
// interfaces) is not loopback.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	return IsLoopbackHost(host)
}

// IsLoopbackHost is IsLoopback for a bare host name or IP.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (e *Emulator) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                e.issuer,
		"authorization_endpoint":                e.issuer + "/authorize",
		"token_endpoint":                        e.issuer + "/token",
		"userinfo_endpoint":                     e.issuer + "/userinfo",
		"jwks_uri":                              e.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query", "form_post"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":      []string{"S256"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "email", "email_verified", "name"},
	})
}

func (e *Emulator) handleJWKS(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &e.key.PublicKey, KeyID: e.kid, Algorithm: string(jose.RS256), Use: "sig",
	}}})
}

// Subject is the stable sub the emulator gives an email address, so that
// signing in twice with one address is one identity.
func Subject(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "emu-" + hex.EncodeToString(sum[:10])
}

// Sign signs claims as an id_token of this emulator. iss is always the
// emulator's; iat and exp are set unless given; aud defaults to the first
// client id and sub to Subject(email).
func (e *Emulator) Sign(c Claims) (string, error) {
	now := e.now()
	// A fresh jti per token, as real providers send: authex refuses a
	// second use of one id_token.
	out := Claims{"iat": now.Unix(), "exp": now.Add(e.ttl).Unix(), "aud": e.clientIDs[0], "jti": rand.Text()}
	for k, v := range c {
		out[k] = v
	}
	out["iss"] = e.issuer
	if _, ok := out["sub"]; !ok {
		email, _ := out["email"].(string)
		if email == "" {
			return "", errors.New("claims need sub or email")
		}
		out["sub"] = Subject(email)
	}
	return josejwt.Signed(e.signer).Claims(map[string]any(out)).Serialize()
}

// handleMint signs the posted JSON claims: {"email": "a@b.c", "name": "A"}
// at least; any claim may be given (aud, nonce, exp, email_verified, ...)
// except iss. email_verified defaults to true.
func (e *Emulator) handleMint(w http.ResponseWriter, r *http.Request) {
	var c Claims
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "body must be a JSON object of claims")
		return
	}
	if _, ok := c["iss"]; ok {
		oauthError(w, http.StatusBadRequest, "invalid_request", "iss is the emulator's and cannot be set")
		return
	}
	for k, v := range c {
		// go-jose would sign an encoding/json Number as a string, and a
		// date claim sent as a string is refused (RFC 7519 NumericDate).
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				c[k] = i
			} else if f, err := n.Float64(); err == nil {
				c[k] = f
			}
		}
	}
	if _, ok := c["email_verified"]; !ok && c["email"] != nil {
		c["email_verified"] = true
	}
	tok, err := e.Sign(c)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id_token": tok, "token_type": "id_token"})
}

func (e *Emulator) knownClient(id string) bool { return id != "" && slices.Contains(e.clientIDs, id) }

func (e *Emulator) remember(p Person) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recent = slices.DeleteFunc(e.recent, func(q Person) bool { return strings.EqualFold(q.Email, p.Email) })
	e.recent = append([]Person{p}, e.recent...)
	if len(e.recent) > maxRecent {
		e.recent = e.recent[:maxRecent]
	}
}

func (e *Emulator) recentPeople() []Person {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.recent)
}

// sweep drops expired codes, access tokens and try flows; the caller
// holds e.mu.
func (e *Emulator) sweep(now time.Time) {
	for c, g := range e.codes {
		if now.After(g.expires) {
			delete(e.codes, c)
		}
	}
	for t, c := range e.tokens {
		if exp, _ := c["exp"].(int64); now.Unix() > exp {
			delete(e.tokens, t)
		}
	}
	for s, f := range e.tries {
		if now.After(f.expires) {
			delete(e.tries, s)
		}
	}
}

// htmlHeaders are the headers of every page the emulator renders: never
// cached, never framed, and only what csp allows.
func htmlHeaders(w http.ResponseWriter, csp string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("X-Frame-Options", "DENY")
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// halfHash is at_hash / c_hash for RS256: the left half of SHA-256,
// base64url.
func halfHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError writes an RFC 6749 §5.2 error.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func loadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	if path != "" {
		raw, err := os.ReadFile(path)
		if err == nil {
			block, _ := pem.Decode(raw)
			if block == nil {
				return nil, fmt.Errorf("key file %s holds no PEM block", path)
			}
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("key file %s: %w", path, err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("key file %s: not an RSA key", path)
			}
			return rk, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return k, nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}
