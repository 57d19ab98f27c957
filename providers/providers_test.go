package providers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
)

const (
	webClient = "web.apps.example.com"
	iosClient = "ios.apps.example.com"
)

var quiet = slog.New(slog.DiscardHandler)

// newVerifier starts a verifier for iss and waits until it has discovered
// the issuer. mutate may change the config first.
func newVerifier(tb testing.TB, iss *providertest.Issuer, mutate func(*providers.Config)) providers.Verifier {
	tb.Helper()
	cfg := providers.Config{
		Name:      "corp",
		Type:      "oidc",
		Issuer:    iss.URL(),
		ClientIDs: []string{webClient, iosClient},
		Logger:    quiet,
	}
	cfg = providers.WithTiming(cfg, 10*time.Millisecond, 50*time.Millisecond, 30*time.Second)
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := providers.New(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	waitReady(tb, v)
	return v
}

func waitReady(tb testing.TB, v providers.Verifier) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	if err := providers.WaitReady(ctx, v); err != nil {
		tb.Fatalf("WaitReady: %v", err)
	}
}

// baseClaims is a valid id_token body for webClient.
func baseClaims() map[string]any {
	return map[string]any{
		"aud":            webClient,
		"sub":            "user-1",
		"email":          "ada@example.com",
		"email_verified": true,
		"name":           "Ada Lovelace",
		"picture":        "https://example.com/ada.png",
	}
}

// with returns baseClaims with kv applied (a nil value removes the claim).
func with(kv ...any) map[string]any {
	c := baseClaims()
	for i := 0; i < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

// checkRefused asserts err is a *providers.Error with reason want whose
// message is safe to show: non-empty, and free of any part of the token.
func checkRefused(tb testing.TB, err error, want, token string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("Verify succeeded, want reason %q", want)
	}
	var pe *providers.Error
	if !errors.As(err, &pe) {
		tb.Fatalf("Verify error %v (%T) is not a *providers.Error, want reason %q", err, err, want)
	}
	if pe.Reason != want {
		tb.Fatalf("reason = %q (%v; detail %v), want %q", pe.Reason, pe, pe.Err, want)
	}
	if providers.ReasonOf(err) != want {
		tb.Fatalf("ReasonOf = %q, want %q", providers.ReasonOf(err), want)
	}
	tb.Logf("refused: %s: %q (detail: %v)", pe.Reason, pe.Error(), pe.Err)
	msg := err.Error()
	if msg == "" {
		tb.Fatal("empty error message")
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			tb.Fatalf("error message %q echoes the token", msg)
		}
	}
}

