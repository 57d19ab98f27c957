package providers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Security Event Tokens (RFC 8417) from an upstream transmitter: Google's
// Cross-Account Protection (RISC) or any OpenID Shared Signals Framework
// transmitter. A SETVerifier checks one transmitter's tokens: signature
// from its JWKS (the same cached, rate-limited key set as id_tokens),
// issuer, audience, iat, and a strict decoding of the claims. What to do
// with the events is exchange's business.

// Google's Cross-Account Protection transmitter (developers.google.com,
// identity/protocols/risc: the RISC configuration document at
// https://accounts.google.com/.well-known/risc-configuration names them).
const (
	GoogleRISCIssuer  = "https://accounts.google.com/"
	GoogleRISCJWKSURI = "https://www.googleapis.com/oauth2/v3/certs"
)

// maxSETSize bounds a SET; real ones are well under a KiB.
const maxSETSize = 16 << 10

// SETConfig is one transmitter.
type SETConfig struct {
	Issuer    string   // exact `iss` of its SETs
	JWKSURI   string   // its signing keys
	Audiences []string // our client ids at the transmitter: `aud` must name one
	// MaxAge bounds how old (iat) a SET may be; 0 means 7 days. SETs have
	// no exp; the jti record is kept this long.
	MaxAge     time.Duration
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
}

// DefaultSETMaxAge is SETConfig.MaxAge's default.
const DefaultSETMaxAge = 7 * 24 * time.Hour

// SETVerifier verifies one transmitter's SETs.
type SETVerifier struct {
	cfg  SETConfig
	keys *keySet
}

// NewSETVerifier returns a verifier; keys are fetched at the first SET.
func NewSETVerifier(cfg SETConfig) (*SETVerifier, error) {
	if cfg.Issuer == "" || cfg.JWKSURI == "" || len(cfg.Audiences) == 0 {
		return nil, errors.New("a SET transmitter needs issuer, jwks_uri and at least one audience")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultSETMaxAge
	}
	ks := newKeySet(cfg.JWKSURI, cfg.HTTPClient, defaultKeyCooldown, cfg.Logger)
	ks.now = cfg.Now
	return &SETVerifier{cfg: cfg, keys: ks}, nil
}

// Issuer is the transmitter's issuer.
func (v *SETVerifier) Issuer() string { return v.cfg.Issuer }

// MaxAge is how long a SET is accepted after its iat.
func (v *SETVerifier) MaxAge() time.Duration { return v.cfg.MaxAge }

// SET is a verified Security Event Token.
type SET struct {
	Issuer   string
	JTI      string
	IssuedAt time.Time
	// Subject is the SSF top-level sub_id, when the SET has one; each
	// event may carry its own subject instead (RISC).
	Subject *SETSubject
	Events  []SETEvent // sorted by type
}

// SETEvent is one member of the `events` claim.
type SETEvent struct {
	Type    string      // the event type URI
	Subject *SETSubject // the event's subject, or nil
	// Email is the new address of an identifier-changed event ("new-value"
	// per RISC), when the transmitter sent one.
	NewValue string
	Reason   string
	// State is the RISC verification event's state, echoed in logs.
	State string
}

// SETSubject names the account: format (subject_type in RISC) and the
// members we read. An iss-sub subject has Issuer and Subject.
type SETSubject struct {
	Format  string `json:"format"`
	Type    string `json:"subject_type"`
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
	Email   string `json:"email"`
}

// setClaims is the payload, decoded strictly.
type setClaims struct {
	Issuer   string                     `json:"iss"`
	Audience audience                   `json:"aud"`
	IssuedAt *numericDate               `json:"iat"`
	JTI      string                     `json:"jti"`
	Expiry   *numericDate               `json:"exp"`
	TOE      *numericDate               `json:"toe"`
	TXN      string                     `json:"txn"`
	SubID    *SETSubject                `json:"sub_id"`
	Sub      json.RawMessage            `json:"sub"`
	Events   map[string]json.RawMessage `json:"events"`
}

// setEventBody is the part of an event's object we read.
type setEventBody struct {
	Subject  *SETSubject `json:"subject"`
	Reason   string      `json:"reason"`
	State    string      `json:"state"`
	NewValue string      `json:"new-value"`
}

// maxSETEvents bounds the events of one SET (RFC 8417 expects one).
const maxSETEvents = 8

