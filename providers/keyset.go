package providers

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// maxDocumentSize bounds what we read from a discovery or JWKS endpoint.
const maxDocumentSize = 1 << 20

// fetchTimeout bounds one discovery or JWKS request even when the
// configured http.Client has no timeout: a hung provider must not hold a
// shared refetch (and every verification waiting on it) forever.
const fetchTimeout = 10 * time.Second

// keySet is our oidc.KeySet: the provider's JWKS, cached.
//
//   - Keys are selected by kid; a token without kid is tried against every
//     key whose type fits its alg.
//   - A kid we do not know triggers one refetch. Concurrent misses share that
//     fetch, and after it a cooldown starts during which unknown kids fail at
//     once with unknown_key: a storm of forged kids costs the provider at
//     most one request per cooldown.
//   - A failed fetch leaves the last good keys in place.
//   - Keys are also refreshed on a schedule, so that a key the provider
//     removes (after a compromise) stops verifying without any unknown kid
//     asking for it: each fetched set is trusted for the answer's
//     Cache-Control max-age (or Expires), clamped to [minTTL, maxTTL], and
//     maxTTL when the answer says nothing. A background loop refreshes it
//     when it falls due; should that not have happened yet (the loop is
//     late, or the clock moved), the first verification after the due
//     time refreshes it first. A failed scheduled refresh keeps the last
//     good keys and is retried with backoff.
//
// Reporting reasons through go-oidc: IDTokenVerifier.Verify formats a
// KeySet's error with %v, so the type of our error does not survive it.
// Rather than parse error strings, the caller puts a *sigOutcome in the
// context it passes to go-oidc; VerifySignature, which receives that
// context, stores its typed error there, and the caller reads it when
// go-oidc fails. The slot is per call, so there is no shared state to race
// on, and the signature is verified once, inside go-oidc's flow.
type keySet struct {
	url      string
	client   *http.Client
	cooldown time.Duration
	log      *slog.Logger
	fetched  func(error) // Config.KeyFetched; may be nil

	keys atomic.Pointer[jose.JSONWebKeySet] // read lock-free on every verify

	now    func() time.Time
	minTTL time.Duration // shortest scheduled refresh interval
	maxTTL time.Duration // longest, and the default

	// fetches shares one JWKS request among every caller that wants one
	// while it is under way (misses and scheduled refreshes alike).
	fetches singleflight.Group

	mu          sync.Mutex
	fetching    bool      // a shared fetch is under way: misses join it despite the cooldown
	lastRefetch time.Time // start of the last refetch a miss triggered
	due         time.Time // when the keys must be fetched again
	failures    int       // scheduled refreshes failed in a row
}

var _ oidc.KeySet = (*keySet)(nil)

// sigOutcome is the per-call slot described on keySet.
type sigOutcome struct{ err error }

type sigOutcomeKey struct{}

// errCooldown: a refetch was wanted but the cooldown is running.
var errCooldown = errors.New("jwks refetch suppressed by cooldown")

func newKeySet(url string, client *http.Client, cooldown time.Duration, log *slog.Logger) *keySet {
	return &keySet{url: url, client: client, cooldown: cooldown, log: log,
		now: time.Now, minTTL: minJWKSRefresh, maxTTL: defaultJWKSRefresh}
}

// load fetches the key set once, for discovery. It does not start the
// unknown-kid cooldown.
func (k *keySet) load(ctx context.Context) error {
	set, ttl, err := fetchJWKS(ctx, k.client, k.url)
	k.report(err)
	if err != nil {
		return err
	}
	k.store(set, ttl)
	return nil
}

// store publishes a freshly fetched set, trusted for ttl (the answer's
// cache lifetime, or 0 when it gave none).
func (k *keySet) store(set *jose.JSONWebKeySet, ttl time.Duration) {
	k.keys.Store(set)
	k.mu.Lock()
	k.due = k.now().Add(k.clamp(ttl))
	k.failures = 0
	k.mu.Unlock()
}

func (k *keySet) clamp(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return k.maxTTL
	}
	return min(max(ttl, k.minTTL), k.maxTTL)
}

// failed notes a failed fetch: when the keys were due, the next attempt
// waits a backoff (30s doubling, at most maxTTL) so that an outage does
// not make every verification wait on the provider.
func (k *keySet) failed() {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if now.Before(k.due) {
		return
	}
	k.failures++
	backoff := min(30*time.Second<<min(k.failures-1, 10), k.maxTTL)
	k.due = now.Add(backoff)
}

// stale reports whether the keys are due for a refresh.
func (k *keySet) stale() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.due.IsZero() && !k.now().Before(k.due)
}

// maintain refreshes the keys when they fall due, until ctx ends.
func (k *keySet) maintain(ctx context.Context) {
	for {
		k.mu.Lock()
		wait := k.due.Sub(k.now())
		k.mu.Unlock()
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if k.stale() {
			k.refresh(ctx)
		}
	}
}

