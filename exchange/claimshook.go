package exchange

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// The claims hook (docs/events.md, "The claims hook"): before an access
// token is signed (sign-in, refresh, token exchange, renewal), authex asks
// the app for extra claims for this user and client. The answer is cached
// per (user, client) for CacheTTL, and concurrent misses share one call,
// so concurrent refreshes of one session (the reuse grace) get the same
// claims and so byte-identical tokens.

// Claims hook failure policies.
const (
	HookDeny = "deny" // answer 503 claims_hook_failed: no token without the claims
	HookOmit = "omit" // sign without the extra claims
)

// ClaimsHookConfig configures the hook.
type ClaimsHookConfig struct {
	URL       string
	Secret    []byte
	Timeout   time.Duration
	CacheTTL  time.Duration
	OnFailure string // HookDeny or HookOmit
	// Client makes the calls; nil: a plain client (Timeout bounds each call).
	Client *http.Client
}

// Hook outcomes reported to a HookObserver.
const (
	HookOutcomeOK     = "ok"
	HookOutcomeCached = "cached"
	HookOutcomeFailed = "failed" // error, timeout, bad status or bad answer
)

// HookObserver is an optional Observer capability: the claims hook's
// outcomes, for metrics.
type HookObserver interface {
	ClaimsHook(outcome string)
}

// Bounds on the hook's answer.
const (
	maxHookAnswer   = 16 << 10
	maxHookClaims   = 32
	maxHookCacheLen = 100_000
)

// hookClaimName is what an extra claim may be called.
var hookClaimName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:-]{0,63}$`)

// ReservedClaims are the claims a hook may not set: the registered JWT
// claims, and everything authex itself puts in an access token (roles are
// set through the admin API; a hook adds its own names, e.g. app_roles).
var ReservedClaims = []string{
	"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "typ", "cnf", "act", "azp", "auth_time", "nonce", "at_hash",
	"sid", "client_id", "scope", "roles", "email", "email_verified", "name", "amr", "idp",
}

var reservedClaims = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range ReservedClaims {
		m[c] = true
	}
	return m
}()

type claimsHook struct {
	cfg    ClaimsHookConfig
	client *http.Client
	calls  singleflight.Group

	mu    sync.Mutex
	cache map[string]hookEntry
}

type hookEntry struct {
	claims  map[string]json.RawMessage
	expires time.Time
}

func newClaimsHook(cfg ClaimsHookConfig) *claimsHook {
	c := cfg.Client
	if c == nil {
		c = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &claimsHook{cfg: cfg, client: c, cache: map[string]hookEntry{}}
}

// hookRequest is what the hook receives.
type hookRequest struct {
	User     hookUser `json:"user"`
	ClientID string   `json:"client_id"`
}

type hookUser struct {
	ID            string   `json:"id"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Roles         []string `json:"roles"`
}

// hookAnswer is the hook's answer: {"claims": {...}}.
type hookAnswer struct {
	Claims map[string]json.RawMessage `json:"claims"`
}

// extraClaims returns the hook's claims for the user and client: nil
// without a hook, or on a failure under HookOmit; a KindHookUnavailable
// error on a failure under HookDeny. Call it before writing anything, so
// a refused answer leaves the session as it was.
func (s *Service) extraClaims(ctx context.Context, u storage.User, clientID string) (map[string]json.RawMessage, error) {
	h := s.hook
	if h == nil {
		return nil, nil
	}
	key := u.ID + "\x00" + clientID
	now := s.now()
	h.mu.Lock()
	e, ok := h.cache[key]
	h.mu.Unlock()
	if ok && now.Before(e.expires) {
		s.observeHook(HookOutcomeCached)
		return e.claims, nil
	}
	v, err, _ := h.calls.Do(key, func() (any, error) {
		claims, err := h.call(ctx, u, clientID)
		if err != nil {
			return nil, err
		}
		if h.cfg.CacheTTL > 0 {
			h.mu.Lock()
			if len(h.cache) >= maxHookCacheLen {
				for k, e := range h.cache {
					if !now.Before(e.expires) {
						delete(h.cache, k)
					}
				}
				if len(h.cache) >= maxHookCacheLen {
					clear(h.cache)
				}
			}
			h.cache[key] = hookEntry{claims: claims, expires: now.Add(h.cfg.CacheTTL)}
			h.mu.Unlock()
		}
		return claims, nil
	})
	if err != nil {
		s.observeHook(HookOutcomeFailed)
		s.log.WarnContext(ctx, "claims hook failed", "user_id", u.ID, "client_id", clientID, "on_failure", h.cfg.OnFailure, "err", err)
		if h.cfg.OnFailure == HookOmit {
			return nil, nil
		}
		return nil, newError(KindHookUnavailable, ReasonClaimsHookFailed, "the claims hook did not answer usably; try again shortly", err)
	}
	s.observeHook(HookOutcomeOK)
	return v.(map[string]json.RawMessage), nil
}

func (s *Service) observeHook(outcome string) {
	if o, ok := s.observe.(HookObserver); ok {
		o.ClaimsHook(outcome)
	}
}

// call makes one signed request. The signature is
// X-Authex-Signature: v1=hex(HMAC-SHA256(secret, timestamp + "." + body))
// with the timestamp (Unix seconds) in X-Authex-Timestamp.
func (h *claimsHook) call(ctx context.Context, u storage.User, clientID string) (map[string]json.RawMessage, error) {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	body, err := json.Marshal(hookRequest{User: hookUser{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name, Roles: roles}, ClientID: clientID})
	if err != nil {
		return nil, err
	}
	// The hook has its own deadline, shorter than the request's, and is
	// not cancelled by one caller leaving a shared call.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, h.cfg.Secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Authex-Timestamp", ts)
	req.Header.Set("X-Authex-Signature", "v1="+hex.EncodeToString(mac.Sum(nil)))
	res, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("claims hook answered %d", res.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxHookAnswer+1))
	if err != nil {
		return nil, err
	}
	return parseHookAnswer(raw)
}

// parseHookAnswer decodes {"claims": {...}} strictly and checks the
// claims: at most 32, names of 1 to 64 characters, none reserved.
func parseHookAnswer(raw []byte) (map[string]json.RawMessage, error) {
	var a hookAnswer
	if err := providers.DecodeStrict(raw, maxHookAnswer, &a); err != nil {
		return nil, fmt.Errorf("claims hook answer: %w", err)
	}
	if a.Claims == nil {
		return nil, errors.New(`claims hook answer has no "claims" object`)
	}
	if len(a.Claims) > maxHookClaims {
		return nil, fmt.Errorf("claims hook answered %d claims, at most %d", len(a.Claims), maxHookClaims)
	}
	for name, v := range a.Claims {
		if reservedClaims[name] {
			return nil, fmt.Errorf("claims hook set the reserved claim %q", name)
		}
		if !hookClaimName.MatchString(name) {
			return nil, fmt.Errorf("claims hook claim name %.70q is not 1-64 characters of A-Z a-z 0-9 _ . : -", name)
		}
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			delete(a.Claims, name)
		}
	}
	return a.Claims, nil
}

// withExtra is an access token's claims with the hook's: marshalled as
// one object whose keys are sorted, so one set of claims is always the
// same bytes.
type withExtra struct {
	AccessClaims
	extra map[string]json.RawMessage
}

func (w withExtra) MarshalJSON() ([]byte, error) {
	base, err := json.Marshal(w.AccessClaims)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	for k, v := range w.extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}