// ParseSETPayload decodes a SET's claims strictly, without any check of
// signature or of the claims' values beyond their shape: duplicate or
// case-variant names, wrong types, missing iss, jti, iat or events, or an
// event that is not an object are malformed.
func ParseSETPayload(payload []byte) (SET, error) {
	var c setClaims
	if err := decodeStrict(payload, maxSETSize, &c); err != nil {
		return SET{}, refuse(ReasonMalformed, "SET claims are malformed (wrong types, or duplicate or case-variant names)", err)
	}
	switch {
	case c.Issuer == "":
		return SET{}, refuse(ReasonMalformed, "SET has no iss", nil)
	case c.JTI == "" || len(c.JTI) > 256:
		return SET{}, refuse(ReasonMalformed, "SET has no jti, or one over 256 characters", nil)
	case c.IssuedAt == nil:
		return SET{}, refuse(ReasonMalformed, "SET has no iat", nil)
	case len(c.Events) == 0:
		return SET{}, refuse(ReasonMalformed, "SET has no events", nil)
	case len(c.Events) > maxSETEvents:
		return SET{}, refuse(ReasonMalformed, fmt.Sprintf("SET has more than %d events", maxSETEvents), nil)
	}
	set := SET{Issuer: c.Issuer, JTI: c.JTI, IssuedAt: c.IssuedAt.Time, Subject: c.SubID}
	for _, typ := range slices.Sorted(maps.Keys(c.Events)) {
		var body setEventBody
		if err := decodeStrict(c.Events[typ], maxSETSize, &body); err != nil || !strings.HasPrefix(strings.TrimSpace(string(c.Events[typ])), "{") {
			return SET{}, refuse(ReasonMalformed, "a SET event is not a JSON object of the expected shape", err)
		}
		set.Events = append(set.Events, SETEvent{Type: typ, Subject: body.Subject, Reason: body.Reason, State: body.State, NewValue: body.NewValue})
	}
	return set, nil
}

// setTypes are the JWS typ values a SET may carry (RFC 8417 §2.3: explicit
// typing is recommended, so none is accepted too). An id_token or access
// token typ is refused; an id_token without typ still has no events.
var setTypes = map[string]bool{"": true, "secevent+jwt": true, "application/secevent+jwt": true, "jwt": true}

// Verify checks raw, a SET in JWS compact form, and returns it. Refusals
// are *Error with reason malformed, algorithm, signature, unknown_key,
// issuer, audience_mismatch, too_old or not_yet_valid; ErrUnavailable
// wraps a key set that cannot be fetched.
func (v *SETVerifier) Verify(ctx context.Context, raw string) (SET, error) {
	h, err := parseHeader(raw)
	if err != nil {
		return SET{}, err
	}
	if !asymmetricAlgs[h.Alg] {
		return SET{}, refuse(ReasonAlgorithm, "SET signing algorithm is not accepted", fmt.Errorf("alg %q", h.Alg))
	}
	if len(h.Typ) > 0 {
		var typ string
		if json.Unmarshal(h.Typ, &typ) != nil || !setTypes[strings.ToLower(typ)] {
			return SET{}, refuse(ReasonMalformed, "SET header typ is not secevent+jwt", nil)
		}
	}
	if len(h.Crit) > 0 {
		return SET{}, refuse(ReasonMalformed, "SET header has crit extensions we do not understand", nil)
	}
	payload, err := v.keys.verify(ctx, raw)
	if err != nil {
		return SET{}, err
	}
	set, err := ParseSETPayload(payload)
	if err != nil {
		return SET{}, err
	}
	if set.Issuer != v.cfg.Issuer {
		return SET{}, refuse(ReasonIssuer, "SET issuer is not this transmitter's issuer", nil)
	}
	var c struct {
		Audience audience `json:"aud"`
	}
	_ = json.Unmarshal(payload, &c) // decoded strictly above
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(v.cfg.Audiences, a) }) {
		return SET{}, refuse(ReasonAudience, "SET audience is not one of our client ids at this transmitter", nil)
	}
	now := v.cfg.Now()
	if set.IssuedAt.After(now.Add(5 * time.Minute)) {
		return SET{}, refuse(ReasonNotYetValid, "SET iat is in the future", nil)
	}
	if now.Sub(set.IssuedAt) > v.cfg.MaxAge {
		return SET{}, refuse(ReasonTooOld, "SET was issued too long ago", nil)
	}
	return set, nil
}

// PeekSETIssuer returns the unverified iss of raw, to pick the
// transmitter whose keys then verify it ("" when there is none).
func PeekSETIssuer(raw string) string {
	if len(raw) > maxSETSize {
		return ""
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if decodeStrict(payload, maxSETSize, &c) != nil {
		return ""
	}
	return c.Issuer
}