func TestVerifyOIDC(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	now := time.Now()

	foreignKid := providertest.MintOptions{Key: providertest.ForeignKey(), KeyID: "forged-kid"}
	der, err := x509.MarshalPKIXPublicKey(iss.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	valid := iss.Mint(t, baseClaims())
	validParts := strings.Split(valid, ".")
	nonceHash := sha256.Sum256([]byte("raw-nonce"))

	tests := []struct {
		name  string
		token func() string
		cred  func(*providers.Credential)
		want  string // reason; "" means verified
	}{
		{name: "valid", token: func() string { return valid }},
		{name: "valid ios client", token: func() string { return iss.Mint(t, with("aud", iosClient)) }},
		{name: "valid aud array with azp", token: func() string {
			return iss.Mint(t, with("aud", []string{webClient, "someone-else"}, "azp", webClient))
		}},
		{name: "valid azp with single aud", token: func() string { return iss.Mint(t, with("azp", iosClient)) }},
		{name: "valid without kid", token: func() string {
			return iss.MintWith(t, providertest.MintOptions{Header: map[string]any{"kid": nil}}, baseClaims())
		}},
		{name: "valid fractional times", token: func() string {
			return iss.Mint(t, with("exp", float64(now.Add(time.Hour).Unix())+0.5, "iat", float64(now.Unix())-0.25))
		}},

		{name: "malformed: not a jwt", token: func() string { return "not-a-jwt" }, want: providers.ReasonMalformed},
		{name: "malformed: two parts", token: func() string { return validParts[0] + "." + validParts[1] }, want: providers.ReasonMalformed},
		{name: "malformed: four parts", token: func() string { return valid + ".xyz" }, want: providers.ReasonMalformed},
		{name: "malformed: header not base64url", token: func() string { return "***." + validParts[1] + "." + validParts[2] }, want: providers.ReasonMalformed},
		{name: "malformed: header not json", token: func() string { return b64([]byte("not json")) + "." + validParts[1] + "." + validParts[2] }, want: providers.ReasonMalformed},
		{name: "malformed: header without alg", token: func() string { return b64([]byte(`{"kid":"x"}`)) + "." + validParts[1] + "." + validParts[2] }, want: providers.ReasonMalformed},
		{name: "malformed: json serialization", token: func() string { return `{"payload":"` + validParts[1] + `"}` }, want: providers.ReasonMalformed},
		{name: "malformed: no sub", token: func() string { return iss.Mint(t, with("sub", nil)) }, want: providers.ReasonMalformed},
		{name: "malformed: sub not a string", token: func() string { return iss.Mint(t, with("sub", 42)) }, want: providers.ReasonMalformed},
		{name: "malformed: aud not a string", token: func() string { return iss.Mint(t, with("aud", 42)) }, want: providers.ReasonMalformed},
		{name: "malformed: exp not a number", token: func() string { return iss.Mint(t, with("exp", "tomorrow")) }, want: providers.ReasonMalformed},
		{name: "malformed: too large", token: func() string { return iss.Mint(t, with("name", strings.Repeat("a", 70<<10))) }, want: providers.ReasonMalformed},

		{name: "algorithm: none", token: func() string {
			return iss.MintWith(t, providertest.MintOptions{Alg: "none"}, baseClaims())
		}, want: providers.ReasonAlgorithm},
		{name: "algorithm: None", token: func() string {
			return iss.MintWith(t, providertest.MintOptions{Alg: "none", Header: map[string]any{"alg": "None"}}, baseClaims())
		}, want: providers.ReasonAlgorithm},
		{name: "algorithm: HS256 keyed with the public key PEM", token: func() string {
			return iss.MintWith(t, providertest.MintOptions{Alg: "HS256"}, baseClaims())
		}, want: providers.ReasonAlgorithm},
		{name: "algorithm: HS256 keyed with the public key DER", token: func() string {
			return iss.MintWith(t, providertest.MintOptions{Alg: "HS256", Key: der}, baseClaims())
		}, want: providers.ReasonAlgorithm},
		{name: "algorithm: RS384 not advertised", token: func() string {
			return iss.MintWith(t, providertest.MintOptions{Alg: "RS384"}, baseClaims())
		}, want: providers.ReasonAlgorithm},
		{name: "algorithm: ES256 not advertised", token: func() string {
			return iss.MintWith(t, providertest.MintOptions{Alg: "ES256", Key: ecKey}, baseClaims())
		}, want: providers.ReasonAlgorithm},

		{name: "unknown_key: foreign key, forged kid", token: func() string {
			return iss.MintWith(t, foreignKid, baseClaims())
		}, want: providers.ReasonUnknownKey},
		{name: "signature: known kid, foreign key", token: func() string {
			return iss.MintWith(t, providertest.MintOptions{Key: providertest.ForeignKey(), KeyID: iss.KeyID()}, baseClaims())
		}, want: providers.ReasonSignature},
		{name: "signature: no kid, foreign key", token: func() string {
			return iss.MintWith(t, providertest.MintOptions{Key: providertest.ForeignKey(), Header: map[string]any{"kid": nil}}, baseClaims())
		}, want: providers.ReasonSignature},
		{name: "signature: payload swapped", token: func() string {
			other := strings.Split(iss.Mint(t, with("sub", "admin")), ".")
			return validParts[0] + "." + other[1] + "." + validParts[2]
		}, want: providers.ReasonSignature},
		{name: "signature: empty signature", token: func() string { return validParts[0] + "." + validParts[1] + "." }, want: providers.ReasonSignature},

		{name: "issuer: another issuer", token: func() string { return iss.Mint(t, with("iss", "https://evil.example.com")) }, want: providers.ReasonIssuer},
		{name: "issuer: scheme-less spelling is google only", token: func() string {
			return iss.Mint(t, with("iss", strings.TrimPrefix(iss.URL(), "http://")))
		}, want: providers.ReasonIssuer},
		{name: "issuer: trailing slash", token: func() string { return iss.Mint(t, with("iss", iss.URL()+"/")) }, want: providers.ReasonIssuer},
		{name: "issuer: missing", token: func() string { return iss.Mint(t, with("iss", nil)) }, want: providers.ReasonIssuer},

		{name: "audience: other client", token: func() string { return iss.Mint(t, with("aud", "other-app")) }, want: providers.ReasonAudience},
		{name: "audience: missing", token: func() string { return iss.Mint(t, with("aud", nil)) }, want: providers.ReasonAudience},
		{name: "audience: several without azp", token: func() string {
			return iss.Mint(t, with("aud", []string{webClient, "other-app"}))
		}, want: providers.ReasonAudience},
		{name: "audience: azp of another app", token: func() string {
			return iss.Mint(t, with("aud", []string{webClient, "other-app"}, "azp", "other-app"))
		}, want: providers.ReasonAudience},
		{name: "audience: azp of another app, single aud", token: func() string {
			return iss.Mint(t, with("azp", "other-app"))
		}, want: providers.ReasonAudience},

		{name: "expired", token: func() string {
			return iss.Mint(t, with("exp", now.Add(-2*time.Minute).Unix(), "iat", now.Add(-time.Hour).Unix()))
		}, want: providers.ReasonExpired},
		{name: "expired: no exp", token: func() string { return iss.Mint(t, with("exp", nil)) }, want: providers.ReasonExpired},
		{name: "valid: expired within leeway", token: func() string { return iss.Mint(t, with("exp", now.Add(-30*time.Second).Unix())) }},

		{name: "not_yet_valid: nbf", token: func() string { return iss.Mint(t, with("nbf", now.Add(2*time.Minute).Unix())) }, want: providers.ReasonNotYetValid},
		{name: "not_yet_valid: iat", token: func() string { return iss.Mint(t, with("iat", now.Add(2*time.Minute).Unix())) }, want: providers.ReasonNotYetValid},
		{name: "valid: nbf and iat within leeway", token: func() string {
			return iss.Mint(t, with("nbf", now.Add(30*time.Second).Unix(), "iat", now.Add(30*time.Second).Unix()))
		}},

		{name: "valid: raw nonce", token: func() string { return iss.Mint(t, with("nonce", "raw-nonce")) },
			cred: func(c *providers.Credential) { c.Nonce = "raw-nonce" }},
		{name: "valid: hashed nonce", token: func() string { return iss.Mint(t, with("nonce", hex.EncodeToString(nonceHash[:]))) },
			cred: func(c *providers.Credential) { c.Nonce = "raw-nonce" }},
		{name: "nonce_mismatch: other nonce", token: func() string { return iss.Mint(t, with("nonce", "other")) },
			cred: func(c *providers.Credential) { c.Nonce = "raw-nonce" }, want: providers.ReasonNonce},
		{name: "nonce_mismatch: token without nonce", token: func() string { return valid },
			cred: func(c *providers.Credential) { c.Nonce = "raw-nonce" }, want: providers.ReasonNonce},
		{name: "nonce_mismatch: nonce token replayed without nonce", token: func() string { return iss.Mint(t, with("nonce", "raw-nonce")) },
			want: providers.ReasonNonce},

		{name: "valid: at_hash", token: func() string { return iss.Mint(t, with("at_hash", iss.AtHash("ya29.token"))) },
			cred: func(c *providers.Credential) { c.AccessToken = "ya29.token" }},
		{name: "valid: access token, no at_hash", token: func() string { return valid },
			cred: func(c *providers.Credential) { c.AccessToken = "ya29.token" }},
		{name: "valid: at_hash, no access token", token: func() string { return iss.Mint(t, with("at_hash", iss.AtHash("ya29.token"))) }},
		{name: "at_hash_mismatch", token: func() string { return iss.Mint(t, with("at_hash", iss.AtHash("ya29.other"))) },
			cred: func(c *providers.Credential) { c.AccessToken = "ya29.token" }, want: providers.ReasonAtHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token()
			cred := providers.Credential{IDToken: token}
			if tt.cred != nil {
				tt.cred(&cred)
			}
			id, err := v.Verify(t.Context(), cred)
			if tt.want != "" {
				checkRefused(t, err, tt.want, token)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v (reason %q, detail %v)", err, providers.ReasonOf(err), errors.Unwrap(err))
			}
			if id.TokenKey == "" || id.TokenExpiresAt.IsZero() {
				t.Fatalf("identity names no credential: TokenKey %q, TokenExpiresAt %v", id.TokenKey, id.TokenExpiresAt)
			}
			// The credential's own fields are pinned by TestTokenKey.
			id.TokenKey, id.TokenExpiresAt, id.IssuedAt = "", time.Time{}, time.Time{}
			want := providers.Identity{
				Provider: "corp", Issuer: iss.URL(), Subject: "user-1",
				Email: "ada@example.com", EmailVerified: true,
				Name: "Ada Lovelace", Picture: "https://example.com/ada.png",
			}
			if id != want {
				t.Fatalf("identity = %+v, want %+v", id, want)
			}
		})
	}
}

