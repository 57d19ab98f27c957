package bolt

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds how many functions share one transaction (bbolt's own
// DefaultMaxBatchSize): a longer queue waits for the next commit rather
// than making one transaction, and its rollback on a failing function,
// arbitrarily large.
const maxGroup = 1000

// committer is group commit without a window. bbolt's DB.Batch holds the
// first write of a batch for MaxBatchDelay hoping for company; a lone write
// then pays the delay on top of its fsync, and at low concurrency the
// delay, not the CPU, sets the pace. Here a commit starts the moment there
// is work and the previous commit is durable: a lone write pays one commit
// (bbolt's two fdatasyncs), and the writes that arrive while a commit is on
// the disk share the next one. Under load the groups grow by themselves, as long as the fsync
// takes, so the commits' fixed cost is shared without a timer to tune.
//
// It keeps DB.Batch's contract, which the callers of Store.batch rely on:
// a function may run more than once, and in a transaction with other
// callers' functions; one that fails (or panics) is taken out of its group,
// which is rolled back and committed again without it, and the failing one
// runs again alone in its caller's own Update, so it never undoes or
// half-applies the others. A caller returns only once the transaction that
// holds its writes is committed (fsynced, unless Options.NoSync).
type committer struct {
	db *bolt.DB

	mu      sync.Mutex
	queue   []*groupCall
	leading bool // a caller is committing groups (see run)
}

type groupCall struct {
	fn   func(*bolt.Tx) error
	done chan error // buffered: the leader never waits for the caller
}

var (
	// errRunAlone tells a caller its function failed in a group: it runs
	// again on its own, where its error (or panic) is its own.
	errRunAlone = errors.New("bolt: function failed in a group commit; run it alone")
	// errLead hands the commits over to a caller still in the queue.
	errLead = errors.New("bolt: lead the next group commit")
)

func newCommitter(db *bolt.DB) *committer { return &committer{db: db} }

// run commits fn with whatever else is queued and returns once that commit
// is durable, or fn's own error.
//
// The callers commit for one another: one that finds nobody committing
// leads, taking the queue as a group and committing it, again and again
// until its own function is committed; then it hands the lead to the
// first caller still queued, if any. A lone write thus commits in its own
// goroutine with no handover, and no goroutine lives beyond its callers.
func (c *committer) run(fn func(*bolt.Tx) error) error {
	call := &groupCall{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, call)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()
	if !lead {
		if err := <-call.done; err != errLead {
			return c.outcome(call, err)
		}
	}
	c.lead(call)
	return c.outcome(call, <-call.done)
}

func (c *committer) outcome(call *groupCall, err error) error {
	if err == errRunAlone {
		return c.db.Update(call.fn)
	}
	return err
}

// lead commits groups from the queue until mine is committed (its result
// is then in its done channel), then passes the lead on.
func (c *committer) lead(mine *groupCall) {
	for {
		c.mu.Lock()
		n := min(len(c.queue), maxGroup)
		group := make([]*groupCall, n)
		copy(group, c.queue)
		c.queue = c.queue[n:]
		c.mu.Unlock()
		// Checked before the commit, which takes failing calls out of
		// group in place.
		last := slices.Contains(group, mine)
		c.commit(group)
		if last {
			break
		}
	}
	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].done <- errLead
	} else {
		c.leading = false
		c.queue = nil
	}
	c.mu.Unlock()
}

// commit runs group in one transaction. A failing function is told to run
// alone and the rest are retried without it (in order), as DB.Batch does.
func (c *committer) commit(group []*groupCall) {
	for len(group) > 0 {
		failed := -1
		err := callSafely(func(*bolt.Tx) error {
			return c.db.Update(func(tx *bolt.Tx) error {
				for i, call := range group {
					if err := callSafely(call.fn, tx); err != nil {
						failed = i
						return err
					}
				}
				return nil
			})
		}, nil)
		if failed >= 0 {
			group[failed].done <- errRunAlone
			group = append(group[:failed], group[failed+1:]...)
			continue
		}
		// The commit's own outcome (nil once durable, or a write, fsync
		// or closed-database error) is everyone's.
		for _, call := range group {
			call.done <- err
		}
		return
	}
}

// callSafely turns a panic into an error, so a panicking function is only
// taken out of its group (and panics again in its caller's own Update),
// and a panic in bbolt's commit reaches the group as an error, instead of
// unwinding the leader with every other caller waiting on it.
func callSafely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bolt: panic in a group commit: %v", p)
		}
	}()
	return fn(tx)
}
