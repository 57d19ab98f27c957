package bolt

import (
	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

// CheckSweepIndex compares session_sweep with the sessions bucket.
func CheckSweepIndex(s *Store) error {
	return s.view(func(tx *bolt.Tx) error { return checkSweepIndex(tx) })
}

// SchemaVersion is the version Open leaves a file at.
const SchemaVersion = schemaVersion

// EncodeUserFormat1 encodes a user as schema versions 1 and 2 did
// (without EmailVerifiedBy), to craft old files.
func EncodeUserFormat1(u storage.User) []byte {
	b := encodeUser(u)
	e := newEncoder(len(b))
	e.str(u.ID)
	e.str(u.Email)
	e.bool(u.EmailVerified)
	e.str(u.Name)
	e.str(u.Picture)
	e.strs(u.Roles)
	e.bool(u.Disabled)
	e.str(u.PasswordHash)
	e.time(u.CreatedAt)
	e.time(u.UpdatedAt)
	return e.buf
}
