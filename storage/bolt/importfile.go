package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/authex/authex/storage/transfer"
)

// importLockHold outlasts openTimeout: see ImportFile.
const importLockHold = 2 * openTimeout

// ImportFile imports an export (package transfer's stream, read and
// checked whole before anything is written) into the bbolt file at path,
// which must not exist or hold no record (else transfer.ErrNotEmpty). The
// records go into a new file next to it (same directory, so the rename is
// atomic), renamed over path once complete; on
// any error that file is removed and path is as it was. An existing file
// stays open (its lock held) throughout, so an instance cannot start on it
// meanwhile, and a locked one (an instance running) is refused.
func ImportFile(ctx context.Context, path string, r io.Reader, opts Options) (_ transfer.Counts, err error) {
	opts.SweepInterval = -1
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return transfer.Counts{}, err
	}
	existed := false
	if _, err := os.Stat(path); err == nil {
		existed = true
		target, err := Open(path, opts)
		if err != nil {
			return transfer.Counts{}, fmt.Errorf("open store (bolt): %w", err)
		}
		defer func() {
			if err == nil {
				// An instance that started during the import opened the
				// old file and waits (up to openTimeout)
				// for its lock; hold the lock past that, so it fails
				// ("locked") rather than serve the replaced, empty file.
				time.Sleep(importLockHold)
			}
			target.Close()
		}()
		empty, err := transfer.Empty(ctx, target)
		if err != nil {
			return transfer.Counts{}, err
		}
		if !empty {
			return transfer.Counts{}, transfer.ErrNotEmpty
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return transfer.Counts{}, err
	}
	st, err := transfer.Read(r)
	if err != nil {
		return transfer.Counts{}, err
	}
	defer st.Close()

	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".import-*")
	if err != nil {
		return transfer.Counts{}, fmt.Errorf("create the import file: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	store, err := Open(tmp, opts)
	if err != nil {
		return transfer.Counts{}, fmt.Errorf("open the import file: %w", err)
	}
	c, err := st.Import(ctx, store)
	if cerr := store.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close the import file: %w", cerr)
	}
	if err != nil {
		return transfer.Counts{}, err
	}
	if existed {
		// We hold the old file's lock: nobody serves it meanwhile.
		err = os.Rename(tmp, path)
	} else {
		// Link fails if the path appeared meanwhile (an instance started
		// on it), where a rename would silently replace a file in use.
		if err = os.Link(tmp, path); err == nil {
			os.Remove(tmp)
		}
	}
	if err != nil {
		return transfer.Counts{}, fmt.Errorf("move the import file into place: %w", err)
	}
	// The rename is durable once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return c, nil
}
