package storage

import (
	"context"
	"time"
)

// Email token purposes (EmailToken.Purpose).
const (
	TokenPurposeVerifyEmail   = "verify_email"
	TokenPurposeResetPassword = "reset_password"
)

// EmailToken is a single-use token mailed to a user: a link to verify an
// email or to reset a password. The token itself is never stored: Hash is
// its SHA-256 (hex), which is what a spend looks up.
type EmailToken struct {
	Hash    string
	Purpose string
	UserID  string
	// Email is the address the token was sent to.
	Email string
	// Binding is what must still hold when the token is spent (for a
	// reset token, a fingerprint of the password hash it was issued
	// under: any password change makes the token useless).
	Binding   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// EmailTokens stores EmailToken records. Both backends offer it.
type EmailTokens interface {
	// CreateEmailToken writes t. ErrConflict, writing nothing, when a
	// token with t.Hash exists; an error when Hash, Purpose or UserID is
	// empty.
	CreateEmailToken(ctx context.Context, t EmailToken) error
	// GetEmailToken returns the token named by hash when it exists and
	// is not expired at now (ExpiresAt after now); ErrNotFound otherwise.
	// It writes nothing.
	GetEmailToken(ctx context.Context, hash string, now time.Time) (EmailToken, error)
	// SpendEmailToken deletes the token named by hash and returns it,
	// when it exists and is not expired at now; otherwise it answers
	// ErrNotFound and writes nothing. Of concurrent spends of one token
	// exactly one succeeds.
	SpendEmailToken(ctx context.Context, hash string, now time.Time) (EmailToken, error)
	// DeleteExpiredEmailTokens removes the tokens expired at now and
	// returns how many it removed.
	DeleteExpiredEmailTokens(ctx context.Context, now time.Time) (int, error)
}
