package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authex/authex/internal/measure"
)

var testBucket = []byte("t")

// openCommitter opens a real bbolt file (fsync on) with one bucket.
func openCommitter(tb testing.TB) (*bolt.DB, *committer) {
	tb.Helper()
	db, err := bolt.Open(filepath.Join(tb.TempDir(), "commit.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(testBucket)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return db, newCommitter(db)
}

// holdCommitter starts a commit that stays open until the returned release
// is called, so that what is queued meanwhile forms the next group.
func holdCommitter(t *testing.T, c *committer) (release func()) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.run(func(tx *bolt.Tx) error {
			select {
			case <-entered:
			default:
				close(entered)
			}
			<-gate
			return tx.Bucket(testBucket).Put([]byte("holder"), []byte("1"))
		})
	}()
	<-entered
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("holding commit: %v", err)
		}
	}
}

// waitQueued waits until n calls wait for the next group.
func waitQueued(t *testing.T, c *committer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		queued := len(c.queue)
		c.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", queued, n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestGroupCommitSharesOneTransaction: the writes queued while a commit is
// on the disk commit together in the next transaction, and each caller
// sees its write once run returns.
func TestGroupCommitSharesOneTransaction(t *testing.T) {
	db, c := openCommitter(t)
	release := holdCommitter(t, c)

	const n = 50
	txIDs := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.run(func(tx *bolt.Tx) error {
				txIDs[i] = tx.ID()
				return tx.Bucket(testBucket).Put(fmt.Appendf(nil, "k%03d", i), []byte("v"))
			})
			if errs[i] == nil {
				if err := db.View(func(tx *bolt.Tx) error {
					if tx.Bucket(testBucket).Get(fmt.Appendf(nil, "k%03d", i)) == nil {
						return errors.New("write not visible after run returned")
					}
					return nil
				}); err != nil {
					errs[i] = err
				}
			}
		}()
	}
	waitQueued(t, c, n)
	release()
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if txIDs[i] != txIDs[0] {
			t.Fatalf("call %d committed in tx %d, call 0 in tx %d: the queued calls did not share one commit", i, txIDs[i], txIDs[0])
		}
	}
}

// TestGroupCommitFailureKeepsOthers: a function that fails, or panics, in a
// group gets its own outcome from a run of its own, and nothing it wrote
// before failing is committed; every other function of the group is
// committed, in one transaction.
func TestGroupCommitFailureKeepsOthers(t *testing.T) {
	db, c := openCommitter(t)
	release := holdCommitter(t, c)

	const n = 20
	const failing, panicking = 7, 13
	errFailed := errors.New("this write is refused")
	txIDs := make([]int, n)
	errs := make([]error, n)
	panics := make([]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			errs[i] = c.run(func(tx *bolt.Tx) error {
				txIDs[i] = tx.ID()
				// Written before failing: must not survive.
				if err := tx.Bucket(testBucket).Put(fmt.Appendf(nil, "k%03d", i), []byte("v")); err != nil {
					return err
				}
				switch i {
				case failing:
					return errFailed
				case panicking:
					panic("boom")
				}
				return nil
			})
		}()
	}
	waitQueued(t, c, n)
	release()
	wg.Wait()

	var committedTx int
	for i := range n {
		switch i {
		case failing:
			if !errors.Is(errs[i], errFailed) {
				t.Errorf("failing call: err = %v, want its own error", errs[i])
			}
		case panicking:
			if p, ok := panics[i].(string); !ok || !strings.Contains(p, "boom") {
				t.Errorf("panicking call: recovered %v, want its panic in its own goroutine", panics[i])
			}
		default:
			if errs[i] != nil || panics[i] != nil {
				t.Errorf("call %d: err %v, panic %v", i, errs[i], panics[i])
			}
			if committedTx == 0 {
				committedTx = txIDs[i]
			}
			if txIDs[i] != committedTx {
				t.Errorf("call %d committed in tx %d, others in tx %d", i, txIDs[i], committedTx)
			}
		}
	}
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(testBucket)
		for i := range n {
			got := b.Get(fmt.Appendf(nil, "k%03d", i)) != nil
			if want := i != failing && i != panicking; got != want {
				return fmt.Errorf("key of call %d present = %v, want %v", i, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitLoneFailure: a caller that commits for itself (nobody
// else queued) and fails gets its own error, writes nothing, and leaves the
// committer working for the next caller.
func TestGroupCommitLoneFailure(t *testing.T) {
	db, c := openCommitter(t)
	errFailed := errors.New("refused")
	for range 3 {
		err := c.run(func(tx *bolt.Tx) error {
			if err := tx.Bucket(testBucket).Put([]byte("lost"), []byte("v")); err != nil {
				return err
			}
			return errFailed
		})
		if !errors.Is(err, errFailed) {
			t.Fatalf("err = %v, want its own", err)
		}
	}
	if err := c.run(func(tx *bolt.Tx) error { return tx.Bucket(testBucket).Put([]byte("kept"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(testBucket)
		if b.Get([]byte("lost")) != nil || b.Get([]byte("kept")) == nil {
			return errors.New("a failed write was kept, or a good one lost")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitClosedDB: a commit that cannot happen reaches its caller.
func TestGroupCommitClosedDB(t *testing.T) {
	db, c := openCommitter(t)
	db.Close()
	err := c.run(func(tx *bolt.Tx) error { return tx.Bucket(testBucket).Put([]byte("k"), []byte("v")) })
	if err == nil {
		t.Fatal("run on a closed file returned nil")
	}
}

// BenchmarkCommit measures one small durable write (fsync on, a real file)
// from 1 and from many goroutines, through the committer and, for
// comparison, through DB.Batch with the 3 ms window authex used before.
// writes/commit is how many writes shared each fsync; cpu-ns/op is the
// process's CPU time (user+system, from getrusage) per write.
func BenchmarkCommit(b *testing.B) {
	paths := []struct {
		name string
		run  func(db *bolt.DB, c *committer) func(func(*bolt.Tx) error) error
	}{
		{"committer", func(_ *bolt.DB, c *committer) func(func(*bolt.Tx) error) error { return c.run }},
		{"bbolt-Batch-3ms", func(db *bolt.DB, _ *committer) func(func(*bolt.Tx) error) error {
			db.MaxBatchDelay = 3 * time.Millisecond
			return db.Batch
		}},
	}
	for _, path := range paths {
		for _, goroutines := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", path.name, goroutines), func(b *testing.B) {
				db, c := openCommitter(b)
				run := path.run(db, c)
				var mu sync.Mutex
				commits := map[int]struct{}{}
				var wg sync.WaitGroup
				var next sync.Mutex
				i := 0
				cpu0 := processCPU(b)
				b.ResetTimer()
				for range goroutines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							next.Lock()
							k := i
							i++
							next.Unlock()
							if k >= b.N {
								return
							}
							key := fmt.Appendf(nil, "k%012d", k)
							err := run(func(tx *bolt.Tx) error {
								mu.Lock()
								commits[tx.ID()] = struct{}{}
								mu.Unlock()
								return tx.Bucket(testBucket).Put(key, make([]byte, 200))
							})
							if err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(b.N)/float64(len(commits)), "writes/commit")
			})
		}
	}
}

// processCPU is the CPU time this process has used so far.
func processCPU(tb testing.TB) time.Duration {
	d, err := measure.SelfCPU()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