// refresh fetches the keys again (sharing a fetch under way) and waits for
// it; the unknown-kid cooldown does not apply.
func (k *keySet) refresh(ctx context.Context) {
	k.mu.Lock()
	ch := k.startFetch()
	k.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// startFetch joins the fetch under way or starts one; k.mu must be held,
// so that fetching and the shared call change together. The fetch runs on
// its own goroutine (singleflight's DoChan) so that one caller giving up
// does not fail the others waiting on it; fetchTimeout bounds it.
func (k *keySet) startFetch() <-chan singleflight.Result {
	k.fetching = true
	return k.fetches.DoChan("jwks", func() (any, error) { return nil, k.runFetch() })
}

// report tells Config.KeyFetched about one fetch.
func (k *keySet) report(err error) {
	if k.fetched != nil {
		k.fetched(err)
	}
}

func (k *keySet) current() *jose.JSONWebKeySet {
	if s := k.keys.Load(); s != nil {
		return s
	}
	return &jose.JSONWebKeySet{}
}

// VerifySignature implements oidc.KeySet. go-oidc has already checked the
// alg against the provider's list; we parse again with the same rule (only
// asymmetric algorithms) so this is safe even when called on its own.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, err := k.verify(ctx, raw)
	if err != nil {
		if out, ok := ctx.Value(sigOutcomeKey{}).(*sigOutcome); ok {
			out.err = err
		}
		return nil, err
	}
	return payload, nil
}

var joseAlgs = func() []jose.SignatureAlgorithm {
	var algs []jose.SignatureAlgorithm
	for alg := range asymmetricAlgs {
		algs = append(algs, jose.SignatureAlgorithm(alg))
	}
	return algs
}()

func (k *keySet) verify(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, joseAlgs)
	if err != nil {
		return nil, refuse(ReasonMalformed, "id_token is not a valid JWS", err)
	}
	if k.stale() {
		// Past the keys' lifetime and the background refresh has not run:
		// a key removed since must not verify this token.
		k.refresh(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if len(jws.Signatures) != 1 {
		return nil, refuse(ReasonMalformed, "id_token must carry exactly one signature", nil)
	}
	hdr := jws.Signatures[0].Header
	alg, kid := hdr.Algorithm, hdr.KeyID

	payload, tried, err := tryKeys(jws, k.current(), kid, alg)
	if tried && (err == nil || kid != "") {
		// A known kid: its verdict stands, no refetch can change it.
		return payload, err
	}
	// An unknown kid, or no kid and no cached key verifies: maybe the
	// provider rotated. Refetch, once per cooldown.
	set, ferr := k.refetch(ctx)
	switch {
	case ferr == nil:
	case errors.Is(ferr, errCooldown):
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case len(set.Keys) == 0:
		return nil, fmt.Errorf("%w: no signing keys loaded: %v", ErrUnavailable, ferr)
	}
	if p, tried2, err2 := tryKeys(jws, set, kid, alg); tried2 {
		return p, err2
	}
	if tried {
		return nil, err
	}
	detail := fmt.Errorf("no key for kid %q alg %s (%d keys cached)", kid, alg, len(set.Keys))
	if ferr != nil {
		detail = fmt.Errorf("%w; refetch: %w", detail, ferr)
	}
	return nil, refuse(ReasonUnknownKey, "", detail)
}

// tryKeys verifies jws with the keys of set that match kid (every key when
// kid is empty) and fit alg. tried reports whether any key was a candidate.
func tryKeys(jws *jose.JSONWebSignature, set *jose.JSONWebKeySet, kid, alg string) (payload []byte, tried bool, err error) {
	kidMatched := false
	for i := range set.Keys {
		key := &set.Keys[i]
		if kid != "" && key.KeyID != kid {
			continue
		}
		kidMatched = true
		if !keyFits(key, alg) {
			continue
		}
		tried = true
		p, verr := jws.Verify(key.Key)
		if verr == nil {
			return p, true, nil
		}
		err = verr
	}
	if tried {
		return nil, true, refuse(ReasonSignature, "", err)
	}
	if kid != "" && kidMatched {
		// The kid names a key of another type or algorithm.
		return nil, true, refuse(ReasonAlgorithm, "id_token alg does not fit the key its kid names", fmt.Errorf("kid %q does not fit alg %s", kid, alg))
	}
	return nil, false, nil
}

// keyFits reports whether key may verify a signature made with alg.
func keyFits(key *jose.JSONWebKey, alg string) bool {
	if key.Algorithm != "" && key.Algorithm != alg {
		return false
	}
	switch pub := key.Key.(type) {
	case *rsa.PublicKey:
		return alg[:2] == "RS" || alg[:2] == "PS"
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// refetch fetches the key set again unless the cooldown forbids it, and
// returns the keys to use (the new ones, or the last good ones when the
// fetch failed or was suppressed). Concurrent callers share one fetch.
func (k *keySet) refetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	k.mu.Lock()
	if !k.fetching {
		if !k.lastRefetch.IsZero() && time.Since(k.lastRefetch) < k.cooldown {
			k.mu.Unlock()
			return k.current(), errCooldown
		}
		k.lastRefetch = time.Now()
	}
	ch := k.startFetch()
	k.mu.Unlock()

	select {
	case r := <-ch:
		return k.current(), r.Err
	case <-ctx.Done():
		return k.current(), ctx.Err()
	}
}

func (k *keySet) runFetch() error {
	set, ttl, err := fetchJWKS(context.Background(), k.client, k.url)
	k.report(err)
	if err == nil {
		k.store(set, ttl)
		k.log.Info("provider keys refetched", "keys", len(set.Keys), "next_in", k.clamp(ttl))
	} else {
		k.failed()
		k.log.Warn("provider keys refetch failed; keeping the last good keys", "err", err)
	}
	// Forget the call under k.mu with fetching, so that a caller arriving
	// from now on starts a new fetch (or meets the cooldown) instead of
	// joining this finished one: fetching is true exactly while a call is
	// registered in the group.
	k.mu.Lock()
	k.fetching = false
	k.fetches.Forget("jwks")
	k.mu.Unlock()
	return err
}

// fetchJWKS GETs a JWK set and keeps the keys that can verify signatures:
// asymmetric public keys, for use "sig" or unspecified. Keys we cannot use
// are skipped rather than failing the set (RFC 7517 §5); a set with no
// usable key at all is an error, so that the last good keys stay.
// Errors never include the response body.
//
// ttl is how long the answer may be cached (cacheLifetime); 0 when it
// does not say.
func fetchJWKS(ctx context.Context, client *http.Client, url string) (set *jose.JSONWebKeySet, ttl time.Duration, err error) {
	body, hdr, err := getJSONHeader(ctx, client, url)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	raw, err := decodeJWKS(body)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: GET %s: body is not a JWK set: %w", url, err)
	}
	set = &jose.JSONWebKeySet{}
	for _, r := range raw {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(r); err != nil {
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		key = key.Public() // a provider that leaks private parts gets them dropped
		if !key.Valid() || !key.IsPublic() {
			continue
		}
		switch key.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			set.Keys = append(set.Keys, key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, 0, fmt.Errorf("jwks: GET %s: no usable signing key among %d", url, len(raw))
	}
	return set, cacheLifetime(hdr), nil
}

// cacheLifetime is how long an answer may be cached by its headers
// (RFC 9111 §4.2.1): Cache-Control max-age, else Expires minus Date (or
// now). no-cache and no-store mean 1ns (refresh as often as allowed); a
// missing or unreadable lifetime is 0.
func cacheLifetime(h http.Header) time.Duration {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-cache", "no-store":
				return time.Nanosecond
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || n < 0 {
					return 0
				}
				if n == 0 {
					return time.Nanosecond
				}
				return time.Duration(min(n, 365*24*3600)) * time.Second
			}
		}
	}
	if e := h.Get("Expires"); e != "" {
		exp, err := http.ParseTime(e)
		if err != nil {
			return time.Nanosecond // RFC 9111: an invalid Expires means already expired
		}
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			date = time.Now()
		}
		if d := exp.Sub(date); d > 0 {
			return d
		}
		return time.Nanosecond
	}
	return 0
}

