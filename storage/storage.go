// Package storage holds authex's records (users, identities, sessions,
// signing keys, secrets, audit events), the Store interface every backend
// implements, and the sentinel errors backends translate their driver errors
// into. The conformance suite in storage/storagetest is the contract: a
// backend is correct when it passes it unchanged.
//
// This package must never import a backend, echo, or anything about HTTP.
package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Backends return these (possibly wrapped) and nothing that
// names their driver, so callers can use errors.Is without knowing which
// backend is behind the interface.
var (
	// ErrNotFound: the record asked for does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a unique index would be violated; nothing was written.
	ErrConflict = errors.New("storage: conflict")
	// ErrIdentityTaken: the (issuer, subject) pair already belongs to a user.
	ErrIdentityTaken = fmt.Errorf("%w: identity already belongs to a user", ErrConflict)
	// ErrEmailTaken: another user already owns this verified email.
	ErrEmailTaken = fmt.Errorf("%w: verified email already belongs to a user", ErrConflict)
	// ErrPasswordEmailTaken: another user with a password already has this email.
	ErrPasswordEmailTaken = fmt.Errorf("%w: email already belongs to a password account", ErrConflict)
	// ErrUsernameTaken: another user already has this username (UsernameKey).
	ErrUsernameTaken = fmt.Errorf("%w: username already belongs to a user", ErrConflict)
	// ErrStale: a compare-and-swap lost (the session's generation moved on).
	ErrStale = errors.New("storage: stale generation")
	// ErrUnavailable: the store cannot be reached right now; retrying later may work.
	ErrUnavailable = errors.New("storage: unavailable")
)

// User is a local account. Email is indexed as unique only when
// EmailVerified is true: an unverified address proves nothing and must never
// capture a verified identity. Separately, the email of every user with a
// PasswordHash is in the password-email index (unique, verified or not):
// that is how a password sign-in finds its account.
type User struct {
	ID            string
	Email         string
	EmailVerified bool
	// EmailVerifiedBy names the provider (its config name) that vouched
	// for Email when it was verified; "" means unknown, which is never
	// trusted. An automatic link by email into this user happens only when
	// it names a provider currently trusted for email.
	EmailVerifiedBy string
	Name            string
	Picture         string
	Roles           []string
	Disabled        bool
	// PasswordHash is a PHC string (argon2id) for password accounts, empty otherwise.
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// Username is an optional sign-in name beside Email, kept as given;
	// unique by UsernameKey (ASCII case folded) among all users. "" is
	// none. The exchange decides what a valid username is.
	Username string
	// GivenName and FamilyName are the name in two parts, for the
	// profiles whose frontends show first_name and last_name; "" when
	// only Name is known.
	GivenName  string
	FamilyName string
}

// Identity is one way to sign in: (Issuer, Subject) at a provider. It
// belongs to exactly one user.
type Identity struct {
	ID            string
	UserID        string
	Provider      string // the provider's name in the config, e.g. "google"
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	CreatedAt     time.Time
	LastLoginAt   time.Time
}

// Session is one sign-in. The refresh token is derived from (ID, Generation)
// with a server secret, so the store never holds a token in clear.
type Session struct {
	ID         string
	UserID     string
	Provider   string // identity provider that started the session (the `idp` claim)
	ClientID   string
	Generation uint64
	// RotatedAt is when Generation was issued; the reuse grace counts from it.
	RotatedAt time.Time
	CreatedAt time.Time
	// IdleExpiresAt slides forward at every rotation; ExpiresAt never moves.
	IdleExpiresAt time.Time
	ExpiresAt     time.Time
	RevokedAt     time.Time // zero while the session is live
	RevokedReason string
	UserAgent     string
	IP            string
}

