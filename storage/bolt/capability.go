package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/storage"
)

var (
	_ storage.Backuper       = (*Store)(nil)
	_ storage.SessionCounter = (*Store)(nil)
)

// CountActiveSessions counts the live sessions in one read transaction
// (writers are not blocked) from the session_sweep index: keys only, no
// record decoded; the metrics collector caches the answer.
func (s *Store) CountActiveSessions(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// Walk the sweep index past now, keys only: a session is live exactly
	// until its sweep time (the service dates every revocation at the
	// moment it happens), so no record needs decoding.
	n := 0
	after := timeKey(now)
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketKeySessionSweep).Cursor()
		for k, _ := c.Seek(after); k != nil; k, _ = c.Next() {
			if bytes.Compare(k[:timeKeyLen], after) > 0 {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: count active sessions: %w", err)
	}
	return n, nil
}

// Verify opens the bbolt file at path read-only and checks it whole: every
// page reachable and consistent (bbolt's Tx.Check), authex's buckets
// present and its schema version one this build reads. For a backup
// before it replaces anything.
func Verify(path string) error {
	// bbolt maps the file and trusts its header: a truncated copy would
	// fault (SIGBUS) on the first page past its end, so the size is
	// checked against the header before bbolt opens it.
	if err := checkSize(path); err != nil {
		return fmt.Errorf("bolt: verify %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: openTimeout})
	if err != nil {
		return fmt.Errorf("bolt: verify %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drained whole: Check's goroutine sends every error
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return first
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s is missing", name)
			}
		}
		v, ok := readU64(tx.Bucket(bucketKeyMeta).Get(metaKeyVersion))
		if !ok || v == 0 || v > schemaVersion {
			return fmt.Errorf("schema version %d is not one this authex reads (1..%d)", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: verify %s: %w", path, err)
	}
	return nil
}

// bbolt's file header: two meta pages, each a 16-byte page header then
// magic, version, page size, flags, root bucket (16 bytes), freelist,
// high-water page id, txid and an FNV-64a checksum of the fields before it.
const (
	boltMagic      = 0xED0CDAED
	metaOffMagic   = 16
	metaOffPage    = 24
	metaOffPgid    = 56
	metaOffTxid    = 64
	metaOffSum     = 72
	metaHeaderSize = 80
)

// checkSize reads the valid meta page with the highest txid and demands a
// file at least as long as the pages it says exist.
func checkSize(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	first := make([]byte, metaHeaderSize)
	if _, err := io.ReadFull(f, first); err != nil {
		return fmt.Errorf("%d bytes is too short for a bbolt file", st.Size())
	}
	if binary.NativeEndian.Uint32(first[metaOffMagic:]) != boltMagic {
		return errors.New("not a bbolt file")
	}
	pageSize := int64(binary.NativeEndian.Uint32(first[metaOffPage:]))
	if pageSize < 512 || pageSize > 1<<20 {
		return fmt.Errorf("implausible page size %d", pageSize)
	}
	var best, pages uint64
	valid := false
	for i := int64(0); i < 2; i++ {
		m := make([]byte, metaHeaderSize)
		if _, err := f.ReadAt(m, i*pageSize); err != nil {
			continue
		}
		h := fnv.New64a()
		h.Write(m[metaOffMagic:metaOffSum])
		if binary.NativeEndian.Uint32(m[metaOffMagic:]) != boltMagic || h.Sum64() != binary.NativeEndian.Uint64(m[metaOffSum:]) {
			continue
		}
		if txid := binary.NativeEndian.Uint64(m[metaOffTxid:]); !valid || txid > best {
			best, pages, valid = txid, binary.NativeEndian.Uint64(m[metaOffPgid:]), true
		}
	}
	if !valid {
		return errors.New("no valid meta page")
	}
	if need := int64(pages) * pageSize; st.Size() < need {
		return fmt.Errorf("truncated: the file is %d bytes, its header describes %d", st.Size(), need)
	}
	return nil
}