func TestVerifyGoogle(t *testing.T) {
	iss := providertest.NewIssuer(t)
	bare := strings.TrimPrefix(iss.URL(), "http://")
	google := func(domains ...string) func(*providers.Config) {
		return func(c *providers.Config) {
			c.Name, c.Type, c.AllowedDomains = "google", "google", domains
		}
	}
	open := newVerifier(t, iss, google())
	workspace := newVerifier(t, iss, google("Example.com", "example.org"))

	tests := []struct {
		name   string
		v      providers.Verifier
		claims map[string]any
		want   string
		wantHD string
	}{
		{name: "https issuer", v: open, claims: baseClaims()},
		{name: "scheme-less issuer", v: open, claims: with("iss", bare)},
		{name: "other issuer", v: open, claims: with("iss", "accounts.evil.com"), want: providers.ReasonIssuer},
		{name: "hd returned", v: open, claims: with("hd", "example.com"), wantHD: "example.com"},
		{name: "hd allowed", v: workspace, claims: with("hd", "example.com"), wantHD: "example.com"},
		{name: "hd allowed, other case", v: workspace, claims: with("hd", "EXAMPLE.org", "iss", bare), wantHD: "EXAMPLE.org"},
		{name: "hd not allowed", v: workspace, claims: with("hd", "evil.com"), want: providers.ReasonDomain},
		{name: "hd missing", v: workspace, claims: baseClaims(), want: providers.ReasonDomain},
		{name: "hd suffix is not a domain match", v: workspace, claims: with("hd", "notexample.com"), want: providers.ReasonDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := iss.Mint(t, tt.claims)
			id, err := tt.v.Verify(t.Context(), providers.Credential{IDToken: token})
			if tt.want != "" {
				checkRefused(t, err, tt.want, token)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v (detail %v)", err, errors.Unwrap(err))
			}
			if id.Provider != "google" || id.Issuer != iss.URL() || id.Subject != "user-1" || id.HostedDomain != tt.wantHD {
				t.Fatalf("identity = %+v", id)
			}
		})
	}
}

