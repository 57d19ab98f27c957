package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/transfer"
)

// TestImportFile: an export goes into a new file and into an existing empty
// one; a store that holds data and a broken stream are refused, leaving
// the store as it was and no temporary file behind.
func TestImportFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := open(t, filepath.Join(dir, "src.db"), bolt.Options{})
	mustCreateUser(t, src, time.Now().UTC().Truncate(time.Second))
	var dump bytes.Buffer
	if _, err := transfer.Export(ctx, src, &dump); err != nil {
		t.Fatal(err)
	}

	fresh := filepath.Join(dir, "new", "authex.db")
	c, err := bolt.ImportFile(ctx, fresh, bytes.NewReader(dump.Bytes()), bolt.Options{})
	if err != nil || c.Users != 1 || c.Identities != 1 {
		t.Fatalf("into a new file: %+v, %v", c, err)
	}
	if _, err := bolt.ImportFile(ctx, fresh, bytes.NewReader(dump.Bytes()), bolt.Options{}); !errors.Is(err, transfer.ErrNotEmpty) {
		t.Fatalf("into a store with data: %v, want ErrNotEmpty", err)
	}
	if c, err := transfer.Export(ctx, open(t, fresh, bolt.Options{}), &bytes.Buffer{}); err != nil || c.Users != 1 {
		t.Fatalf("after a refused import: %+v, %v", c, err)
	}

	empty := filepath.Join(dir, "empty.db")
	s, err := bolt.Open(empty, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := bolt.ImportFile(ctx, empty, bytes.NewReader([]byte("{not json\n")), bolt.Options{}); err == nil {
		t.Fatal("a broken stream was imported")
	}
	if c, err := bolt.ImportFile(ctx, empty, bytes.NewReader(dump.Bytes()), bolt.Options{}); err != nil || c.Users != 1 {
		t.Fatalf("into an existing empty file: %+v, %v", c, err)
	}
	for _, d := range []string{dir, filepath.Dir(fresh)} {
		left, _ := filepath.Glob(filepath.Join(d, ".*.import-*"))
		if len(left) > 0 {
			t.Fatalf("temporary files left: %v", left)
		}
	}
}
