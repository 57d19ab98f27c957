package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/authex/authex/exchange/keyring"
	"github.com/authex/authex/storage"
)

// Admin is the operator's view of the service: users, sessions, keys, the
// audit log and backups. Every method that changes something appends an
// audit event naming the actor (an admin token's fingerprint, never the
// token). Web guards it with the admin tokens; it checks nothing of the
// caller itself.
type Admin struct{ s *Service }

// Admin returns the operator API over the same store and keys.
func (s *Service) Admin() *Admin { return &Admin{s: s} }

// Paging bounds for ListUsers.
const (
	DefaultUserPage = 50
	MaxUserPage     = 1000
)

// Bounds on roles, which travel in every access token.
const (
	maxRoles   = 50
	maxRoleLen = 64
)

// errBackupUnsupported: the store cannot stream a backup of itself.
var errBackupUnsupported = errors.New("store has no hot backup")

// ListUsers pages through users in ID order, filtered by email, provider
// and subject. A zero limit means DefaultUserPage; more than MaxUserPage is
// refused.
func (a *Admin) ListUsers(ctx context.Context, f storage.UserFilter) ([]storage.User, error) {
	switch {
	case f.Limit == 0:
		f.Limit = DefaultUserPage
	case f.Limit < 0 || f.Limit > MaxUserPage:
		return nil, newError(KindInvalidRequest, ReasonInvalidLimit, fmt.Sprintf("limit must be between 1 and %d", MaxUserPage), nil)
	}
	users, err := a.s.store.ListUsers(ctx, f)
	if err != nil {
		return nil, storeError(err)
	}
	return users, nil
}

// GetUser returns a user and its identities.
func (a *Admin) GetUser(ctx context.Context, id string) (storage.User, []storage.Identity, error) {
	u, idents, err := a.s.UserWithIdentities(ctx, id)
	if err != nil {
		return u, nil, notFound(err, "no user with this id")
	}
	return u, idents, nil
}

// SetDisabled disables or enables a user. Disabling revokes every session
// of the user at once and returns how many; a disabled user can neither
// exchange nor refresh, and its access tokens stop authenticating here.
func (a *Admin) SetDisabled(ctx context.Context, id string, disabled bool, actor string) (storage.User, int, error) {
	now := a.s.now().UTC()
	var u storage.User
	revoked := 0
	err := a.s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		changed := false
		var err error
		u, err = tx.ModifyUser(ctx, id, func(u *storage.User) error {
			changed = u.Disabled != disabled
			if changed {
				u.Disabled, u.UpdatedAt = disabled, now
			}
			return nil
		})
		if err != nil {
			return err
		}
		if changed {
			typ := WebhookUserUpdated // enabled again
			if disabled {
				typ = WebhookUserDisabled
			}
			if err := emit(typ, id, UserData{User: eventUser(u)}); err != nil {
				return err
			}
		}
		revoked = 0
		if disabled {
			// Revoked even when the user was already disabled: a retry after a
			// failure half-way must finish the job.
			revoked, err = revokeUserSessionsIn(ctx, tx, emit, id, "", now, RevokeReasonUserDisabled)
			if err != nil {
				return storeError(err)
			}
		}
		return nil
	})
	if err != nil {
		return u, 0, notFound(err, "no user with this id")
	}
	typ := EventUserEnabled
	detail := "by " + actor
	if disabled {
		typ = EventUserDisabled
		detail = fmt.Sprintf("by %s; %d session(s) revoked", actor, revoked)
	}
	a.s.audit(ctx, storage.AuditEvent{Type: typ, UserID: id, Detail: detail})
	return u, revoked, nil
}

// DeleteUser erases the user, its identities, sessions and index entries.
func (a *Admin) DeleteUser(ctx context.Context, id, actor string) error {
	err := a.s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		if err := tx.DeleteUser(ctx, id); err != nil {
			return err
		}
		return emit(WebhookUserDeleted, id, UserDeletedData{UserID: id})
	})
	if err != nil {
		return notFound(err, "no user with this id")
	}
	a.s.audit(ctx, storage.AuditEvent{Type: EventUserDeleted, UserID: id, Detail: "by " + actor})
	return nil
}

