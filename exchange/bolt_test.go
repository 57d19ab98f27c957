package exchange

import (
	"path/filepath"
	"testing"

	"github.com/authex/authex/storage/bolt"
)

// openBolt opens a bbolt store in a temporary directory, closed when the
// test ends.
func openBolt(tb testing.TB, opts bolt.Options) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(filepath.Join(tb.TempDir(), "authex.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
