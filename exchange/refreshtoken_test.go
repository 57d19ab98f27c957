package exchange

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/exchange/keyring"
	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

func fuzzService(tb testing.TB) *Service {
	tb.Helper()
	store, err := bolt.Open(tb.TempDir()+"/authex.db", bolt.Options{SweepInterval: -1, NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	sealer, err := envelope.New(make([]byte, envelope.KEKSize))
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := New(context.Background(), Config{
		Issuer: "https://auth.example.com", Audience: []string{"api"}, Algorithm: AlgES256,
		AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour, SessionMax: 24 * time.Hour, ReuseGrace: 10 * time.Second,
	}, store, nil, Options{Sealer: sealer})
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

// FuzzParseRefreshToken: the refresh-token parser never panics, accepts
// only tokens whose MAC is right, and only in the canonical form (the
// generation in decimal without a sign or leading zero).
func FuzzParseRefreshToken(f *testing.F) {
	svc := fuzzService(f)
	sess := storage.Session{ID: "0190a3f2-7c1e-7b7e-9b1a-2f4c5d6e7f80", Generation: 7, RotatedAt: time.Unix(1700000000, 0)}
	good := svc.refreshToken(sess)
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(parts[0] + "." + parts[1] + "." + parts[3]) // legacy three-part form
	f.Add(parts[0] + ".07." + parts[2] + "." + parts[3])
	f.Add(parts[0] + ".+7." + parts[2] + "." + parts[3])
	f.Add(parts[0] + ".7.unknownid." + parts[3])
	f.Add("..")
	f.Add("a.18446744073709551616.0.x")
	f.Add(strings.Repeat("a.", 200))
	f.Fuzz(func(t *testing.T, token string) {
		sid, gen, err := svc.parseRefreshToken(token)
		if err != nil {
			return
		}
		p := strings.Split(token, ".")
		if p[0] != sid || p[1] != strconv.FormatUint(gen, 10) {
			t.Fatalf("%q parsed as (%q, %d): not the canonical form", token, sid, gen)
		}
		if sid != sess.ID || gen != sess.Generation {
			t.Fatalf("%q parsed as (%q, %d): a MAC that was never issued verified", token, sid, gen)
		}
	})
}

func TestParseRefreshTokenForms(t *testing.T) {
	svc := fuzzService(t)
	sess := storage.Session{ID: "s1", Generation: 12, RotatedAt: time.Now()}
	good := svc.refreshToken(sess)
	p := strings.Split(good, ".")
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{good, true},
		{p[0] + "." + p[1] + "." + p[3], true}, // legacy: secret 0
		{p[0] + ".012." + p[2] + "." + p[3], false},
		{p[0] + ".+12." + p[2] + "." + p[3], false},
		{p[0] + ".12.zz." + p[3], false},
		{p[0] + ".12." + p[2] + "." + p[3] + "x", false},
		{"." + p[1] + "." + p[2] + "." + p[3], false},
		{good + ".x", false},
	} {
		if _, _, err := svc.parseRefreshToken(tc.token); (err == nil) != tc.ok {
			t.Errorf("parseRefreshToken(%q) err = %v, want ok=%v", tc.token, err, tc.ok)
		}
	}
}

// TestMACSecretsPrunedAfterSessionMax: maintenance deletes a MAC secret
// once its successor has signed for longer than SessionMax (no live
// session can hold a token it made), and never the one that signs.
func TestMACSecretsPrunedAfterSessionMax(t *testing.T) {
	svc, store, clk := cacheService(t)
	ctx := context.Background()
	old := storage.Session{ID: "s-old", Generation: 3, RotatedAt: clk.now()}
	oldToken := svc.refreshToken(old)
	if _, err := svc.Admin().RotateRefreshSecret(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	clk.add(MACActivationDelay)
	if _, _, err := svc.parseRefreshToken(oldToken); err != nil {
		t.Fatalf("a token of the first secret after the rotation: %v", err)
	}
	if err := svc.maintainKeys(ctx); err != nil {
		t.Fatal(err)
	}
	secrets, _ := store.ListSecrets(ctx)
	if n := countMAC(secrets); n != 2 {
		t.Fatalf("%d MAC secrets before session_max passed, want 2", n)
	}
	clk.add(svc.cfg.SessionMax)
	if err := svc.maintainKeys(ctx); err != nil {
		t.Fatal(err)
	}
	secrets, _ = store.ListSecrets(ctx)
	if n := countMAC(secrets); n != 1 {
		t.Fatalf("%d MAC secrets after session_max, want 1", n)
	}
	if _, _, err := svc.parseRefreshToken(oldToken); err == nil {
		t.Fatal("a token of the pruned secret still parses")
	}
	fresh := svc.refreshToken(storage.Session{ID: "s-new", Generation: 1, RotatedAt: clk.now()})
	if _, _, err := svc.parseRefreshToken(fresh); err != nil {
		t.Fatalf("a token of the remaining secret: %v", err)
	}
}

func countMAC(secrets []storage.Secret) int {
	n := 0
	for _, s := range secrets {
		if keyring.IsMACSecretName(s.Name) {
			n++
		}
	}
	return n
}

// TestMACWith pins the MAC of a token to HMAC-SHA256 of purpose, 0, id, 0,
// decimal generation, under the secret, whichever pooled HMAC state makes
// it (concurrently, under -race) and whatever secret made the previous one.
func TestMACWith(t *testing.T) {
	secrets := []*keyring.MACSecret{{ID: "a", Key: []byte("key-a-0123456789abcdef0123456789")}, {ID: "b", Key: []byte("key-b")}}
	want := func(key []byte, msg string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				sec := secrets[(w+i)%len(secrets)]
				id := fmt.Sprintf("session-%d", i)
				if got, exp := macWith(sec, "refresh", id, uint64(i)), want(sec.Key, "refresh\x00"+id+"\x00"+strconv.Itoa(i)); got != exp {
					t.Errorf("macWith(%s, %s, %d) = %s, want %s", sec.ID, id, i, got, exp)
					return
				}
			}
		}()
	}
	wg.Wait()
}
