package transfer

import (
	"time"

	"github.com/authex/authex/storage"
)

// The stream's records: the storage records with stable snake_case names,
// so the format does not follow Go field renames. []byte is base64.

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
}

func fromSigningKey(k storage.SigningKey) *signingKey {
	return &signingKey{k.ID, k.Algorithm, k.PrivateKey, k.CreatedAt, k.NotBefore, k.RetiredAt, k.ExpiresAt}
}

func (k signingKey) record() storage.SigningKey {
	return storage.SigningKey{ID: k.ID, Algorithm: k.Algorithm, PrivateKey: k.PrivateKey,
		CreatedAt: k.CreatedAt, NotBefore: k.NotBefore, RetiredAt: k.RetiredAt, ExpiresAt: k.ExpiresAt}
}

type user struct {
	ID            string    `json:"id"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified,omitempty"`
	Name          string    `json:"name,omitempty"`
	Picture       string    `json:"picture,omitempty"`
	Roles         []string  `json:"roles,omitempty"`
	Disabled      bool      `json:"disabled,omitempty"`
	PasswordHash  string    `json:"password_hash,omitempty"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	UpdatedAt     time.Time `json:"updated_at,omitzero"`
}

func fromUser(u storage.User) *user {
	return &user{u.ID, u.Email, u.EmailVerified, u.Name, u.Picture, u.Roles, u.Disabled, u.PasswordHash, u.CreatedAt, u.UpdatedAt}
}

func (u user) record() storage.User {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return storage.User{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name, Picture: u.Picture,
		Roles: roles, Disabled: u.Disabled, PasswordHash: u.PasswordHash, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
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
	return &identity{i.ID, i.UserID, i.Provider, i.Issuer, i.Subject, i.Email, i.EmailVerified, i.CreatedAt, i.LastLoginAt}
}

func (i identity) record() storage.Identity {
	return storage.Identity{ID: i.ID, UserID: i.UserID, Provider: i.Provider, Issuer: i.Issuer, Subject: i.Subject,
		Email: i.Email, EmailVerified: i.EmailVerified, CreatedAt: i.CreatedAt, LastLoginAt: i.LastLoginAt}
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
	return &session{s.ID, s.UserID, s.Provider, s.ClientID, s.Generation, s.RotatedAt, s.CreatedAt,
		s.IdleExpiresAt, s.ExpiresAt, s.RevokedAt, s.RevokedReason, s.UserAgent, s.IP}
}

func (s session) record() storage.Session {
	return storage.Session{ID: s.ID, UserID: s.UserID, Provider: s.Provider, ClientID: s.ClientID, Generation: s.Generation,
		RotatedAt: s.RotatedAt, CreatedAt: s.CreatedAt, IdleExpiresAt: s.IdleExpiresAt, ExpiresAt: s.ExpiresAt,
		RevokedAt: s.RevokedAt, RevokedReason: s.RevokedReason, UserAgent: s.UserAgent, IP: s.IP}
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
	return &auditEvent{e.ID, e.Time, e.Type, e.UserID, e.SessionID, e.Provider, e.Detail}
}

func (e auditEvent) record() storage.AuditEvent {
	return storage.AuditEvent{ID: e.ID, Time: e.Time, Type: e.Type, UserID: e.UserID, SessionID: e.SessionID,
		Provider: e.Provider, Detail: e.Detail}
}