// The google type defaults its issuer to Google's and discovers it there.
func TestGoogleDefaultIssuer(t *testing.T) {
	var mu sync.Mutex
	var urls []string
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		urls = append(urls, r.URL.String())
		mu.Unlock()
		return nil, errors.New("no network in tests")
	})}
	cfg := providers.WithTiming(providers.Config{
		Name: "google", Type: "google", ClientIDs: []string{webClient}, HTTPClient: client, Logger: quiet,
	}, time.Hour, time.Hour, time.Hour)
	v, err := providers.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := v.Ready()
		if err != nil && strings.Contains(err.Error(), "failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %v, want a discovery failure", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(urls) != 1 || urls[0] != "https://accounts.google.com/.well-known/openid-configuration" {
		t.Fatalf("fetched %q, want Google's discovery document once", urls)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestEmailVerified(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	strict := newVerifier(t, iss, func(c *providers.Config) { c.RequireVerifiedEmail = true })

	tests := []struct {
		name       string
		value      any
		want       bool
		wantReason string // for v
		strictWant string // reason for strict; "" means accepted
	}{
		{name: "bool true", value: true, want: true},
		{name: "bool false", value: false, want: false, strictWant: providers.ReasonEmailNotVerified},
		{name: "string true (Apple)", value: "true", want: true},
		{name: "string false (Apple)", value: "false", want: false, strictWant: providers.ReasonEmailNotVerified},
		{name: "string TRUE", value: "TRUE", want: true},
		{name: "absent", value: nil, want: false, strictWant: providers.ReasonEmailNotVerified},
		{name: "other string", value: "yes", wantReason: providers.ReasonMalformed, strictWant: providers.ReasonMalformed},
		{name: "number", value: 1, wantReason: providers.ReasonMalformed, strictWant: providers.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := iss.Mint(t, with("email_verified", tt.value))
			id, err := v.Verify(t.Context(), providers.Credential{IDToken: token})
			switch {
			case tt.wantReason != "":
				checkRefused(t, err, tt.wantReason, token)
			case err != nil:
				t.Fatalf("Verify: %v", err)
			case id.EmailVerified != tt.want:
				t.Fatalf("EmailVerified = %v, want %v", id.EmailVerified, tt.want)
			}
			_, err = strict.Verify(t.Context(), providers.Credential{IDToken: token})
			if tt.strictWant != "" {
				checkRefused(t, err, tt.strictWant, token)
			} else if err != nil {
				t.Fatalf("strict Verify: %v", err)
			}
		})
	}

	t.Run("no email", func(t *testing.T) {
		token := iss.Mint(t, with("email", nil))
		_, err := strict.Verify(t.Context(), providers.Credential{IDToken: token})
		checkRefused(t, err, providers.ReasonEmailNotVerified, token)
	})
}

func TestLeeway(t *testing.T) {
	iss := providertest.NewIssuer(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	def := newVerifier(t, iss, func(c *providers.Config) { c.Now = clock })
	tight := newVerifier(t, iss, func(c *providers.Config) { c.Now, c.Leeway = clock, 5*time.Second })
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }

	tests := []struct {
		name      string
		claims    map[string]any
		wantDef   string
		wantTight string
	}{
		{"fresh", with("iat", at(0), "exp", at(time.Hour)), "", ""},
		{"expired 10s ago", with("iat", at(-time.Hour), "exp", at(-10*time.Second)), "", providers.ReasonExpired},
		{"expired exactly at the leeway", with("iat", at(-time.Hour), "exp", at(-5*time.Second)), "", ""},
		{"expired 61s ago", with("iat", at(-time.Hour), "exp", at(-61*time.Second)), providers.ReasonExpired, providers.ReasonExpired},
		{"nbf in 10s", with("iat", at(0), "nbf", at(10*time.Second), "exp", at(time.Hour)), "", providers.ReasonNotYetValid},
		{"iat in 10s", with("iat", at(10*time.Second), "exp", at(time.Hour)), "", providers.ReasonNotYetValid},
		{"iat in 61s", with("iat", at(61*time.Second), "exp", at(time.Hour)), providers.ReasonNotYetValid, providers.ReasonNotYetValid},
		{"no iat", with("iat", nil, "exp", at(time.Hour)), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := iss.Mint(t, tt.claims)
			for _, c := range []struct {
				v    providers.Verifier
				want string
			}{{def, tt.wantDef}, {tight, tt.wantTight}} {
				_, err := c.v.Verify(t.Context(), providers.Credential{IDToken: token})
				if c.want != "" {
					checkRefused(t, err, c.want, token)
				} else if err != nil {
					t.Fatalf("Verify: %v (detail %v)", err, errors.Unwrap(err))
				}
			}
		})
	}
}

