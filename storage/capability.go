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

// Transactor runs fn against a view of the store inside one transaction:
// the writes fn makes through the view all commit when fn returns nil, and
// none does when it returns an error or the transaction cannot commit (a
// lost connection). The view serves one goroutine and must not be used
// after fn returns. `authex import` writes a whole export this way.
// Both backends offer it. fn must return the error a method of the view
// gave it rather than carry on: bbolt has no savepoints, so a failed
// method may have written part of its work. On bbolt fn holds the one
// writer lock: no network I/O, no hashing, no use of the outer store.
type Transactor interface {
	InTx(ctx context.Context, fn func(tx Store) error) error
}

// Snapshotter runs fn against a read-only view of one consistent snapshot
// of the store (PostgreSQL: a REPEATABLE READ READ ONLY transaction), so
// reads spread over many queries see one moment. The view serves one
// goroutine and must not be used after fn returns. `authex export` reads
// this way.
type Snapshotter interface {
	Snapshot(ctx context.Context, fn func(view Store) error) error
}

// RateLimiter keeps token buckets in the store, so that every instance on
// it shares one budget per key (PostgreSQL). A bucket holds at most burst
// tokens and refills at rate tokens per second; a key never seen, or whose
// bucket has refilled, is a full bucket.
type RateLimiter interface {
	// TakeTokens brings the bucket named key up to now, then, if it holds
	// at least n tokens, takes them and answers 0; otherwise it takes
	// nothing and answers how long until it holds n. A negative n gives
	// -n tokens back (never above burst) and answers 0. Atomic across
	// instances: concurrent takes never spend one token twice. Durable
	// before it returns. rate and burst must be positive.
	TakeTokens(ctx context.Context, key string, n, rate, burst float64, now time.Time) (time.Duration, error)
	// DeleteFullBuckets forgets the buckets that are full at now (which
	// changes nothing a take answers) and returns how many it removed.
	DeleteFullBuckets(ctx context.Context, now time.Time) (int, error)
}

// OutboxRecord is one webhook delivery waiting in the outbox: one event
// for one configured endpoint. It is written in the same transaction as
// the change it describes (through a Transactor view), so a change that
// committed has its deliveries and one that did not has none.
type OutboxRecord struct {
	// ID is the event's id (a UUIDv7, the webhook-id header): records list
	// in ID order, which is the order their changes were written in.
	ID       string
	Endpoint string // the endpoint's name in the config
	// UserID orders deliveries: of the pending records of one (Endpoint,
	// UserID) only the oldest is ever handed out.
	UserID    string
	Type      string // user.created, session.revoked, ...
	Payload   []byte // the exact body delivered, fixed when written
	CreatedAt time.Time
	Attempts  int
	// NextAttemptAt: not handed out before this time.
	NextAttemptAt time.Time
	// LeaseOwner holds the record until LeaseUntil (ClaimOutbox).
	LeaseOwner string
	LeaseUntil time.Time
	LastError  string
	// FailedAt is when delivery was given up (zero: pending). A failed
	// record no longer holds back its user's later records.
	FailedAt time.Time
}

// Failed reports whether delivery was given up.
func (r OutboxRecord) Failed() bool { return !r.FailedAt.IsZero() }

// OutboxFilter narrows ListOutbox.
type OutboxFilter struct {
	Failed bool // true: only failed records; false: only pending ones
	Limit  int  // <= 0: no limit
}

// Outbox is the durable queue of webhook deliveries (both backends offer
// it). Every instance may claim from it: a lease keeps a record with one
// instance at a time.
type Outbox interface {
	// AppendOutbox writes a pending record (Attempts 0, no lease, not
	// failed, whatever r says of those). Called on a Transactor view, it
	// commits or rolls back with the view. ErrConflict, writing nothing,
	// when the (ID, Endpoint) pair exists.
	AppendOutbox(ctx context.Context, r OutboxRecord) error
	// ClaimOutbox hands out at most limit pending records, oldest first,
	// each the oldest pending record of its (Endpoint, UserID), whose
	// NextAttemptAt is at or before now and whose lease (if any) ended at
	// or before now; it leases each to owner until now+lease and returns
	// them as written. Atomic across instances: a record is never leased
	// to two owners at once, and while one owner holds a record no later
	// record of its (Endpoint, UserID) is handed out.
	ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]OutboxRecord, error)
	// FinishOutbox removes a delivered record. ErrNotFound when absent;
	// ErrStale, writing nothing, when owner no longer holds its lease at
	// now (another instance may be delivering it).
	FinishOutbox(ctx context.Context, endpoint, id, owner string, now time.Time) error
	// RetryOutbox records a failed attempt of a record owner holds:
	// Attempts+1, LastError, the lease released; when failed, FailedAt =
	// now, otherwise NextAttemptAt = next. ErrNotFound and ErrStale as
	// FinishOutbox.
	RetryOutbox(ctx context.Context, endpoint, id, owner string, now, next time.Time, lastErr string, failed bool) error
	// ListOutbox lists pending or failed records, oldest first.
	ListOutbox(ctx context.Context, f OutboxFilter) ([]OutboxRecord, error)
	// ReplayOutbox makes a record pending and due at now again (Attempts
	// 0, FailedAt and lease cleared) and returns it. ErrNotFound when
	// absent.
	ReplayOutbox(ctx context.Context, endpoint, id string, now time.Time) (OutboxRecord, error)
}

// IdentityEmailSetter changes the email an identity records (what the
// provider last said about the address), for an upstream identifier-changed
// signal. It touches no user and no index: a user's email and its
// verified-email index change only through UpdateUser/ModifyUser.
// ErrNotFound when the identity does not exist; nothing is written then.
// Both backends offer it.
type IdentityEmailSetter interface {
	SetIdentityEmail(ctx context.Context, identityID, email string, verified bool) error
}
