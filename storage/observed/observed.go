// Package observed wraps a storage.Store and reports how long every write
// takes to commit (for a bbolt file: the transaction and its fsync), without
// knowing who listens: cmd/authex turns the reports into Prometheus
// histograms. Reads pass straight through. It must never change what the
// wrapped store answers.
package observed

import (
	"context"
	"errors"
	"time"

	"github.com/authex/authex/storage"
)

// CommitFunc receives one write: the Store method's name, how long it took,
// and its error (nil on success). It is called on the request path and must
// not block.
type CommitFunc func(op string, took time.Duration, err error)

// Store is a storage.Store that reports its writes.
type Store struct {
	storage.Store
	commit CommitFunc
}

var (
	_ storage.Store     = (*Store)(nil)
	_ storage.Unwrapper = (*Store)(nil)
)

// Wrap returns s reporting every write to commit. When s writes the hot
// paths at once (storage.SignInWriter, storage.EnabledUserRotator,
// storage.SessionRevoker: both backends do), the wrapper offers them
// too, reported under the op of the write each replaces.
func Wrap(s storage.Store, commit CommitFunc) storage.Store {
	o := &Store{Store: s, commit: commit}
	if hot, ok := storage.As[hotWriter](s); ok {
		return &hotStore{Store: o, hot: hot}
	}
	return o
}

type hotWriter interface {
	storage.SignInWriter
	storage.EnabledUserRotator
	storage.SessionRevoker
}

// hotStore is a Store over a backend with the hot-path capabilities.
type hotStore struct {
	*Store
	hot hotWriter
}

var _ hotWriter = (*hotStore)(nil)

func (s *hotStore) WriteSignIn(ctx context.Context, in storage.SignIn) (storage.SignedIn, error) {
	done := s.timer("create_session")
	out, err := s.hot.WriteSignIn(ctx, in)
	done(err)
	return out, err
}

func (s *hotStore) RotateSessionOfEnabledUser(ctx context.Context, id, clientID string, from uint64, at, idleExpiresAt time.Time) (storage.Session, storage.User, error) {
	done := s.timer("rotate_session")
	sess, u, err := s.hot.RotateSessionOfEnabledUser(ctx, id, clientID, from, at, idleExpiresAt)
	// ErrStale wrote nothing: the caller reads the session and decides
	// (grace, reuse, revoked), and a rotation it then makes reports itself.
	if !errors.Is(err, storage.ErrStale) {
		done(err)
	}
	return sess, u, err
}

func (s *hotStore) RevokeSessionOnce(ctx context.Context, id string, at time.Time, reason string) (storage.Session, bool, error) {
	done := s.timer("revoke_session")
	before, revoked, err := s.hot.RevokeSessionOnce(ctx, id, at, reason)
	done(err)
	return before, revoked, err
}

// Unwrap returns the wrapped store, so storage.As finds its capabilities.
func (s *Store) Unwrap() storage.Store { return s.Store }

// timer starts timing op; the returned func reports it with the error.
func (s *Store) timer(op string) func(error) {
	start := time.Now()
	return func(err error) { s.commit(op, time.Since(start), err) }
}

func (s *Store) CreateUser(ctx context.Context, u storage.User, first storage.Identity) error {
	done := s.timer("create_user")
	err := s.Store.CreateUser(ctx, u, first)
	done(err)
	return err
}

func (s *Store) UpdateUser(ctx context.Context, u storage.User) error {
	done := s.timer("update_user")
	err := s.Store.UpdateUser(ctx, u)
	done(err)
	return err
}

func (s *Store) ModifyUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	done := s.timer("modify_user")
	u, err := s.Store.ModifyUser(ctx, id, fn)
	done(err)
	return u, err
}

func (s *Store) DeleteUser(ctx context.Context, id string) error {
	done := s.timer("delete_user")
	err := s.Store.DeleteUser(ctx, id)
	done(err)
	return err
}

func (s *Store) AddIdentity(ctx context.Context, id storage.Identity) error {
	done := s.timer("add_identity")
	err := s.Store.AddIdentity(ctx, id)
	done(err)
	return err
}

func (s *Store) DeleteIdentity(ctx context.Context, userID, identityID string) error {
	done := s.timer("delete_identity")
	err := s.Store.DeleteIdentity(ctx, userID, identityID)
	done(err)
	return err
}

func (s *Store) TouchIdentity(ctx context.Context, identityID string, at time.Time) error {
	done := s.timer("touch_identity")
	err := s.Store.TouchIdentity(ctx, identityID, at)
	done(err)
	return err
}

func (s *Store) CreateSession(ctx context.Context, sess storage.Session) error {
	done := s.timer("create_session")
	err := s.Store.CreateSession(ctx, sess)
	done(err)
	return err
}

func (s *Store) RotateSession(ctx context.Context, id string, from uint64, at, idleExpiresAt time.Time) (storage.Session, error) {
	done := s.timer("rotate_session")
	v, err := s.Store.RotateSession(ctx, id, from, at, idleExpiresAt)
	done(err)
	return v, err
}

func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, reason string) error {
	done := s.timer("revoke_session")
	err := s.Store.RevokeSession(ctx, id, at, reason)
	done(err)
	return err
}

func (s *Store) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time, reason string) (int, error) {
	done := s.timer("revoke_user_sessions")
	v, err := s.Store.RevokeUserSessions(ctx, userID, except, at, reason)
	done(err)
	return v, err
}

func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	done := s.timer("delete_expired_sessions")
	v, err := s.Store.DeleteExpiredSessions(ctx, now)
	done(err)
	return v, err
}

func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	done := s.timer("create_signing_key")
	err := s.Store.CreateSigningKey(ctx, k)
	done(err)
	return err
}

func (s *Store) UpdateSigningKey(ctx context.Context, k storage.SigningKey) error {
	done := s.timer("update_signing_key")
	err := s.Store.UpdateSigningKey(ctx, k)
	done(err)
	return err
}

func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	done := s.timer("delete_signing_key")
	err := s.Store.DeleteSigningKey(ctx, id)
	done(err)
	return err
}

func (s *Store) EnsureSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	done := s.timer("ensure_secret")
	v, err := s.Store.EnsureSecret(ctx, name, value)
	done(err)
	return v, err
}

func (s *Store) SwapSigningKeyMaterial(ctx context.Context, id string, old, new []byte) error {
	done := s.timer("swap_signing_key_material")
	err := s.Store.SwapSigningKeyMaterial(ctx, id, old, new)
	done(err)
	return err
}

func (s *Store) SwapSecret(ctx context.Context, name string, old, new []byte) error {
	done := s.timer("swap_secret")
	err := s.Store.SwapSecret(ctx, name, old, new)
	done(err)
	return err
}

func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	done := s.timer("delete_secret")
	err := s.Store.DeleteSecret(ctx, name)
	done(err)
	return err
}

func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	done := s.timer("append_audit")
	err := s.Store.AppendAudit(ctx, e)
	done(err)
	return err
}

func (s *Store) RecordCredential(ctx context.Context, key string, expiresAt, now time.Time) error {
	done := s.timer("record_credential")
	err := s.Store.RecordCredential(ctx, key, expiresAt, now)
	done(err)
	return err
}

func (s *Store) DeleteExpiredCredentials(ctx context.Context, now time.Time) (int, error) {
	done := s.timer("delete_expired_credentials")
	v, err := s.Store.DeleteExpiredCredentials(ctx, now)
	done(err)
	return v, err
}