func TestCredentialNeedsIDToken(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	tests := []struct {
		name string
		cred providers.Credential
	}{
		{"empty", providers.Credential{}},
		{"access token alone", providers.Credential{AccessToken: "ya29.token"}},
		{"code", providers.Credential{Code: "4/0Ab", CodeVerifier: "v", RedirectURI: "https://app.example.com/cb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), tt.cred)
			checkRefused(t, err, providers.ReasonMalformed, "")
			if !strings.Contains(err.Error(), "id_token") {
				t.Fatalf("message = %q, want it to ask for the id_token", err.Error())
			}
		})
	}
}

func TestAdvertisedAlgorithms(t *testing.T) {
	tests := []struct {
		name       string
		advertised []string
		alg        string
		want       string
	}{
		{name: "HMAC advertised is still refused", advertised: []string{"HS256", "RS256"}, alg: "HS256", want: providers.ReasonAlgorithm},
		{name: "RS256 accepted next to HMAC", advertised: []string{"HS256", "RS256"}, alg: "RS256"},
		{name: "only HMAC advertised refuses RS256", advertised: []string{"HS256"}, alg: "RS256", want: providers.ReasonAlgorithm},
		{name: "none advertised is still refused", advertised: []string{"none", "RS256"}, alg: "none", want: providers.ReasonAlgorithm},
		{name: "nothing advertised means RS256", advertised: nil, alg: "RS256"},
		{name: "RS384 advertised but the key is RS256 only", advertised: []string{"RS256", "RS384"}, alg: "RS384", want: providers.ReasonAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := providertest.NewIssuer(t)
			iss.SetSigningAlgs(tt.advertised...)
			v := newVerifier(t, iss, nil)
			token := iss.MintWith(t, providertest.MintOptions{Alg: tt.alg}, baseClaims())
			_, err := v.Verify(t.Context(), providers.Credential{IDToken: token})
			if tt.want != "" {
				checkRefused(t, err, tt.want, token)
			} else if err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	ok := providers.Config{Name: "corp", Type: "oidc", Issuer: "https://login.example.com", ClientIDs: []string{"a"}, Logger: quiet}
	tests := []struct {
		name   string
		mutate func(*providers.Config)
		want   string // substring of the error
	}{
		{"unknown type", func(c *providers.Config) { c.Type = "facebook" }, `unknown type "facebook"`},
		{"no type", func(c *providers.Config) { c.Type = "" }, "unknown type"},
		{"no name", func(c *providers.Config) { c.Name = "" }, "name is empty"},
		{"no client ids", func(c *providers.Config) { c.ClientIDs = nil }, "client_ids is empty"},
		{"blank client id", func(c *providers.Config) { c.ClientIDs = []string{"a", " "} }, "client_ids[1] is empty"},
		{"oidc without issuer", func(c *providers.Config) { c.Issuer = "" }, "issuer is required"},
		{"issuer not a URL", func(c *providers.Config) { c.Issuer = "login.example.com" }, "not an http(s) URL"},
		{"negative leeway", func(c *providers.Config) { c.Leeway = -time.Second }, "leeway is negative"},
		{"allowed_domains on oidc", func(c *providers.Config) { c.AllowedDomains = []string{"example.com"} }, "only supported by type google"},
		{"blank google domain", func(c *providers.Config) {
			c.Type, c.AllowedDomains = "google", []string{""}
		}, "allowed_domains[0] is empty"},
		{"google domain with @", func(c *providers.Config) {
			c.Type, c.AllowedDomains = "google", []string{"@example.com"}
		}, "bare domains"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			v, err := providers.New(t.Context(), cfg)
			if err == nil {
				t.Fatalf("New succeeded (%v), want an error containing %q", v.Name(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %q, want it to contain %q", err, tt.want)
			}
		})
	}

	t.Run("several problems at once", func(t *testing.T) {
		_, err := providers.New(t.Context(), providers.Config{Type: "nope"})
		for _, want := range []string{"name is empty", "unknown type", "client_ids is empty"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("New error = %v, want it to mention %q", err, want)
			}
		}
	})
}

func TestDiscoveryRetries(t *testing.T) {
	iss := providertest.NewIssuer(t)
	iss.SetDown(true)
	cfg := providers.WithTiming(providers.Config{
		Name: "corp", Type: "oidc", Issuer: iss.URL(), ClientIDs: []string{webClient}, Logger: quiet,
	}, 5*time.Millisecond, 20*time.Millisecond, time.Minute)

	start := time.Now()
	v, err := providers.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("New took %s: it must not wait for discovery", d)
	}

	token := iss.Mint(t, baseClaims())
	if _, err := v.Verify(t.Context(), providers.Credential{IDToken: token}); !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("Verify before discovery = %v, want ErrUnavailable", err)
	}
	if err := v.Ready(); !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("Ready before discovery = %v, want ErrUnavailable", err)
	}

	for iss.DiscoveryFetches() < 3 {
		time.Sleep(time.Millisecond)
	}
	err = v.Ready()
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), `"corp"`) {
		t.Fatalf("Ready while the issuer is down = %v, want it to name the provider and the 503", err)
	}

	iss.SetDown(false)
	waitReady(t, v)
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready after discovery = %v", err)
	}
	if _, err := v.Verify(t.Context(), providers.Credential{IDToken: token}); err != nil {
		t.Fatalf("Verify after discovery: %v", err)
	}
}

