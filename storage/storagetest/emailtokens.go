package storagetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/authex/authex/storage"
)

// testEmailTokens: storage.EmailTokens (both backends offer it). A token
// is created once (a taken hash is ErrConflict), read until it expires,
// spent exactly once (of many concurrent spends one wins), never read or
// spent after it expired, and swept once expired.
func testEmailTokens(t *testing.T, s storage.Store) {
	et := mustOffer[storage.EmailTokens](t, s)
	ctx, t0 := t.Context(), epoch()
	tok := storage.EmailToken{Hash: "aa01", Purpose: storage.TokenPurposeResetPassword, UserID: "u-1",
		Email: "Pat@Example.com", Binding: "fp-1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := et.CreateEmailToken(ctx, tok); err != nil {
		t.Fatalf("CreateEmailToken: %v", err)
	}
	dup := tok
	dup.UserID = "u-2"
	if err := et.CreateEmailToken(ctx, dup); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("CreateEmailToken of a taken hash: %v, want ErrConflict", err)
	}
	for _, bad := range []storage.EmailToken{{Purpose: "p", UserID: "u"}, {Hash: "h", UserID: "u"}, {Hash: "h", Purpose: "p"}} {
		if err := et.CreateEmailToken(ctx, bad); err == nil {
			t.Fatalf("CreateEmailToken(%+v) accepted an empty field", bad)
		}
	}
	want := tok
	want.CreatedAt, want.ExpiresAt = tok.CreatedAt.UTC(), tok.ExpiresAt.UTC()
	got, err := et.GetEmailToken(ctx, tok.Hash, t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("GetEmailToken: %v", err)
	}
	if d := gocmp.Diff(want, got); d != "" || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("GetEmailToken (-want +got):\n%s", d)
	}
	// Expired at now (ExpiresAt is not after now): neither read nor spent.
	for _, at := range []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour)} {
		if _, err := et.GetEmailToken(ctx, tok.Hash, at); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetEmailToken at %v: %v, want ErrNotFound", at, err)
		}
		if _, err := et.SpendEmailToken(ctx, tok.Hash, at); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("SpendEmailToken at %v: %v, want ErrNotFound", at, err)
		}
	}
	for _, h := range []string{"", "aa02"} {
		if _, err := et.GetEmailToken(ctx, h, t0); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetEmailToken(%q): %v, want ErrNotFound", h, err)
		}
	}
	// The refused expired spends wrote nothing: the token is still there.
	got, err = et.SpendEmailToken(ctx, tok.Hash, t0.Add(time.Minute))
	if err != nil || gocmp.Diff(want, got) != "" {
		t.Fatalf("SpendEmailToken = %+v, %v", got, err)
	}
	if _, err := et.SpendEmailToken(ctx, tok.Hash, t0.Add(time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second SpendEmailToken: %v, want ErrNotFound", err)
	}
	if _, err := et.GetEmailToken(ctx, tok.Hash, t0.Add(time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetEmailToken after the spend: %v, want ErrNotFound", err)
	}

	// Concurrent spends: exactly one wins.
	race := storage.EmailToken{Hash: "bb01", Purpose: storage.TokenPurposeVerifyEmail, UserID: "u-3",
		Email: "kim@example.com", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := et.CreateEmailToken(ctx, race); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := et.SpendEmailToken(ctx, race.Hash, t0)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, storage.ErrNotFound):
				t.Errorf("concurrent spend: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent spends won, want 1", wins.Load())
	}

	// The sweep deletes exactly the expired tokens.
	for i, exp := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Hour} {
		tk := storage.EmailToken{Hash: "cc0" + string(rune('0'+i)), Purpose: storage.TokenPurposeVerifyEmail, UserID: "u-4",
			CreatedAt: t0, ExpiresAt: t0.Add(exp)}
		if err := et.CreateEmailToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	n, err := et.DeleteExpiredEmailTokens(ctx, t0.Add(2*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredEmailTokens = %d, %v; want 2", n, err)
	}
	if _, err := et.GetEmailToken(ctx, "cc02", t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("an unexpired token was swept: %v", err)
	}
}
