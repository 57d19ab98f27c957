package storage

import (
	"context"
	"io"
	"time"
)

// Capability interfaces: what some backends can do beyond Store. Callers
// find them with As, the way dex's server type-asserts its connectors'
// optional interfaces, and answer "not supported" when a backend lacks one.

// Backuper streams a consistent copy of the whole store while it keeps
// serving (bbolt: one read transaction's Tx.WriteTo). The copy is a file
// the backend opens as it opens its own. PostgreSQL has pg_dump instead.
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// SessionCounter counts the sessions that are live at now (neither revoked
// nor past a limit). It may scan; callers cache the answer.
type SessionCounter interface {
	CountActiveSessions(ctx context.Context, now time.Time) (int, error)
}

// Unwrapper is implemented by decorators (instrumentation) around a Store,
// so As can reach the backend's capabilities through them.
type Unwrapper interface {
	Unwrap() Store
}

// As finds a capability T on s or on any Store it decorates.
func As[T any](s Store) (T, bool) {
	for s != nil {
		if c, ok := s.(T); ok {
			return c, true
		}
		u, ok := s.(Unwrapper)
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	var zero T
	return zero, false
}
