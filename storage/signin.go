package storage

import (
	"context"
	"time"
)

// Capabilities of the hot paths: each does in one read, or one write
// transaction, what Store's methods do in several. On PostgreSQL every
// separate method is a round trip to the server; on bbolt every separate
// write is a commit. Both backends offer them; exchange falls back to
// Store's methods when a store lacks them.

// SignIn is everything the sign-in of a known identity writes.
type SignIn struct {
	// Session is the new session (as CreateSession takes it).
	Session Session
	// Issuer and Subject name the identity that signed in. The sign-in
	// writes only while that identity belongs to Session.UserID, checked
	// in the write, so an unlink or a move that commits first makes it
	// write nothing, and one that commits after it (a takeover that then
	// revokes the user's sessions) sees its session.
	Issuer, Subject string
	// TouchAt, when not zero, becomes the identity's LastLoginAt.
	TouchAt time.Time
	// CredentialKey, when not empty, is recorded as RecordCredential
	// records it, until CredentialExpiresAt, at Now.
	CredentialKey       string
	CredentialExpiresAt time.Time
	// Now is when the sign-in happens: the credential record and the
	// live-session count are taken at it.
	Now time.Time
	// Audit events are appended with the session (IDs and times set).
	Audit []AuditEvent
	// CountLive asks for LiveSessions in the result.
	CountLive bool
}

// SignedIn is what a SignIn write reports.
type SignedIn struct {
	// LiveSessions is how many sessions of the user are live at Now once
	// the new one is written (when SignIn.CountLive). Concurrent sign-ins
	// of one user count in turn: the last to write sees every other's
	// session, so a cap enforced on this count is never left exceeded.
	LiveSessions int
	// Identities are the user's identities, oldest first, as the write left them.
	Identities []Identity
}

// SignInWriter writes a sign-in in one transaction: one round trip on
// PostgreSQL, one commit (shared with concurrent writes) on bbolt.
type SignInWriter interface {
	// WriteSignIn creates the session, records the credential, touches
	// the identity and appends the audit events, all or nothing. It
	// returns ErrConflict, writing nothing, when the credential is
	// already recorded with an expiry after Now (of concurrent writes of
	// one key exactly one succeeds); ErrStale, writing nothing, when the
	// identity is absent or belongs to another user (or the user is
	// gone).
	WriteSignIn(ctx context.Context, in SignIn) (SignedIn, error)
}

// HotReader answers the reads of the hot paths in one read each.
type HotReader interface {
	// GetIdentityUser looks (issuer, subject) up with the user it belongs
	// to. ErrNotFound when the identity is absent.
	GetIdentityUser(ctx context.Context, issuer, subject string) (Identity, User, error)
	// GetSessionUser returns a session with its user. ErrNotFound when
	// the session is absent (a session never outlives its user).
	GetSessionUser(ctx context.Context, id string) (Session, User, error)
}

// EnabledUserRotator is RotateSession and the read of the session's user
// in one: the rotation happens only when the user is enabled too.
type EnabledUserRotator interface {
	// RotateSessionOfEnabledUser rotates as RotateSession does, and only
	// when the session's user is not disabled, except that IdleExpiresAt
	// becomes the earlier of idleExpiresAt and the session's ExpiresAt
	// (which the caller need not have read); it returns the rotated
	// session and its user. With clientID, only a session issued to no
	// client or to that one rotates. Otherwise it returns ErrStale and
	// writes nothing: the caller reads the session to learn why.
	RotateSessionOfEnabledUser(ctx context.Context, id, clientID string, from uint64, at, idleExpiresAt time.Time) (Session, User, error)
}

// SessionRevoker revokes one session and says whether this call did.
type SessionRevoker interface {
	// RevokeSessionOnce is RevokeSession that also returns the session
	// as it was before, and whether this call revoked it (false: it was
	// revoked already, and keeps its first time and reason). Of
	// concurrent calls at most one reports true. ErrNotFound when absent.
	RevokeSessionOnce(ctx context.Context, id string, at time.Time, reason string) (before Session, revoked bool, err error)
}