func TestDiscoveryStopsWithContext(t *testing.T) {
	iss := providertest.NewIssuer(t)
	iss.SetDown(true)
	ctx, cancel := context.WithCancel(t.Context())
	cfg := providers.WithTiming(providers.Config{
		Name: "corp", Type: "oidc", Issuer: iss.URL(), ClientIDs: []string{webClient}, Logger: quiet,
	}, time.Millisecond, 2*time.Millisecond, time.Minute)
	v, err := providers.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for iss.DiscoveryFetches() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	time.Sleep(20 * time.Millisecond)
	n := iss.DiscoveryFetches()
	iss.SetDown(false)
	time.Sleep(50 * time.Millisecond)
	if got := iss.DiscoveryFetches(); got != n {
		t.Fatalf("discovery fetched %d more times after ctx was cancelled", got-n)
	}
	if v.Ready() == nil {
		t.Fatal("Ready() = nil after discovery was cancelled")
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	iss := providertest.NewIssuer(t)
	cfg := providers.WithTiming(providers.Config{
		Name: "corp", Type: "oidc", Issuer: iss.URL() + "/", ClientIDs: []string{webClient}, Logger: quiet,
	}, time.Millisecond, 5*time.Millisecond, time.Minute)
	v, err := providers.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for iss.DiscoveryFetches() < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := v.Ready(); err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Fatalf("Ready() = %v, want an issuer mismatch", err)
	}
}

