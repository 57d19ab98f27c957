package envelope_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/authex/authex/envelope"
)

func newKey(tb testing.TB) []byte {
	tb.Helper()
	b := make([]byte, envelope.KEKSize)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	old, cur := newKey(t), newKey(t)
	s, err := envelope.New(cur, old)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("private key bytes")
	rec, err := s.Seal("signing-key:kid1", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec, plain) || !envelope.IsSealed(rec) || !s.Current(rec) {
		t.Fatalf("sealed record %x", rec)
	}
	got, err := s.Open("signing-key:kid1", rec)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := s.Seal("signing-key:kid1", plain)
	if bytes.Equal(again, rec) {
		t.Fatal("two seals of one plaintext are equal: the data key is not random")
	}

	t.Run("another identity", func(t *testing.T) {
		if _, err := s.Open("signing-key:kid2", rec); !errors.Is(err, envelope.ErrAuth) {
			t.Fatalf("moved record opened: %v", err)
		}
	})
	t.Run("altered", func(t *testing.T) {
		for i := len(envelope.Magic); i < len(rec); i += 7 {
			bad := bytes.Clone(rec)
			bad[i] ^= 1
			if _, err := s.Open("signing-key:kid1", bad); err == nil {
				t.Fatalf("record altered at %d opened", i)
			}
		}
	})
	t.Run("wrong kek", func(t *testing.T) {
		other, _ := envelope.New(newKey(t))
		if _, err := other.Open("signing-key:kid1", rec); !errors.Is(err, envelope.ErrUnknownKEK) {
			t.Fatalf("err = %v, want ErrUnknownKEK", err)
		}
	})
	t.Run("previous kek", func(t *testing.T) {
		prev, _ := envelope.New(old)
		rec, _ := prev.Seal("secret:x", plain)
		if s.Current(rec) {
			t.Fatal("a record of the previous KEK is current")
		}
		if got, err := s.Open("secret:x", rec); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Open with previous KEK = %q, %v", got, err)
		}
	})
	t.Run("legacy plaintext", func(t *testing.T) {
		for _, legacy := range [][]byte{bytes.Repeat([]byte{0x61}, 32), {0x30, 0x81, 0x87}, []byte("axs1short")} {
			if _, err := s.Open("secret:x", legacy); !errors.Is(err, envelope.ErrNotSealed) {
				t.Fatalf("Open(%x) = %v, want ErrNotSealed", legacy, err)
			}
		}
	})
}

func TestParseKEK(t *testing.T) {
	k, err := envelope.NewKEK()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := envelope.ParseKEK(k); err != nil || len(b) != 32 {
		t.Fatalf("ParseKEK(NewKEK()) = %d bytes, %v", len(b), err)
	}
	for _, bad := range []string{"", "c2hvcnQ=", "not base64 at all!!", k + k} {
		if _, err := envelope.ParseKEK(bad); err == nil {
			t.Errorf("ParseKEK(%q) accepted", bad)
		}
	}
}

// FuzzOpen feeds arbitrary bytes to the sealed-record decoder: it must
// never panic, and only a record this sealer made opens.
func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, envelope.KEKSize)
	s, err := envelope.New(key)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := s.Seal("secret:refresh-mac", []byte("0123456789abcdef0123456789abcdef"))
	f.Add(good, "secret:refresh-mac")
	f.Add([]byte("axs1"), "x")
	f.Add(bytes.Repeat([]byte{0}, envelope.Overhead), "")
	f.Add(append([]byte("axs1"), make([]byte, envelope.Overhead)...), "secret:refresh-mac")
	f.Fuzz(func(t *testing.T, rec []byte, aad string) {
		out, err := s.Open(aad, rec)
		// Only records sealed with this KEK (in any fuzz worker) open, and
		// only for the identity they were sealed for.
		if err == nil && (!bytes.Equal(out, []byte("0123456789abcdef0123456789abcdef")) || aad != "secret:refresh-mac") {
			t.Fatalf("a record this sealer did not make opened: %x -> %x", rec, out)
		}
		_ = envelope.IsSealed(rec)
		_ = s.Current(rec)
	})
}
