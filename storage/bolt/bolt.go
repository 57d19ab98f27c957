// Package bolt is authex's embedded storage.Store: one bbolt file, for a
// single instance. It must never do network I/O inside a write transaction
// (bbolt has one writer lock for the whole file) and must never hand out
// memory that belongs to a bbolt transaction.
//
// Every bucket is created at Open, and every index entry is written in the
// same transaction as the record it indexes. The bucket tree, all at the top
// level of the file:
//
//	meta
//	  version            schema version, uint64 big-endian (currently 3)
//	  users              number of users, uint64 big-endian (CountUsers)
//	users                user id -> user record
//	identities           identity id -> identity record
//	identity_keys        uvarint(len(issuer)) issuer subject -> identity id    (unique)
//	user_identities      uvarint(len(user id)) user id identity id -> empty
//	emails               storage.EmailKey of a verified email -> user id       (unique)
//	password_emails      storage.EmailKey of a password user's email -> user id (unique)
//	sessions             session id -> session record
//	user_sessions        uvarint(len(user id)) user id session id -> empty
//	session_sweep        time key (12 bytes) of the session's sweep time, session id -> empty
//	signing_keys         kid -> signing key record
//	secrets              name -> value
//	audit                time key (12 bytes, sorts by time) event id -> audit event record
//	credentials          SHA-256 of an accepted provider credential's key -> time key of its expiry
//	credential_sweep     time key of the expiry, SHA-256 of the key -> empty
//	usernames            storage.UsernameKey of a user's username -> user id   (unique)
//
// Records use the binary encoding described in codec.go; times are stored
// in UTC with nanosecond precision. Unverified emails are never in emails;
// password_emails holds the email of every user with a PasswordHash,
// verified or not (password sign-in looks accounts up there). It came
// without a schema version bump: files written before it hold no password
// hashes, so the empty bucket Open creates is their correct index.
// session_sweep (schema version 2, built from the sessions by a migration)
// orders sessions by sweep time, the earliest of IdleExpiresAt, ExpiresAt
// and, once revoked, RevokedAt: DeleteExpiredSessions walks it up to now
// instead of decoding every session (sweep.go). Schema version 3 keys both
// email indexes by storage.EmailKey (they were strings.ToLower, which
// merged different addresses) and writes users in userFormat2, with
// EmailVerifiedBy (emailtrust.go). usernames came without a version bump:
// files written before it hold no usernames; a user with a username (or a
// given or family name) is written in userFormat3, any other still in
// userFormat2, which older binaries read.
//
// Commits are fsynced (unless Options.NoSync, for tests only). Writes that
// are safe to run more than once (CreateUser, CreateSession, RotateSession,
// TouchIdentity, AppendAudit) go through the group committer (commit.go),
// so concurrent callers share one fsync and a lone one waits for nothing
// but its own.
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/authex/authex/storage"
)

var _ storage.Store = (*Store)(nil)

// Bucket names and the keys of the meta bucket.
var (
	bucketKeyMeta           = []byte("meta")
	bucketKeyUsers          = []byte("users")
	bucketKeyIdentities     = []byte("identities")
	bucketKeyIdentityKeys   = []byte("identity_keys")
	bucketKeyUserIdentities = []byte("user_identities")
	bucketKeyEmails         = []byte("emails")
	bucketKeyPasswordEmails = []byte("password_emails")
	bucketKeySessions       = []byte("sessions")
	bucketKeyUserSessions   = []byte("user_sessions")
	bucketKeySessionSweep   = []byte("session_sweep")
	bucketKeySigningKeys    = []byte("signing_keys")
	bucketKeySecrets        = []byte("secrets")
	bucketKeyAudit          = []byte("audit")

	bucketKeyCredentials     = []byte("credentials")      // credentials.go
	bucketKeyCredentialSweep = []byte("credential_sweep") // credentials.go
	bucketKeyUsernames       = []byte("usernames")        // users.go
	bucketKeyOutbox          = []byte("outbox")           // outbox.go
	bucketKeyEmailTokens     = []byte("email_tokens")     // emailtokens.go

	metaKeyVersion = []byte("version")
	metaKeyUsers   = []byte("users")
)