// Revoked reports whether the session has been revoked.
func (s Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// Expired reports whether the session is past its idle or absolute limit at now.
func (s Session) Expired(now time.Time) bool {
	return !now.Before(s.IdleExpiresAt) || !now.Before(s.ExpiresAt)
}

// SigningKey is one of our token signing keys. PrivateKey is PKCS#8 DER.
type SigningKey struct {
	ID         string // the JWT `kid`
	Algorithm  string // ES256, EdDSA or RS256
	PrivateKey []byte
	CreatedAt  time.Time
	// NotBefore: the key is published at once but signs only from this time,
	// so API caches fetch it before they meet a token it signed.
	NotBefore time.Time
	// RetiredAt: from this time the key no longer signs (zero: still may).
	RetiredAt time.Time
	// ExpiresAt: from this time the key leaves the JWKS (zero: never set).
	ExpiresAt time.Time
	// RevokedAt: the key was revoked in an emergency at this time (zero: it
	// was not): it is out of the JWKS and verifies nothing any more.
	RevokedAt time.Time
}

// AuditEvent records a security-relevant change: a user created, an
// identity linked or unlinked, a refresh token reused, ...
type AuditEvent struct {
	ID        string // sortable (UUIDv7): listing by ID is listing by time
	Time      time.Time
	Type      string
	UserID    string
	SessionID string
	Provider  string
	Detail    string
}

// UserFilter narrows ListUsers. Empty fields match everything.
type UserFilter struct {
	Email string // same EmailKey, verified or not
	// Provider and Subject match users with an identity that has both.
	Provider string
	Subject  string
	Username string // same UsernameKey
	After    string // user ID to start after (paging)
	Limit    int    // <= 0: no limit
}

// AuditFilter narrows ListAudit. Zero fields match everything.
type AuditFilter struct {
	UserID string
	Type   string
	Since  time.Time // inclusive
	Until  time.Time // exclusive
	Limit  int       // <= 0: no limit
}

// Store is every backend's contract. All times are returned in UTC, to the
// microsecond at least. Every method that acknowledges a write has made it
// durable before it returns. IDs are the caller's to choose (UUIDs); a
// create with a taken ID returns ErrConflict and writes nothing. A session
// is live at t when it is neither revoked nor Expired(t).
type Store interface {
	// CreateUser writes a new user together with its first identity, the
	// verified-email index entry when u.EmailVerified, and the
	// password-email entry when u.PasswordHash is set. Returns
	// ErrIdentityTaken, ErrEmailTaken or ErrPasswordEmailTaken, writing
	// nothing, on a conflict.
	CreateUser(ctx context.Context, u User, first Identity) error
	// GetUser returns ErrNotFound when there is no such user.
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByVerifiedEmail looks the verified-email index up by EmailKey.
	// Unverified emails are never in it. ErrNotFound when absent.
	GetUserByVerifiedEmail(ctx context.Context, email string) (User, error)
	// GetUserByPasswordEmail looks the password-email index up (by
	// EmailKey): the user whose PasswordHash is set and whose Email
	// is email, verified or not. ErrNotFound when absent.
	GetUserByPasswordEmail(ctx context.Context, email string) (User, error)
	// UpdateUser replaces the user's mutable fields (all but ID and
	// CreatedAt) and keeps both email indexes in step. ErrNotFound, or ErrEmailTaken when the new verified
	// email belongs to someone else, or ErrPasswordEmailTaken when the user
	// has a password and another user with a password has the new email,
	// or ErrUsernameTaken when another user has the new username's key.
	UpdateUser(ctx context.Context, u User) error
	// ModifyUser is the read-modify-write of a user: in one transaction it
	// reads the user, calls fn on that fresh copy, and writes what fn left
	// (all but ID and CreatedAt, which fn cannot change) with both email
	// indexes in step, as UpdateUser does; it returns the user as written.
	// A concurrent change is never lost: fn sees it or runs again after it.
	// fn may run more than once and must do no I/O (no hashing, no network:
	// it holds the user's lock). An error from fn aborts, writes nothing and
	// is returned unchanged. ErrNotFound, ErrEmailTaken,
	// ErrPasswordEmailTaken and ErrUsernameTaken as UpdateUser.
	ModifyUser(ctx context.Context, id string, fn func(*User) error) (User, error)
	// GetUserByUsername looks the username index up by UsernameKey.
	// ErrNotFound when absent (and for "").
	GetUserByUsername(ctx context.Context, username string) (User, error)
	// DeleteUser erases the user, its identities, its sessions and their
	// index entries. ErrNotFound when absent.
	DeleteUser(ctx context.Context, id string) error
	// ListUsers pages through users in ID order.
	ListUsers(ctx context.Context, f UserFilter) ([]User, error)
	// CountUsers returns how many users exist.
	CountUsers(ctx context.Context) (int, error)

	// AddIdentity links an identity to an existing user. ErrNotFound when
	// the user is absent, ErrIdentityTaken when the identity already exists.
	AddIdentity(ctx context.Context, id Identity) error
	// GetIdentity looks (issuer, subject) up. ErrNotFound when absent.
	GetIdentity(ctx context.Context, issuer, subject string) (Identity, error)
	// ListIdentities returns a user's identities, oldest first (none, not
	// ErrNotFound, for an unknown user).
	ListIdentities(ctx context.Context, userID string) ([]Identity, error)
	// DeleteIdentity removes one identity of a user. ErrNotFound when the
	// identity is absent or belongs to another user.
	DeleteIdentity(ctx context.Context, userID, identityID string) error
	// TouchIdentity records a sign-in time. ErrNotFound when absent.
	TouchIdentity(ctx context.Context, identityID string, at time.Time) error

	// CreateSession writes a new session. ErrNotFound when the user is absent.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns ErrNotFound when absent.
	GetSession(ctx context.Context, id string) (Session, error)
	// RotateSession is a compare-and-swap: when the session is live at `at`
	// and its generation is from, it becomes from+1 with RotatedAt = at and
	// IdleExpiresAt = idleExpiresAt, and the updated session is returned.
	// Otherwise it returns the session as stored and ErrStale, so of many
	// concurrent rotations from one generation exactly one wins.
	RotateSession(ctx context.Context, id string, from uint64, at, idleExpiresAt time.Time) (Session, error)
	// RevokeSession marks one session revoked (idempotent: an already
	// revoked session keeps its first time and reason). ErrNotFound when absent.
	RevokeSession(ctx context.Context, id string, at time.Time, reason string) error
	// RevokeUserSessions revokes every session of a user live at `at` except
	// the one named by except (may be empty) and returns how many it revoked.
	RevokeUserSessions(ctx context.Context, userID, except string, at time.Time, reason string) (int, error)
	// ListSessions returns a user's sessions (live and revoked), newest
	// first (none, not ErrNotFound, for an unknown user).
	ListSessions(ctx context.Context, userID string) ([]Session, error)
	// DeleteExpiredSessions removes sessions Expired(now) or revoked at or
	// before now, and returns how many it removed.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)

	// ListSigningKeys returns every key, oldest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// CreateSigningKey adds a key. ErrConflict when the ID exists.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// UpdateSigningKey replaces a key's NotBefore, RetiredAt, ExpiresAt and
	// RevokedAt; the rest never changes. ErrNotFound when absent.
	UpdateSigningKey(ctx context.Context, k SigningKey) error
	// DeleteSigningKey removes a key. ErrNotFound when absent.
	DeleteSigningKey(ctx context.Context, id string) error

	// EnsureSecret stores value under name unless a value is already there,
	// and returns the stored value: the first writer wins, across instances.
	EnsureSecret(ctx context.Context, name string, value []byte) ([]byte, error)

	// Rewriting key material in place: sealing legacy plaintext records
	// with the key-encryption key, resealing them under a new one, and
	// dropping retired refresh MAC secrets.
	//
	// ListSecrets returns every secret, by name.
	ListSecrets(ctx context.Context) ([]Secret, error)
	// SwapSigningKeyMaterial is a compare-and-swap of a key's PrivateKey:
	// when it is old, it becomes new (nothing else changes). ErrNotFound
	// when the key is absent; ErrStale, writing nothing, when its
	// PrivateKey is not old (another instance swapped it first).
	SwapSigningKeyMaterial(ctx context.Context, id string, old, new []byte) error
	// SwapSecret is the same compare-and-swap for a secret's value.
	// ErrNotFound when absent; ErrStale, writing nothing, when the value is
	// not old.
	SwapSecret(ctx context.Context, name string, old, new []byte) error
	// DeleteSecret removes a secret. ErrNotFound when absent.
	DeleteSecret(ctx context.Context, name string) error

	// AppendAudit records an event.
	AppendAudit(ctx context.Context, e AuditEvent) error
	// ListAudit returns events, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	// RecordCredential records that the provider credential named by key
	// (an issuer and a jti, or an issuer and a token hash: any string,
	// which backends may store hashed) was accepted, until expiresAt. When
	// key is already recorded with an expiresAt after now, it returns
	// ErrConflict and writes nothing: of many concurrent records of one
	// key, exactly one returns nil. A record expired at now is replaced.
	// Durable before it returns, like every write.
	RecordCredential(ctx context.Context, key string, expiresAt, now time.Time) error
	// DeleteExpiredCredentials removes the credential records whose
	// expiresAt is at or before now, and returns how many it removed.
	DeleteExpiredCredentials(ctx context.Context, now time.Time) (int, error)

	// Ping reports whether the store can serve (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the store; nothing may be called after it.
	Close() error
}