// SetRoles replaces a user's roles. They appear in the `roles` claim of
// the access tokens minted from then on (at the next refresh).
func (a *Admin) SetRoles(ctx context.Context, id string, roles []string, actor string) (storage.User, error) {
	clean, err := cleanRoles(roles)
	if err != nil {
		return storage.User{}, err
	}
	now := a.s.now().UTC()
	var u storage.User
	err = a.s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		var err error
		u, err = tx.ModifyUser(ctx, id, func(u *storage.User) error {
			u.Roles, u.UpdatedAt = clean, now
			return nil
		})
		if err != nil {
			return err
		}
		return emit(WebhookUserUpdated, id, UserData{User: eventUser(u)})
	})
	if err != nil {
		return u, notFound(err, "no user with this id")
	}
	a.s.audit(ctx, storage.AuditEvent{Type: EventUserRoles, UserID: id,
		Detail: fmt.Sprintf("roles [%s] by %s", strings.Join(clean, " "), actor)})
	return u, nil
}

// cleanRoles checks roles and returns them sorted without duplicates.
func cleanRoles(roles []string) ([]string, error) {
	if len(roles) > maxRoles {
		return nil, newError(KindInvalidRequest, ReasonInvalidRoles, fmt.Sprintf("at most %d roles", maxRoles), nil)
	}
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if r == "" || len(r) > maxRoleLen || strings.ContainsFunc(r, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
			return nil, newError(KindInvalidRequest, ReasonInvalidRoles,
				fmt.Sprintf("a role must be 1 to %d characters without spaces or control characters", maxRoleLen), nil)
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Now is the service's clock, for judging which sessions are live.
func (a *Admin) Now() time.Time { return a.s.now() }

// ListSessions returns a user's sessions, newest first.
func (a *Admin) ListSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	if _, err := a.s.store.GetUser(ctx, userID); err != nil {
		return nil, notFound(err, "no user with this id")
	}
	sess, err := a.s.store.ListSessions(ctx, userID)
	if err != nil {
		return nil, storeError(err)
	}
	return sess, nil
}

// RevokeSession revokes one session: its refresh token stops working at
// once, its access token when it expires (or at once for /v1/me and
// introspection).
func (a *Admin) RevokeSession(ctx context.Context, sessionID, actor string) error {
	sess, err := a.s.store.GetSession(ctx, sessionID)
	if err != nil {
		return notFound(err, "no session with this id")
	}
	err = a.s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		return revokeSessionIn(ctx, tx, emit, sessionID, a.s.now().UTC(), RevokeReasonAdmin)
	})
	if err != nil {
		return notFound(err, "no session with this id")
	}
	a.s.audit(ctx, storage.AuditEvent{Type: EventSessionRevoked, UserID: sess.UserID, SessionID: sessionID, Detail: "by " + actor})
	return nil
}

// RevokeUserSessions revokes every live session of a user.
func (a *Admin) RevokeUserSessions(ctx context.Context, userID, actor string) (int, error) {
	if _, err := a.s.store.GetUser(ctx, userID); err != nil {
		return 0, notFound(err, "no user with this id")
	}
	var n int
	err := a.s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		var err error
		n, err = revokeUserSessionsIn(ctx, tx, emit, userID, "", a.s.now().UTC(), RevokeReasonAdmin)
		return err
	})
	if err != nil {
		return 0, storeError(err)
	}
	a.s.audit(ctx, storage.AuditEvent{Type: EventSessionRevokedAll, UserID: userID,
		Detail: fmt.Sprintf("%d session(s) by %s", n, actor)})
	return n, nil
}