var allBuckets = [][]byte{
	bucketKeyMeta,
	bucketKeyUsers,
	bucketKeyIdentities,
	bucketKeyIdentityKeys,
	bucketKeyUserIdentities,
	bucketKeyEmails,
	bucketKeyPasswordEmails,
	bucketKeySessions,
	bucketKeyUserSessions,
	bucketKeySessionSweep,
	bucketKeySigningKeys,
	bucketKeySecrets,
	bucketKeyAudit,
}

// addedBuckets came without a schema version bump: Open creates them in
// any file, and an older file (a backup made before they existed) is
// correct without them, so Verify does not demand them. credentials and
// credential_sweep hold nothing a restore needs.
var addedBuckets = [][]byte{
	bucketKeyCredentials,
	bucketKeyCredentialSweep,
	bucketKeyUsernames,
	bucketKeyOutbox,
	bucketKeyEmailTokens,
}

// schemaVersion is the version Open leaves a file at.
const schemaVersion = 3

// migration upgrades a file to version from version-1, inside the Open
// transaction (so a failed migration leaves the file as it was). Append new
// ones in order, bump schemaVersion, and never edit one that has shipped.
type migration struct {
	version uint64
	migrate func(tx *bolt.Tx, log *slog.Logger) error
}

// migrations upgrade older files. A new file is created at schemaVersion
// directly and runs none of them.
var migrations = []migration{
	// 2: session_sweep, built from the sessions already there (sweep.go).
	{version: 2, migrate: func(tx *bolt.Tx, _ *slog.Logger) error { return migrateSessionSweep(tx) }},
	// 3: EmailVerifiedBy on every user, email indexes under
	// storage.EmailKey (emailtrust.go).
	{version: 3, migrate: migrateEmailTrust},
}

const (
	// openTimeout bounds the wait for bbolt's file lock: a second process
	// gets a clear error instead of hanging.
	openTimeout = time.Second
	// sweepChunk is how many sessions one sweep transaction deletes, so a
	// large sweep never holds the writer lock for long.
	sweepChunk = 1000
)

// Options tune Open. The zero value is what production wants.
type Options struct {
	// NoSync skips fsync on commit. Tests only: a crash loses acknowledged writes.
	NoSync bool
	// SweepInterval is how often a background goroutine deletes expired and
	// revoked sessions: 0 means every 10 minutes (storage.DefaultSweepInterval),
	// a negative value turns it off.
	SweepInterval time.Duration
	// Logger receives the sweeper's reports; nil means slog.Default().
	Logger *slog.Logger
}

// Store is a storage.Store backed by one bbolt file.
type Store struct {
	db      *bolt.DB
	commits *committer
	log     *slog.Logger
	// tx is set in a view (InTx): every method runs in it instead of a
	// transaction of its own.
	tx *bolt.Tx

	sweeper   *storage.Sweeper
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the bbolt file at path, creates every
// bucket, brings the schema to the current version and starts the session
// sweeper. Another process holding the file makes Open fail after about a
// second with an error that says so (and wraps storage.ErrUnavailable).
func Open(path string, opts Options) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: openTimeout,
		NoSync:  opts.NoSync,
		// The freelist is written at every commit (a page or two) rather
		// than rebuilt at open: rebuilding walks every page of the file,
		// which at 300,000 users took 343 ms and left the whole 660 MB file
		// resident; reading it back takes 16 ms and 10 MB. The hashmap
		// freelist stays fast as the file grows.
		FreelistType: bolt.FreelistMapType,
		// See mmap.go: a long backup must not block writers.
		InitialMmapSize: initialMmapSize,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: database is locked by another process (gave up after %s): %w",
			path, openTimeout, storage.ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}

	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("store", "bolt", "path", path)

	if err := db.Update(func(tx *bolt.Tx) error { return initSchema(tx, log) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}

	s := &Store{db: db, commits: newCommitter(db), log: log}
	s.sweeper = storage.StartSweeper(s, opts.SweepInterval, log)
	return s, nil
}

