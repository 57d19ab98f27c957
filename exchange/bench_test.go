package exchange

import (
	"context"
	"testing"
	"time"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

// benchService is a Service on a real bbolt file with no providers: the
// token benchmarks below touch only the keyring and the refresh secret.
func benchService(b *testing.B, alg string) *Service {
	b.Helper()
	store := openBolt(b, bolt.Options{SweepInterval: -1})
	svc, err := New(context.Background(), Config{
		Issuer: "https://auth.example.com", Audience: []string{"api"}, Algorithm: alg,
		AccessTTL: 15 * time.Minute, RefreshTTL: 14 * 24 * time.Hour,
		SessionMax: 90 * 24 * time.Hour, ReuseGrace: 10 * time.Second,
	}, store, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

func benchRecords() (storage.Session, storage.User) {
	now := time.Now().UTC()
	u := storage.User{ID: newID(), Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace",
		Roles: []string{}, CreatedAt: now, UpdatedAt: now}
	s := storage.Session{ID: newID(), UserID: u.ID, Provider: "google", ClientID: "web", Generation: 7,
		RotatedAt: now, CreatedAt: now, IdleExpiresAt: now.Add(14 * 24 * time.Hour), ExpiresAt: now.Add(90 * 24 * time.Hour)}
	return s, u
}

// BenchmarkSignAccessToken is the signing step of every exchange and
// refresh, per algorithm (ES256 is the default).
func BenchmarkSignAccessToken(b *testing.B) {
	for _, alg := range []string{AlgES256, AlgEdDSA, AlgRS256} {
		b.Run(alg, func(b *testing.B) {
			svc := benchService(b, alg)
			sess, user := benchRecords()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.keys.Sign(typAccess, svc.accessClaims(sess, user)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyAccessToken is what GET /v1/me and /oauth/introspect do
// before they read the store: the full verification (a token seen for the
// first time) and a token this process has verified before.
func BenchmarkVerifyAccessToken(b *testing.B) {
	svc := benchService(b, AlgES256)
	sess, user := benchRecords()
	at, err := svc.keys.Sign(typAccess, svc.accessClaims(sess, user))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var claims AccessClaims
			if err := svc.parseJWT(at, typAccess, &claims); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := svc.verifyAccess(at); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRefreshToken derives a refresh token (every exchange and
// refresh) and checks one (every refresh).
func BenchmarkRefreshToken(b *testing.B) {
	svc := benchService(b, AlgES256)
	sess, _ := benchRecords()
	b.Run("derive", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = svc.refreshToken(sess)
		}
	})
	b.Run("check", func(b *testing.B) {
		token := svc.refreshToken(sess)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := svc.parseRefreshToken(token); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkResult is the whole token answer of a refresh once the store has
// rotated: claims, signature, refresh token.
func BenchmarkResult(b *testing.B) {
	svc := benchService(b, AlgES256)
	sess, user := benchRecords()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.result(sess, user, nil); err != nil {
			b.Fatal(err)
		}
	}
}
