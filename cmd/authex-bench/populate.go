package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
)

// populated is what pre-populating a store measured.
type populated struct {
	users, sessions           int
	usersBytes, sessionsBytes int64 // file size after the users, then after the sessions
	took                      time.Duration
}

// populate writes n users shaped as an exchange would create them (an
// identity at the bench issuer, a verified email) and one session each,
// through storage/bolt's own API: fsync off and many concurrent writers, so
// that the group committer packs hundreds of records into each
// transaction. The server later opens the file as it would any other.
func populate(path, issuerURL string, n int) (populated, error) {
	start := time.Now()
	store, err := bolt.Open(path, bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		return populated{}, err
	}
	userIDs, err := createUsers(store, issuerURL, n)
	if err != nil {
		store.Close()
		return populated{}, err
	}
	p := populated{users: n}
	if err := store.Close(); err != nil { // Close, so the size is what is on disk
		return p, err
	}
	if p.usersBytes, err = fileSize(path); err != nil {
		return p, err
	}
	if store, err = bolt.Open(path, bolt.Options{NoSync: true, SweepInterval: -1}); err != nil {
		return p, err
	}
	err = createSessions(store, userIDs)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return p, err
	}
	p.sessions = n
	if p.sessionsBytes, err = fileSize(path); err != nil {
		return p, err
	}
	// The records were written without fsync; flush them now, or the
	// server's first commit (its schema check at open) pays for writing
	// the whole file back and the start-up time measures the disk.
	if err := syncFile(path); err != nil {
		return p, err
	}
	p.took = time.Since(start)
	return p, nil
}

// createUsers writes n users shaped as an exchange would create them (an
// identity at the bench issuer, a verified email) and returns their ids.
func createUsers(store storage.Store, issuerURL string, n int) ([]string, error) {
	ctx := context.Background()
	userIDs := make([]string, n)
	now := time.Now().UTC()
	err := parallel(n, func(i int) error {
		sub := subject(i)
		u := storage.User{ID: uuid.Must(uuid.NewV7()).String(), Email: email(sub), EmailVerified: true,
			Name: "Bench " + sub, Roles: []string{}, CreatedAt: now, UpdatedAt: now}
		id := storage.Identity{ID: uuid.Must(uuid.NewV7()).String(), UserID: u.ID, Provider: "corp",
			Issuer: issuerURL, Subject: sub, Email: u.Email, EmailVerified: true, CreatedAt: now, LastLoginAt: now}
		userIDs[i] = u.ID
		return store.CreateUser(ctx, u, id)
	})
	if err != nil {
		return nil, fmt.Errorf("populate users: %w", err)
	}
	return userIDs, nil
}

// createSessions gives every user one live session from a browser.
func createSessions(store storage.Store, userIDs []string) error {
	ctx := context.Background()
	now := time.Now().UTC()
	err := parallel(len(userIDs), func(i int) error {
		return store.CreateSession(ctx, storage.Session{
			ID: uuid.Must(uuid.NewV7()).String(), UserID: userIDs[i], Provider: "corp", Generation: 1,
			RotatedAt: now, CreatedAt: now, IdleExpiresAt: now.Add(14 * 24 * time.Hour), ExpiresAt: now.Add(90 * 24 * time.Hour),
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
			IP:        "127.0.0.1",
		})
	})
	if err != nil {
		return fmt.Errorf("populate sessions: %w", err)
	}
	return nil
}

// parallel runs fn(0..n-1) on 512 goroutines and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range 512 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
