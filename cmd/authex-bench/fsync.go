package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/authex/authex/internal/measure"
)

// diskTimes is what one durable write costs on the disk that holds the
// bbolt file: the floor under a write request's latency at one connection.
type diskTimes struct {
	fsync      time.Duration // median of a 4 KiB write + fdatasync, rewriting one page of a file
	fsyncP90   time.Duration
	fsyncCPU   time.Duration // CPU time (user+system) of the thread per write + fdatasync: on a VM the flush is mostly CPU
	boltCommit time.Duration // median of a one-key bbolt Update with fsync (its data pages, then its meta page: two fdatasyncs)
}

// String is the disk's line in the report.
func (t diskTimes) String() string {
	return fmt.Sprintf("4 KiB write + fdatasync %.2f ms (p90 %.2f ms), of it %.0f µs of CPU; one-key bbolt commit (two fdatasyncs) %.2f ms",
		ms(t.fsync), ms(t.fsyncP90), float64(t.fsyncCPU.Microseconds()), ms(t.boltCommit))
}

// measureDisk times write+fsync and small bbolt commits in dir for about
// d each.
func measureDisk(dir string, d time.Duration) (diskTimes, error) {
	var t diskTimes
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return t, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	fs, cpu, err := fsyncLoop(f, d)
	if err != nil {
		return t, err
	}
	t.fsyncCPU = cpu
	slices.Sort(fs)
	t.fsync, t.fsyncP90 = fs[len(fs)/2], fs[len(fs)*9/10]

	path := filepath.Join(dir, "commit.db")
	defer os.Remove(path)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return t, err
	}
	defer db.Close()
	bucket := []byte("b")
	var cs []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end) || len(cs) < 20; {
		t0 := time.Now()
		err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return b.Put(fmt.Appendf(nil, "k%08d", len(cs)), page[:200])
		})
		if err != nil {
			return t, err
		}
		cs = append(cs, time.Since(t0))
	}
	slices.Sort(cs)
	t.boltCommit = cs[len(cs)/2]
	return t, nil
}

// fsyncLoop times 4 KiB writes + fdatasyncs of f for d (at least 20), and
// measures the calling thread's own CPU time per write + fdatasync: what a
// flush costs the process that asks for it, which the CPU column of every
// row that writes includes.
func fsyncLoop(f *os.File, d time.Duration) (fs []time.Duration, cpu time.Duration, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, err := measure.ThreadCPU()
	if err != nil {
		return nil, 0, err
	}
	page := make([]byte, 4096)
	for end := time.Now().Add(d); time.Now().Before(end) || len(fs) < 20; {
		t0 := time.Now()
		if _, err := f.WriteAt(page, int64(len(fs)%16)*4096); err != nil {
			return nil, 0, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return nil, 0, err
		}
		fs = append(fs, time.Since(t0))
	}
	cpu1, err := measure.ThreadCPU()
	if err != nil {
		return nil, 0, err
	}
	return fs, (cpu1 - cpu0) / time.Duration(len(fs)), nil
}
