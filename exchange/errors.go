package exchange

import (
	"errors"
	"fmt"
	"time"
)

// Kind says what sort of failure an Error is; web turns each kind into one
// HTTP status and one OAuth `error` code. Append only: the values are part
// of how the rest of the code reasons about failures.
type Kind int

const (
	KindInvalidRequest Kind = iota + 1
	KindUnsupportedProvider
	KindInvalidClient
	KindInvalidToken // a provider credential, or our own bearer token, was refused
	KindInvalidGrant // a refresh token was refused
	KindAccountExists
	KindIdentityInUse
	KindAccessDenied
	KindRateLimited
	KindProviderUnavailable
	KindStoreUnavailable
	KindNotFound
	KindServer
	KindConflict             // the request is sound but the records forbid it (last_identity)
	KindUnauthorizedClient   // an authenticated client may not do this (RFC 6749 unauthorized_client)
	KindUnsupportedGrantType // /oauth/token: grant_type unknown (RFC 6749 unsupported_grant_type)
	KindInvalidCredentials   // a password sign-in failed: the email or the password is wrong
	// KindNotImplemented: the operation exists but this deployment cannot
	// do it (a backup through authex of a PostgreSQL store).
	KindNotImplemented
	// KindBusy: the server is at its bound of concurrent password hashes;
	// RetryAfter says when to come back.
	KindBusy
	// KindHookUnavailable: the claims hook failed and hooks.claims.on_failure
	// is deny.
	KindHookUnavailable
)

// Error is what the service returns for every refused request. Description
// is safe to show a client; Err holds internals for the log only.
type Error struct {
	Kind        Kind
	Reason      string
	Description string
	// LinkToken is set with KindAccountExists: the client proves it owns the
	// existing account, then posts it to /v1/me/identities.
	LinkToken string
	// RetryAfter is set with KindRateLimited.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s (%s): %v", e.Description, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s (%s)", e.Description, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

func newError(kind Kind, reason, description string, err error) *Error {
	return &Error{Kind: kind, Reason: reason, Description: description, Err: err}
}

// AsError returns err as an *Error, turning anything else into a server
// error so that no internal message reaches a client.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindServer, Description: "internal error", Err: err}
}
