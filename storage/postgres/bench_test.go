package postgres_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
)

// The hot methods of the PostgreSQL store, on a real server (they skip
// without AUTHEX_TEST_POSTGRES_DSN). Each pairs the one-trip capability
// with the Store methods it replaces, so the saving shows in one run.
// Serial figures are latency per call on the loopback; the Parallel ones
// run 4 goroutines per CPU (GetIdentityUserParallel 32) on a pool of 16
// connections. The measured
// ones report the CPU time per call of the server's backends (db-µs/op)
// and of the test process (go-µs/op): the server runs on this host, so
// what a statement costs it shows, not only the time it takes.

// openBench is a store on a schema of its own with n users, each with one
// identity ("bench", subject i) and one session, and the meter of its
// connections' CPU.
func openBench(b *testing.B, n int) (*postgres.Store, []storage.User, []storage.Session, *pgtest.CPUMeter) {
	b.Helper()
	dsn, schema := pgtest.Schema(b)
	meter := pgtest.NewCPUMeter(b, dsn)
	s, err := postgres.Open(b.Context(), meter.DSN, postgres.Options{Schema: schema, SweepInterval: -1, Logger: quiet, MaxConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	now := time.Now().UTC()
	users := make([]storage.User, n)
	sessions := make([]storage.Session, n)
	for i := range n {
		u := storage.User{ID: uuid.NewString(), Email: fmt.Sprintf("u%d@example.com", i), EmailVerified: true, Name: "User", Roles: []string{},
			CreatedAt: now, UpdatedAt: now}
		id := storage.Identity{ID: uuid.NewString(), UserID: u.ID, Provider: "bench", Issuer: "https://issuer.example.com",
			Subject: fmt.Sprint(i), CreatedAt: now, LastLoginAt: now}
		if err := s.CreateUser(b.Context(), u, id); err != nil {
			b.Fatal(err)
		}
		sess := benchSession(u, now)
		if err := s.CreateSession(b.Context(), sess); err != nil {
			b.Fatal(err)
		}
		users[i], sessions[i] = u, sess
	}
	return s, users, sessions, meter
}

// runMeasured runs a sub-benchmark and reports the CPU its calls cost.
func runMeasured(b *testing.B, meter *pgtest.CPUMeter, name string, fn func(b *testing.B)) {
	b.Run(name, func(b *testing.B) {
		meter.Start(b)
		fn(b)
		meter.Report(b)
	})
}

func benchSession(u storage.User, now time.Time) storage.Session {
	return storage.Session{ID: uuid.NewString(), UserID: u.ID, Provider: "bench", ClientID: "web", Generation: 1,
		RotatedAt: now, CreatedAt: now, IdleExpiresAt: now.Add(14 * 24 * time.Hour), ExpiresAt: now.Add(90 * 24 * time.Hour)}
}

const benchUsers = 100

// BenchmarkSignInWrite is the write of a returning user's sign-in: one
// WriteSignIn, against the separate calls it replaces (credential record,
// session, live-session list, identity list, identity re-read).
func BenchmarkSignInWrite(b *testing.B) {
	s, users, _, meter := openBench(b, benchUsers)
	ctx := b.Context()
	runMeasured(b, meter, "WriteSignIn", func(b *testing.B) {
		i := 0
		for b.Loop() {
			u := users[i%len(users)]
			now := time.Now().UTC()
			_, err := s.WriteSignIn(ctx, storage.SignIn{Session: benchSession(u, now), Issuer: "https://issuer.example.com",
				Subject: fmt.Sprint(i % len(users)), CredentialKey: uuid.NewString(), CredentialExpiresAt: now.Add(time.Hour), Now: now, CountLive: true})
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	runMeasured(b, meter, "Separate", func(b *testing.B) {
		i := 0
		for b.Loop() {
			u := users[i%len(users)]
			now := time.Now().UTC()
			if err := s.RecordCredential(ctx, uuid.NewString(), now.Add(time.Hour), now); err != nil {
				b.Fatal(err)
			}
			if err := s.CreateSession(ctx, benchSession(u, now)); err != nil {
				b.Fatal(err)
			}
			if _, err := s.ListSessions(ctx, u.ID); err != nil {
				b.Fatal(err)
			}
			if _, err := s.ListIdentities(ctx, u.ID); err != nil {
				b.Fatal(err)
			}
			if _, err := s.GetIdentity(ctx, "https://issuer.example.com", fmt.Sprint(i%len(users))); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	runMeasured(b, meter, "WriteSignInParallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			i := int(time.Now().UnixNano())
			for pb.Next() {
				k := (i%len(users) + len(users)) % len(users)
				now := time.Now().UTC()
				_, err := s.WriteSignIn(ctx, storage.SignIn{Session: benchSession(users[k], now), Issuer: "https://issuer.example.com",
					Subject: fmt.Sprint(k), CredentialKey: uuid.NewString(), CredentialExpiresAt: now.Add(time.Hour), Now: now, CountLive: true})
				if err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// BenchmarkRefreshWrite is the refresh's store work: the joined rotation
// against the read of session and user then RotateSession.
func BenchmarkRefreshWrite(b *testing.B) {
	// A session or more for each goroutine of the parallel run.
	const rotatePerCPU = 4
	s, _, sessions, meter := openBench(b, max(benchUsers, rotatePerCPU*runtime.GOMAXPROCS(0)))
	ctx := b.Context()
	gens := make([]uint64, len(sessions))
	for i := range gens {
		gens[i] = 1
	}
	runMeasured(b, meter, "RotateSessionOfEnabledUser", func(b *testing.B) {
		i := 0
		for b.Loop() {
			k := i % len(sessions)
			now := time.Now().UTC()
			if _, _, err := s.RotateSessionOfEnabledUser(ctx, sessions[k].ID, "web", gens[k], now, now.Add(14*24*time.Hour)); err != nil {
				b.Fatal(err)
			}
			gens[k]++
			i++
		}
	})
	runMeasured(b, meter, "GetSessionUserThenRotate", func(b *testing.B) {
		i := 0
		for b.Loop() {
			k := i % len(sessions)
			now := time.Now().UTC()
			if _, _, err := s.GetSessionUser(ctx, sessions[k].ID); err != nil {
				b.Fatal(err)
			}
			if _, err := s.RotateSession(ctx, sessions[k].ID, gens[k], now, now.Add(14*24*time.Hour)); err != nil {
				b.Fatal(err)
			}
			gens[k]++
			i++
		}
	})
	// Concurrent rotations share the commits' flushes, so what each
	// statement costs the server weighs more than alone. Each goroutine
	// rotates its own share of the sessions.
	var workers atomic.Int32
	runMeasured(b, meter, "RotateSessionOfEnabledUserParallel", func(b *testing.B) {
		b.SetParallelism(rotatePerCPU)
		workers.Store(0)
		b.RunParallel(func(pb *testing.PB) {
			w := int(workers.Add(1)) - 1
			var mine []int
			for k := w; k < len(sessions); k += rotatePerCPU * runtime.GOMAXPROCS(0) {
				mine = append(mine, k)
			}
			for i := 0; pb.Next(); i++ {
				k := mine[i%len(mine)]
				now := time.Now().UTC()
				if _, _, err := s.RotateSessionOfEnabledUser(ctx, sessions[k].ID, "web", gens[k], now, now.Add(14*24*time.Hour)); err != nil {
					b.Error(err)
					return
				}
				gens[k]++
			}
		})
	})
}

// BenchmarkGetUserIdentity is the read of a sign-in and of every
// authenticated request: one join against two lookups.
func BenchmarkGetUserIdentity(b *testing.B) {
	s, users, sessions, meter := openBench(b, benchUsers)
	ctx := b.Context()
	runMeasured(b, meter, "GetIdentityUser", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, _, err := s.GetIdentityUser(ctx, "https://issuer.example.com", fmt.Sprint(i%len(users))); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	// Concurrent calls share statements (the store's groups): 32
	// goroutines per CPU (64 on the 2-core box, as many as make bench's
	// connections).
	runMeasured(b, meter, "GetIdentityUserParallel", func(b *testing.B) {
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			i := int(time.Now().UnixNano())
			for pb.Next() {
				k := (i%len(users) + len(users)) % len(users)
				if _, _, err := s.GetIdentityUser(ctx, "https://issuer.example.com", fmt.Sprint(k)); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("GetIdentityThenGetUser", func(b *testing.B) {
		i := 0
		for b.Loop() {
			id, err := s.GetIdentity(ctx, "https://issuer.example.com", fmt.Sprint(i%len(users)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.GetUser(ctx, id.UserID); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("GetSessionUser", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, _, err := s.GetSessionUser(ctx, sessions[i%len(sessions)].ID); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("GetUser", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.GetUser(ctx, users[i%len(users)].ID); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkRevokeSession is a logout's write: the one-statement
// revocation that reports what it did, against read-then-revoke.
func BenchmarkRevokeSession(b *testing.B) {
	s, users, _, _ := openBench(b, benchUsers)
	ctx := b.Context()
	fresh := func(i int) storage.Session {
		sess := benchSession(users[i%len(users)], time.Now().UTC())
		if err := s.CreateSession(ctx, sess); err != nil {
			b.Fatal(err)
		}
		return sess
	}
	b.Run("RevokeSessionOnce", func(b *testing.B) {
		for i := range b.N {
			b.StopTimer()
			sess := fresh(i)
			b.StartTimer()
			if _, _, err := s.RevokeSessionOnce(ctx, sess.ID, time.Now(), "logout"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetSessionThenRevoke", func(b *testing.B) {
		for i := range b.N {
			b.StopTimer()
			sess := fresh(i)
			b.StartTimer()
			if _, err := s.GetSession(ctx, sess.ID); err != nil {
				b.Fatal(err)
			}
			if err := s.RevokeSession(ctx, sess.ID, time.Now(), "logout"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
