package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authex/authex/storage"
)

// group runs the requests of concurrent callers together, as bbolt's
// Batch does for its commits: one statement (or one pgx batch) and one
// commit for many requests, where each alone would cost the database a
// statement start-up, a commit with its WAL flush, and both sides a round
// trip of system calls and wake-ups.
//
// It never waits on a window: a caller that finds fewer than maxRunning
// groups at the database runs its request at once, alone. Only callers
// that arrive while maxRunning groups are running queue, and the first
// group to finish hands everything queued (up to maxSize) to one of them
// to run as the next group. So a lone request pays one round trip, and
// many concurrent ones share a round trip and a commit.
//
// A group runs under a context that ends when every one of its callers'
// contexts has ended (not when its runner's alone has: the others still
// want their answers). A caller whose context ends before its group
// starts leaves with its context's error, unrun.
type group[T any] struct {
	maxRunning, maxSize int
	// run does the requests of items (a write: all in one transaction)
	// and sets each one's answer, or its err; it is called with at least
	// one item.
	run func(ctx context.Context, items []*groupItem[T])

	mu      sync.Mutex
	queue   []*groupItem[T]
	running int
}

// groupItem is one caller's request in a group.
type groupItem[T any] struct {
	ctx context.Context
	req T
	// err is the caller's error when its request was not done: run sets
	// it when the group failed.
	err error
	// wake receives nil when the request is done, or the next group when
	// this item's caller is to run it.
	wake chan []*groupItem[T]
}

func newGroup[T any](maxRunning, maxSize int, run func(ctx context.Context, items []*groupItem[T])) *group[T] {
	return &group[T]{maxRunning: maxRunning, maxSize: maxSize, run: run}
}

// do runs req, alone or with others, and returns its item with the answer
// run set.
func (g *group[T]) do(ctx context.Context, req T) *groupItem[T] {
	item := &groupItem[T]{ctx: ctx, req: req}
	g.mu.Lock()
	if g.running < g.maxRunning {
		g.running++
		g.mu.Unlock()
		g.runAndHandOver([]*groupItem[T]{item}, item)
		return item
	}
	item.wake = make(chan []*groupItem[T], 1)
	g.queue = append(g.queue, item)
	g.mu.Unlock()
	var next []*groupItem[T]
	select {
	case next = <-item.wake:
	case <-ctx.Done():
		// Gone before its group started: out of the queue, unless a group
		// has just taken it, whose answer it then waits for.
		g.mu.Lock()
		if i := slices.Index(g.queue, item); i >= 0 {
			g.queue = slices.Delete(g.queue, i, i+1)
			g.mu.Unlock()
			item.err = translate(ctx.Err())
			return item
		}
		g.mu.Unlock()
		next = <-item.wake
	}
	if next != nil {
		g.runAndHandOver(next, item)
	}
	return item
}

// runAndHandOver runs items (self, the caller's own, among them), then
// hands the queue to the first of its callers as the next group, or, with
// nothing queued, gives up its place. It hands over even when run panics
// (every caller of the group then gets an error, and the panic goes on up
// self's stack): a group that never handed over would leave its callers
// and every later one of its kind waiting.
func (g *group[T]) runAndHandOver(items []*groupItem[T], self *groupItem[T]) {
	defer g.handOver(items, self)
	live := items[:0:0]
	for _, it := range items {
		if err := it.ctx.Err(); err != nil {
			it.err = translate(err)
			continue
		}
		live = append(live, it)
	}
	if len(live) > 0 {
		g.runLive(live)
	}
}

func (g *group[T]) runLive(live []*groupItem[T]) {
	ctx, cancel := groupContext(live)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			for _, it := range live {
				if it.err == nil {
					it.err = fmt.Errorf("postgres: a request grouped with this one panicked: %v", p)
				}
			}
			panic(p)
		}
	}()
	g.run(ctx, live)
	if len(live) > 1 && ctx.Err() != nil {
		// Every caller has gone, so the group's context was cancelled:
		// each failed caller gets its own context's end instead, as it
		// would alone (a deadline is ErrUnavailable, not Canceled).
		for _, it := range live {
			if it.err != nil {
				it.err = translate(it.ctx.Err())
			}
		}
	}
}

func (g *group[T]) handOver(items []*groupItem[T], self *groupItem[T]) {
	g.mu.Lock()
	var next []*groupItem[T]
	if n := min(len(g.queue), g.maxSize); n > 0 {
		next = make([]*groupItem[T], n)
		copy(next, g.queue)
		g.queue = append(g.queue[:0], g.queue[n:]...)
	} else {
		g.running--
	}
	g.mu.Unlock()

	for _, it := range items {
		if it != self {
			it.wake <- nil
		}
	}
	if next != nil {
		next[0].wake <- next
	}
}