func TestUnknownKidStorm(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, nil) // cooldown 30s
	before := iss.JWKSFetches()

	var forged []string
	for i := range 50 {
		forged = append(forged, iss.MintWith(t, providertest.MintOptions{
			Key: providertest.ForeignKey(), KeyID: fmt.Sprintf("forged-%d", i),
		}, baseClaims()))
	}

	// Concurrently: the misses share one fetch.
	var wg sync.WaitGroup
	errs := make([]error, len(forged))
	for i, token := range forged {
		wg.Go(func() {
			_, errs[i] = v.Verify(t.Context(), providers.Credential{IDToken: token})
		})
	}
	wg.Wait()
	for i, err := range errs {
		checkRefused(t, err, providers.ReasonUnknownKey, forged[i])
	}
	if n := iss.JWKSFetches() - before; n < 1 || n > 2 {
		t.Fatalf("50 concurrent forged kids caused %d JWKS fetches, want 1 or 2", n)
	}

	// Then one by one, inside the cooldown: no fetch at all.
	after := iss.JWKSFetches()
	for _, token := range forged {
		_, err := v.Verify(t.Context(), providers.Credential{IDToken: token})
		checkRefused(t, err, providers.ReasonUnknownKey, token)
	}
	if n := iss.JWKSFetches() - after; n != 0 {
		t.Fatalf("50 forged kids inside the cooldown caused %d JWKS fetches, want 0", n)
	}

	if _, err := v.Verify(t.Context(), providers.Credential{IDToken: iss.Mint(t, baseClaims())}); err != nil {
		t.Fatalf("a genuine token after the storm: %v", err)
	}
}

func TestUnknownKidCooldownExpires(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *providers.Config) {
		*c = providers.WithTiming(*c, 10*time.Millisecond, 50*time.Millisecond, 300*time.Millisecond)
	})
	forged := iss.MintWith(t, providertest.MintOptions{Key: providertest.ForeignKey(), KeyID: "forged"}, baseClaims())
	verify := func() {
		t.Helper()
		_, err := v.Verify(t.Context(), providers.Credential{IDToken: forged})
		checkRefused(t, err, providers.ReasonUnknownKey, forged)
	}
	base := iss.JWKSFetches()
	verify()
	verify()
	if n := iss.JWKSFetches() - base; n != 1 {
		t.Fatalf("fetches inside the cooldown = %d, want 1", n)
	}
	time.Sleep(350 * time.Millisecond)
	verify()
	if n := iss.JWKSFetches() - base; n != 2 {
		t.Fatalf("fetches after the cooldown = %d, want 2", n)
	}
}