// initSchema creates what is missing and runs the migrations a file needs.
func initSchema(tx *bolt.Tx, log *slog.Logger) error {
	meta, err := tx.CreateBucketIfNotExists(bucketKeyMeta)
	if err != nil {
		return err
	}
	raw := meta.Get(metaKeyVersion)
	fresh := raw == nil
	version, ok := readU64(raw)
	switch {
	case fresh:
		version = schemaVersion
	case !ok:
		return fmt.Errorf("%w: schema version %x", errCorrupt, raw)
	case version > schemaVersion:
		return fmt.Errorf("schema version %d is newer than this authex understands (%d); run a newer authex", version, schemaVersion)
	}
	for _, name := range append(allBuckets[:len(allBuckets):len(allBuckets)], addedBuckets...) {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	for _, m := range migrations {
		if m.version <= version {
			continue
		}
		log.Info("migrating schema", "from", version, "to", m.version)
		if err := m.migrate(tx, log); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", m.version, err)
		}
		version = m.version
	}
	if version != schemaVersion {
		return fmt.Errorf("schema version %d: no migration to %d", version, schemaVersion)
	}
	if fresh {
		if err := meta.Put(metaKeyUsers, u64(0)); err != nil {
			return err
		}
	}
	return meta.Put(metaKeyVersion, u64(version))
}

// Close stops the sweeper, waits for it, and closes the file. Calling it
// again returns the first result.
func (s *Store) Close() error {
	if s.tx != nil {
		return nil // a view closes nothing: the file belongs to the Store it came from
	}
	s.closeOnce.Do(func() {
		s.sweeper.Stop()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Ping reports whether the file is open and readable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketKeyMeta) == nil {
			return fmt.Errorf("%w: meta bucket missing", errCorrupt)
		}
		return nil
	})
}

// Backup writes a consistent copy of the whole file to w while the store
// keeps serving (a read transaction; writers are not blocked) and returns
// the number of bytes written. The copy opens with Open like the original.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	if err != nil {
		return n, fmt.Errorf("bolt: backup: %w", err)
	}
	return n, nil
}

// ctxWriter stops a long backup when its context ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// view, update and batch run fn in a transaction and translate bbolt's
// "closed" into storage.ErrUnavailable. In a view (InTx) they run fn in
// the view's transaction.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	if s.tx != nil {
		return fn(s.tx)
	}
	return translate(s.db.View(fn))
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	if s.tx != nil {
		return fn(s.tx)
	}
	return translate(s.db.Update(fn))
}

// batch runs fn through the group committer (commit.go), with DB.Batch's
// contract. fn may run more than once (and in the same transaction as other
// callers' functions), so it must reset whatever it captures on every call
// and report business outcomes (ErrStale, a conflict, ...) through a
// captured variable, returning nil: an error from fn rolls back the whole
// group and re-runs fn alone.
func (s *Store) batch(fn func(*bolt.Tx) error) error {
	if s.tx != nil {
		return fn(s.tx)
	}
	return translate(s.commits.run(fn))
}

func translate(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("bolt: %w: database is closed", storage.ErrUnavailable)
	}
	return err
}

// verifiedEmailKey is the emails key a user should have, or nil for none.
func verifiedEmailKey(u storage.User) []byte {
	if !u.EmailVerified || u.Email == "" {
		return nil
	}
	return emailKey(u.Email)
}

// passwordEmailKey is the password_emails key a user should have, or nil.
func passwordEmailKey(u storage.User) []byte {
	if u.PasswordHash == "" || u.Email == "" {
		return nil
	}
	return emailKey(u.Email)
}

// usernameKey is the usernames key a user should have, or nil.
func usernameKey(u storage.User) []byte {
	if u.Username == "" {
		return nil
	}
	return []byte(storage.UsernameKey(u.Username))
}

// childIDs returns the child IDs stored under userID in an owner index
// (user_identities or user_sessions), copied out of the transaction.
func childIDs(b *bolt.Bucket, userID string) []string {
	prefix := ownerPrefix(userID)
	var ids []string
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

func errNotFound(what, id string) error {
	return fmt.Errorf("bolt: %s %q: %w", what, id, storage.ErrNotFound)
}

func errEmpty(what string) error { return fmt.Errorf("bolt: %w", storage.EmptyArg(what)) }
