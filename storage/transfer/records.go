package transfer

import (
	"time"

	"github.com/authex/authex/storage"
)

// The stream's records: the storage records with stable snake_case names,
// so the format does not follow Go field renames. []byte is base64. Each
// has its storage record's fields, in order, so the two convert into each
// other, and a field added to one alone fails to compile.

type secret struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

type signingKey struct {
	ID         string    `json:"id"`
	Algorithm  string    `json:"algorithm"`
	PrivateKey []byte    `json:"private_key"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	NotBefore  time.Time `json:"not_before,omitzero"`
	RetiredAt  time.Time `json:"retired_at,omitzero"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

func fromSigningKey(k storage.SigningKey) *signingKey {
	return (*signingKey)(&k)
}

func (k signingKey) record() storage.SigningKey {
	return storage.SigningKey(k)
}

type user struct {
	ID            string `json:"id"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	// EmailVerifiedBy: absent in streams older than it, which imports as
	// "" (unknown: not trusted for linking by email).
	EmailVerifiedBy string    `json:"email_verified_by,omitempty"`
	Name            string    `json:"name,omitempty"`
	Picture         string    `json:"picture,omitempty"`
	Roles           []string  `json:"roles,omitempty"`
	Disabled        bool      `json:"disabled,omitempty"`
	PasswordHash    string    `json:"password_hash,omitempty"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
	// Username, GivenName, FamilyName: absent in older streams and for
	// users without them.
	Username   string `json:"username,omitempty"`
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
}

func fromUser(u storage.User) *user {
	return (*user)(&u)
}

func (u user) record() storage.User {
	if u.Roles == nil {
		u.Roles = []string{}
	}
	return storage.User(u)
}

type identity struct {
	ID            string    `json:"id"`
	UserID        string    `json:"user_id"`
	Provider      string    `json:"provider"`
	Issuer        string    `json:"issuer"`
	Subject       string    `json:"subject"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified,omitempty"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	LastLoginAt   time.Time `json:"last_login_at,omitzero"`
}

func fromIdentity(i storage.Identity) *identity {
	return (*identity)(&i)
}

func (i identity) record() storage.Identity {
	return storage.Identity(i)
}

type session struct {
	ID            string    `json:"id"`
	UserID        string    `json:"user_id"`
	Provider      string    `json:"provider,omitempty"`
	ClientID      string    `json:"client_id,omitempty"`
	Generation    uint64    `json:"generation"`
	RotatedAt     time.Time `json:"rotated_at,omitzero"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	IdleExpiresAt time.Time `json:"idle_expires_at,omitzero"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	RevokedReason string    `json:"revoked_reason,omitempty"`
	UserAgent     string    `json:"user_agent,omitempty"`
	IP            string    `json:"ip,omitempty"`
}

func fromSession(s storage.Session) *session {
	return (*session)(&s)
}

func (s session) record() storage.Session {
	return storage.Session(s)
}

type auditEvent struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	UserID    string    `json:"user_id,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	Provider  string    `json:"provider,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

func fromAudit(e storage.AuditEvent) *auditEvent {
	return (*auditEvent)(&e)
}

func (e auditEvent) record() storage.AuditEvent {
	return storage.AuditEvent(e)
}