func TestJWKSDownKeepsLastGoodKeys(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *providers.Config) {
		*c = providers.WithTiming(*c, 10*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond)
	})
	genuine := iss.Mint(t, baseClaims())
	forged := iss.MintWith(t, providertest.MintOptions{Key: providertest.ForeignKey(), KeyID: "forged"}, baseClaims())

	iss.SetDown(true)
	before := iss.JWKSFetches()
	if _, err := v.Verify(t.Context(), providers.Credential{IDToken: genuine}); err != nil {
		t.Fatalf("known key while the JWKS is down: %v", err)
	}
	_, err := v.Verify(t.Context(), providers.Credential{IDToken: forged})
	checkRefused(t, err, providers.ReasonUnknownKey, forged)
	if iss.JWKSFetches() == before {
		t.Fatal("an unknown kid did not try to refetch the JWKS")
	}
	if _, err := v.Verify(t.Context(), providers.Credential{IDToken: genuine}); err != nil {
		t.Fatalf("known key after a failed refetch: %v", err)
	}
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready() = %v while serving from the last good keys", err)
	}

	// The issuer rotates while down, then comes back.
	iss.RotateKey()
	rotated := iss.Mint(t, baseClaims())
	time.Sleep(60 * time.Millisecond) // past the cooldown of the failed refetch
	_, err = v.Verify(t.Context(), providers.Credential{IDToken: rotated})
	checkRefused(t, err, providers.ReasonUnknownKey, rotated)
	iss.SetDown(false)
	time.Sleep(60 * time.Millisecond)
	if _, err := v.Verify(t.Context(), providers.Credential{IDToken: rotated}); err != nil {
		t.Fatalf("rotated key once the issuer is back: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, nil) // cooldown 30s
	old := iss.Mint(t, baseClaims())
	oldKid := iss.KeyID()
	if _, err := v.Verify(t.Context(), providers.Credential{IDToken: old}); err != nil {
		t.Fatal(err)
	}

	before := iss.JWKSFetches()
	iss.RotateKey()
	if iss.KeyID() == oldKid {
		t.Fatal("RotateKey kept the kid")
	}
	fresh := iss.Mint(t, baseClaims())
	for i := range 3 {
		if _, err := v.Verify(t.Context(), providers.Credential{IDToken: fresh}); err != nil {
			t.Fatalf("verify %d with the new key: %v", i, err)
		}
	}
	if n := iss.JWKSFetches() - before; n != 1 {
		t.Fatalf("rotation caused %d JWKS fetches, want 1", n)
	}
	// The issuer withdrew the old key, so its tokens stop verifying.
	_, err := v.Verify(t.Context(), providers.Credential{IDToken: old})
	checkRefused(t, err, providers.ReasonUnknownKey, old)
}

func TestConcurrentVerify(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	token := iss.Mint(t, baseClaims())
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 10 {
				if _, err := v.Verify(context.Background(), providers.Credential{IDToken: token}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestErrorType(t *testing.T) {
	inner := errors.New("aud [\"x\"], client ids [\"y\"]")
	err := error(&providers.Error{Reason: providers.ReasonAudience, Err: inner})
	if got := err.Error(); got != "id_token audience is not one of this provider's client ids" {
		t.Fatalf("Error() = %q", got)
	}
	if !errors.Is(err, inner) {
		t.Fatal("Unwrap does not reach Err")
	}
	if strings.Contains(err.Error(), "client ids [") {
		t.Fatal("Error() leaks Err")
	}
	custom := &providers.Error{Reason: providers.ReasonMalformed, Description: "this provider needs an id_token"}
	if custom.Error() != "this provider needs an id_token" {
		t.Fatalf("Error() = %q", custom.Error())
	}
	if providers.ReasonOf(errors.New("x")) != "" {
		t.Fatal("ReasonOf of a plain error is not empty")
	}

	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Warn("refused", "err", err)
	if !strings.Contains(buf.String(), "reason=audience_mismatch") || !strings.Contains(buf.String(), "client ids") {
		t.Fatalf("log line %q lacks the reason or the detail", buf.String())
	}
}

func BenchmarkVerify(b *testing.B) {
	iss := providertest.NewIssuer(b)
	v := newVerifier(b, iss, nil)
	token := iss.Mint(b, with("exp", time.Now().Add(24*time.Hour).Unix()))
	cred := providers.Credential{IDToken: token}
	ctx := context.Background()
	if _, err := v.Verify(ctx, cred); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, cred); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTokenKey pins how an Identity names the id_token it came from: by
// jti when the token has one, else by a hash of the whole token, so two
// different tokens never share a key and one token always has the same.
func TestTokenKey(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	base := map[string]any{"sub": "user-1", "aud": webClient}
	verify := func(claims map[string]any) providers.Identity {
		t.Helper()
		c := map[string]any{}
		for k, val := range base {
			c[k] = val
		}
		for k, val := range claims {
			c[k] = val
		}
		id, err := v.Verify(t.Context(), providers.Credential{IDToken: iss.Mint(t, c)})
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return id
	}
	exp := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	a := verify(map[string]any{"jti": "j-1", "exp": exp.Unix(), "iat": exp.Add(-time.Hour).Unix()})
	if want := iss.URL() + " jti j-1"; a.TokenKey != want {
		t.Errorf("TokenKey = %q, want %q", a.TokenKey, want)
	}
	if !a.TokenExpiresAt.After(exp) || a.TokenExpiresAt.After(exp.Add(10*time.Minute)) {
		t.Errorf("TokenExpiresAt = %v, want exp %v plus the leeway", a.TokenExpiresAt, exp)
	}
	if !a.IssuedAt.Equal(exp.Add(-time.Hour)) {
		t.Errorf("IssuedAt = %v, want %v", a.IssuedAt, exp.Add(-time.Hour))
	}
	b := verify(map[string]any{"jti": nil, "name": "one"})
	c := verify(map[string]any{"jti": nil, "name": "two"})
	if !strings.HasPrefix(b.TokenKey, iss.URL()+" sha256 ") || b.TokenKey == c.TokenKey {
		t.Errorf("tokens without jti: keys %q and %q, want distinct sha256 keys", b.TokenKey, c.TokenKey)
	}
}