// KeyInfo is a signing key without its private part.
type KeyInfo struct {
	ID        string
	Algorithm string
	// State is "pending" (published, not signing yet), "active" (signing),
	// "retiring" (published for the tokens it signed, no longer signing),
	// "expired" (out of the JWKS, deleted a day later) or "revoked" (out of
	// the JWKS and verifying nothing since RevokedAt). A key from a PEM
	// file is "active" (the first) or "published".
	State     string
	CreatedAt time.Time
	NotBefore time.Time
	RetiredAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time
	// FromFile: the key comes from tokens.signing_key_files, not the store.
	FromFile bool
}

// ListKeys lists the signing keys, oldest first, with their state now.
func (a *Admin) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	if files := a.s.keys.Files(); len(files) > 0 {
		out := make([]KeyInfo, 0, len(files))
		for i, f := range files {
			k := KeyInfo{ID: f.ID, Algorithm: f.Algorithm, State: "published", FromFile: true}
			if i == 0 {
				k.State = "active"
			}
			out = append(out, k)
		}
		return out, nil
	}
	recs, err := a.s.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, storeError(err)
	}
	now := a.s.now()
	signing := a.s.keys.SigningKID()
	out := make([]KeyInfo, 0, len(recs))
	for _, r := range recs {
		out = append(out, keyInfo(r, now, signing))
	}
	return out, nil
}

// RotateKey rotates the signing key (see Keyring.Rotate) and returns the new key.
func (a *Admin) RotateKey(ctx context.Context, actor string) (KeyInfo, error) {
	rec, err := a.s.RotateKeys(ctx, actor)
	if err != nil {
		return KeyInfo{}, err
	}
	return keyInfo(rec, a.s.now(), a.s.keys.SigningKID()), nil
}

func keyInfo(r storage.SigningKey, now time.Time, signingKID string) KeyInfo {
	k := KeyInfo{ID: r.ID, Algorithm: r.Algorithm, CreatedAt: r.CreatedAt, NotBefore: r.NotBefore,
		RetiredAt: r.RetiredAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt}
	switch {
	case keyring.Revoked(r):
		k.State = "revoked"
	case !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt):
		k.State = "expired"
	case now.Before(r.NotBefore):
		k.State = "pending"
	case signingKID != "" && signingKID == r.ID:
		k.State = "active"
	default:
		k.State = "retiring"
	}
	return k
}

// ListAudit returns audit events, newest first. A zero limit means 100.
func (a *Admin) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	switch {
	case f.Limit == 0:
		f.Limit = 100
	case f.Limit < 0 || f.Limit > 10000:
		return nil, newError(KindInvalidRequest, ReasonInvalidLimit, "limit must be between 1 and 10000", nil)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return nil, newError(KindInvalidRequest, ReasonInvalidRange, "since must be before until", nil)
	}
	ev, err := a.s.store.ListAudit(ctx, f)
	if err != nil {
		return nil, storeError(err)
	}
	return ev, nil
}

// CanBackup reports whether the store can stream a hot backup.
func (a *Admin) CanBackup() bool {
	_, ok := storage.As[storage.Backuper](a.s.store)
	return ok
}

// Backup streams a consistent copy of the store to w while it serves, and
// records it in the audit log. Stores without a hot backup (PostgreSQL:
// use pg_dump) answer KindNotImplemented.
func (a *Admin) Backup(ctx context.Context, w io.Writer, actor string) (int64, error) {
	b, ok := storage.As[storage.Backuper](a.s.store)
	if !ok {
		return 0, newError(KindNotImplemented, ReasonBackupUnsupported,
			"this store has no hot backup through authex; back the database up with its own tools (PostgreSQL: pg_dump)", errBackupUnsupported)
	}
	n, err := b.Backup(ctx, w)
	if err != nil {
		return n, storeError(err)
	}
	a.s.audit(ctx, storage.AuditEvent{Type: EventStoreBackup, Detail: fmt.Sprintf("%d bytes by %s", n, actor)})
	return n, nil
}

// notFound turns storage.ErrNotFound into KindNotFound with a description
// naming what is missing; other errors as storeError does.
func notFound(err error, description string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return newError(KindNotFound, ReasonNotFound, description, err)
	}
	return storeError(err)
}