// groupContext is a context that ends when all of items' contexts have
// ended, with the first one's values. A group of one runs under its
// caller's own context.
func groupContext[T any](items []*groupItem[T]) (context.Context, context.CancelFunc) {
	if len(items) == 1 {
		return items[0].ctx, func() {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(items[0].ctx))
	var left atomic.Int32
	left.Store(int32(len(items)))
	stops := make([]func() bool, len(items))
	for i, it := range items {
		stops[i] = context.AfterFunc(it.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// lookup is a request of a group whose statement has two forms: one for a
// single request, which returns its row or none, and one for several,
// whose parameters are arrays (an element a request) and whose every row
// ends with the number, from 1, of the request it answers. A request no
// row answers is not found (a read) or not done (a conditional write).
type lookup[K, V any] struct {
	one, many string
	args      func(K) []any   // one's parameters
	arrays    func([]K) []any // many's parameters
	scan      func(pgx.Row) (V, error)
}

// answer is a lookup's request and, once its group ran, its answer.
type answer[K, V any] struct {
	key   K
	found bool
	val   V
}

// do runs key's lookup in a group of g, or alone on s when g is nil (in a
// view, whose transaction is its own).
func (l *lookup[K, V]) do(ctx context.Context, s *Store, g *group[answer[K, V]], key K) (V, bool, error) {
	if g == nil {
		a := answer[K, V]{key: key}
		err := l.runOne(ctx, s, &a)
		return a.val, a.found, err
	}
	item := g.do(ctx, answer[K, V]{key: key})
	return item.req.val, item.req.found, item.err
}

// group makes the group that runs l's requests on s.
func (l *lookup[K, V]) group(s *Store) *group[answer[K, V]] {
	return newGroup(groupsRunning, groupMaxSize, func(ctx context.Context, items []*groupItem[answer[K, V]]) {
		if len(items) == 1 {
			items[0].err = l.runOne(ctx, s, &items[0].req)
			return
		}
		err := l.runMany(ctx, s, items)
		for _, it := range items {
			switch {
			case err == nil:
			case aloneAfter(ctx, err):
				it.err = l.runOne(ctx, s, &it.req)
			default:
				it.err = err
			}
		}
	})
}

// aloneAfter reports whether the requests of a group that failed with err
// are each to run again alone. Only when the server refused a statement
// (refused, doRefusable): then it rolled the group's transaction back, wrote nothing,
// and the refusal may be one request's (a value the server refuses, such
// as a NUL in a text), which must not fail the others. Not when the
// database is away (each would fail the same way, in turn), nor when the
// callers have all gone, nor after an error on our side of the
// connection, which may come after the commit.
func aloneAfter(ctx context.Context, err error) bool {
	var r refused
	return ctx.Err() == nil && errors.As(err, &r) && !errors.Is(err, storage.ErrUnavailable)
}

// refused marks an error the server answered a statement with.
type refused struct{ error }

func (r refused) Unwrap() error { return r.error }

// doRefusable is s.do, with the error marked refused when the server
// answered the statement with one.
func (s *Store) doRefusable(ctx context.Context, fn func() error) error {
	var byServer bool
	err := s.do(ctx, func() error {
		err := fn()
		var pgErr *pgconn.PgError
		byServer = errors.As(err, &pgErr)
		return err
	})
	if err != nil && byServer {
		return refused{err}
	}
	return err
}

func (l *lookup[K, V]) runOne(ctx context.Context, s *Store, a *answer[K, V]) error {
	err := s.do(ctx, func() error {
		var err error
		a.val, err = l.scan(s.db.QueryRow(ctx, l.one, l.args(a.key)...))
		return err
	})
	a.found = err == nil
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	return err
}

func (l *lookup[K, V]) runMany(ctx context.Context, s *Store, items []*groupItem[answer[K, V]]) error {
	keys := make([]K, len(items))
	for i, it := range items {
		keys[i] = it.req.key
	}
	args := l.arrays(keys)
	return s.doRefusable(ctx, func() error {
		for _, it := range items {
			it.req.found = false
		}
		return l.scanMany(ctx, s, items, args)
	})
}

func (l *lookup[K, V]) scanMany(ctx context.Context, s *Store, items []*groupItem[answer[K, V]], args []any) error {
	rows, err := s.db.Query(ctx, l.many, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k int64
		v, err := l.scan(rowWithTail{row: rows, tail: []any{&k}})
		if err != nil {
			return err
		}
		if k < 1 || k > int64(len(items)) {
			return fmt.Errorf("row for request %d of %d", k, len(items))
		}
		a := &items[k-1].req
		a.val, a.found = v, true
	}
	return rows.Err()
}
