package providers

import (
	"errors"
	"log/slog"
	"maps"
	"slices"
)

// Reasons a credential is refused. They are part of the HTTP contract
// (the "reason" of an invalid_token answer): append only, never rename.
const (
	ReasonMalformed        = "malformed"
	ReasonSignature        = "signature"
	ReasonUnknownKey       = "unknown_key"
	ReasonAlgorithm        = "algorithm"
	ReasonIssuer           = "issuer"
	ReasonAudience         = "audience_mismatch"
	ReasonExpired          = "expired"
	ReasonNotYetValid      = "not_yet_valid"
	ReasonNonce            = "nonce_mismatch"
	ReasonAtHash           = "at_hash_mismatch"
	ReasonEmailNotVerified = "email_not_verified"
	ReasonDomain           = "domain_not_allowed"
	ReasonTenant           = "tenant_not_allowed"
	ReasonCodeRejected     = "code_rejected"
	ReasonTokenInactive    = "token_inactive"

	// Refusals of the request rather than of the credential (see
	// IsRequestReason).
	ReasonPKCERequired          = "pkce_required"
	ReasonRedirectURINotAllowed = "redirect_uri_not_allowed"

	ReasonTooOld        = "too_old"
	ReasonNonceRequired = "nonce_required"
)

// descriptions are the default client-safe messages, one per reason.
var descriptions = map[string]string{
	ReasonMalformed:        "id_token is malformed",
	ReasonSignature:        "id_token signature does not verify",
	ReasonUnknownKey:       "id_token is signed with a key this provider does not publish",
	ReasonAlgorithm:        "id_token signing algorithm is not accepted for this provider",
	ReasonIssuer:           "id_token issuer is not this provider's issuer",
	ReasonAudience:         "id_token audience is not one of this provider's client ids",
	ReasonExpired:          "id_token has expired",
	ReasonNotYetValid:      "id_token is not valid yet",
	ReasonNonce:            "id_token nonce does not match the nonce sent",
	ReasonAtHash:           "id_token at_hash does not match the access token",
	ReasonEmailNotVerified: "the provider has not verified this email address",
	ReasonDomain:           "id_token hosted domain is not allowed for this provider",
	ReasonTenant:           "the account's tenant (tid) is not allowed for this provider",
	ReasonCodeRejected:     "the provider refused the authorization code (expired, already used, or redirect_uri or code_verifier do not match)",
	ReasonTokenInactive:    "the provider says this access token is not valid (expired, revoked or unknown)",

	ReasonPKCERequired:          "a code needs its PKCE code_verifier (RFC 7636: 43 to 128 characters of A-Z a-z 0-9 - . _ ~)",
	ReasonRedirectURINotAllowed: "redirect_uri is missing or not one of this provider's redirect_uris",
	ReasonTooOld:                "id_token was issued longer ago (iat) than this provider's max_age allows; sign in again",
	ReasonNonceRequired:         "this provider requires a nonce: send the nonce, and the id_token must carry it",
}

// Reasons returns every reason a provider may refuse with, sorted. Each
// has a description, so the descriptions are the list.
func Reasons() []string {
	return slices.Sorted(maps.Keys(descriptions))
}

// IsRequestReason reports whether reason refuses the request's parameters
// (a missing code_verifier, a redirect_uri not allowed) rather than the
// credential itself; callers answer it as a bad request, not a bad token.
func IsRequestReason(reason string) bool {
	return reason == ReasonPKCERequired || reason == ReasonRedirectURINotAllowed
}

// Error is a refused credential with a machine-readable reason.
//
// Error() is safe to show a client: it names the check that failed and
// never echoes the token, keys or upstream answers. The internals are in
// Err, for the log (Error implements slog.LogValuer, so logging the error
// with slog records them).
type Error struct {
	Reason      string // one of the Reason constants
	Description string // client-safe message; empty: the reason's default
	Err         error  // internal detail, never shown to a client
}

func (e *Error) Error() string {
	if e.Description != "" {
		return e.Description
	}
	if d, ok := descriptions[e.Reason]; ok {
		return d
	}
	return "provider credential refused"
}

func (e *Error) Unwrap() error { return e.Err }

// LogValue records the reason, the client-safe message and the internals.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("reason", e.Reason),
		slog.String("description", e.Error()),
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("detail", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// ReasonOf returns the Reason of the *Error in err's chain, or "".
func ReasonOf(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	return ""
}

func refuse(reason, description string, err error) *Error {
	return &Error{Reason: reason, Description: description, Err: err}
}
