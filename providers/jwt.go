package providers

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// maxTokenSize bounds the work an id_token can ask for. Real ones are a few
// KiB; Microsoft's with group claims stay well under this.
const maxTokenSize = 64 << 10

// asymmetricAlgs are the only JWS algorithms we ever accept, whatever a
// provider advertises: never none, never HMAC (whose "secret" an attacker
// could take from the public JWKS).
var asymmetricAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// joseHeader is the part of the protected header we look at before any
// cryptography. go-jose reads the header again (case-sensitively); the
// other registered names are listed so that decodeStrict refuses their
// case-variants too.
type joseHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  json.RawMessage `json:"typ"`
	Cty  json.RawMessage `json:"cty"`
	Crit json.RawMessage `json:"crit"`
	JKU  json.RawMessage `json:"jku"`
	JWK  json.RawMessage `json:"jwk"`
	X5U  json.RawMessage `json:"x5u"`
	X5C  json.RawMessage `json:"x5c"`
	X5T  json.RawMessage `json:"x5t"`
	B64  json.RawMessage `json:"b64"`
}

// parseHeader checks that raw is a JWS compact serialization (three
// base64url parts) and returns its header. Doing this ourselves, before
// go-oidc, lets us give precise reasons: malformed for a broken token,
// algorithm for one that asks for an algorithm we refuse.
func parseHeader(raw string) (joseHeader, error) {
	var h joseHeader
	if len(raw) > maxTokenSize {
		return h, refuse(ReasonMalformed, "id_token is too large", fmt.Errorf("id_token is %d bytes, limit %d", len(raw), maxTokenSize))
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return h, refuse(ReasonMalformed, "id_token is not a signed JWT (three base64url parts)", fmt.Errorf("id_token has %d parts", len(parts)))
	}
	for i, p := range parts {
		if _, err := base64.RawURLEncoding.DecodeString(p); err != nil {
			return h, refuse(ReasonMalformed, "id_token is not a signed JWT (three base64url parts)", fmt.Errorf("part %d: %w", i, err))
		}
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := decodeStrict(hdr, maxTokenSize, &h); err != nil {
		return h, refuse(ReasonMalformed, "id_token header is not a JSON object", err)
	}
	if h.Alg == "" {
		return h, refuse(ReasonMalformed, "id_token header has no alg", nil)
	}
	return h, nil
}

// claims are the id_token claims we check or return. Decoding is strict
// about types: a claim of the wrong type makes the token malformed.
type claims struct {
	Issuer          string       `json:"iss"`
	Subject         string       `json:"sub"`
	Audience        audience     `json:"aud"`
	AuthorizedParty string       `json:"azp"`
	Expiry          *numericDate `json:"exp"`
	NotBefore       *numericDate `json:"nbf"`
	IssuedAt        *numericDate `json:"iat"`
	Nonce           string       `json:"nonce"`
	TokenID         string       `json:"jti"`
	AtHash          string       `json:"at_hash"`
	Email           string       `json:"email"`
	EmailVerified   flexBool     `json:"email_verified"`
	Name            string       `json:"name"`
	Picture         string       `json:"picture"`
	HostedDomain    string       `json:"hd"`

	TenantID       string   `json:"tid"`              // microsoft
	EmailDomainOV  flexBool `json:"xms_edov"`         // microsoft: the email's domain owner verified it
	IsPrivateEmail flexBool `json:"is_private_email"` // apple: a private relay address
}

// decodeClaims decodes an id_token's payload strictly (see decodeStrict):
// a duplicate or case-variant key, or a claim of the wrong type, makes the
// token malformed.
func decodeClaims(payload []byte) (claims, error) {
	var cl claims
	if err := decodeStrict(payload, maxTokenSize, &cl); err != nil {
		return claims{}, refuse(ReasonMalformed, "id_token claims are malformed (wrong types, or duplicate or case-variant names)", err)
	}
	return cl, nil
}

// audience is aud: a string or an array of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*a = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = list
	return nil
}

// numericDate is a JWT NumericDate: seconds since the epoch, integer or
// fractional.
type numericDate struct{ time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	// json.Number would also take a quoted number ("exp":"1767225600"):
	// RFC 7519 says a NumericDate is a JSON number, and a provider that
	// sends a string is not one we understand.
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("a time claim is not a number")
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("a time claim is not a number")
	}
	if i, err := n.Int64(); err == nil {
		d.Time = time.Unix(i, 0)
		return nil
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		return errors.New("a time claim is out of range")
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9))
	return nil
}

// flexBool is a boolean claim that some providers (Apple, Google's
// tokeninfo) send as the string "true" or "false".
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*f = true
	case "false", "null":
		*f = false
	default:
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errors.New("a boolean claim (email_verified, is_private_email, xms_edov) is neither a boolean nor a string")
		}
		switch {
		case strings.EqualFold(s, "true"):
			*f = true
		case strings.EqualFold(s, "false"):
			*f = false
		default:
			return errors.New(`a boolean claim (email_verified, is_private_email, xms_edov) is a string other than "true" or "false"`)
		}
	}
	return nil
}