// jwksDoc is a JWK set as decodeStrict sees it: the members of each key
// are listed so that their case-variants and duplicates are refused
// before go-jose reads the key.
type jwksDoc struct {
	Keys []jwkMembers `json:"keys"`
}

type jwkMembers struct {
	Kty json.RawMessage `json:"kty"`
	Use json.RawMessage `json:"use"`
	Ops json.RawMessage `json:"key_ops"`
	Alg json.RawMessage `json:"alg"`
	Kid json.RawMessage `json:"kid"`
	Crv json.RawMessage `json:"crv"`
	N   json.RawMessage `json:"n"`
	E   json.RawMessage `json:"e"`
	X   json.RawMessage `json:"x"`
	Y   json.RawMessage `json:"y"`
	D   json.RawMessage `json:"d"`
	X5C json.RawMessage `json:"x5c"`
	X5T json.RawMessage `json:"x5t"`
	X5U json.RawMessage `json:"x5u"`
}

// decodeJWKS checks a JWK set strictly and returns each key's raw JSON,
// for go-jose to parse.
func decodeJWKS(body []byte) ([]json.RawMessage, error) {
	if len(body) > maxDocumentSize {
		return nil, fmt.Errorf("larger than %d bytes", maxDocumentSize)
	}
	if err := checkStrict(body, reflect.TypeFor[jwksDoc]()); err != nil {
		return nil, err
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	return raw.Keys, nil
}

// getJSON GETs url and returns its body (at most maxDocumentSize). Errors
// name the URL and status, never the body.
func getJSON(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	body, _, err := getJSONHeader(ctx, client, url)
	return body, err
}

// getJSONHeader is getJSON that also returns the answer's header.
func getJSONHeader(ctx context.Context, client *http.Client, url string) ([]byte, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, body, err := send(ctx, client, req)
	if resp == nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: reading body: %w", url, err)
	}
	if len(body) > maxDocumentSize {
		return nil, nil, fmt.Errorf("GET %s: body larger than %d bytes", url, maxDocumentSize)
	}
	return body, resp.Header, nil
}
