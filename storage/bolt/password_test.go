package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/storagetest"
)

// TestPasswordEmailConformance runs the password-email part of the suite
// against a real file with fsync on.
func TestPasswordEmailConformance(t *testing.T) {
	storagetest.RunPasswordEmail(t, func(t *testing.T) storage.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "authex.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
