package postgres

import (
	"context"
	"sync"
	"sync/atomic"
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
// want their answers). A caller whose context has ended before its group
// starts is left out with its context's error.
type group[T any] struct {
	maxRunning, maxSize int
	// run does the requests of items, all or none (one transaction), and
	// sets each one's answer; it is called with at least one item.
	run func(ctx context.Context, items []*groupItem[T])

	mu      sync.Mutex
	queue   []*groupItem[T]
	running int
}

// groupItem is one caller's request in a group.
type groupItem[T any] struct {
	ctx context.Context
	Req T
	// Err is the caller's error when its request was not done: run sets it
	// when the group failed.
	Err error
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
	item := &groupItem[T]{ctx: ctx, Req: req}
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
	if next := <-item.wake; next != nil {
		g.runAndHandOver(next, item)
	}
	return item
}

// runAndHandOver runs items (self, the caller's own, among them), then
// hands the queue to the first of its callers as the next group, or, with
// nothing queued, gives up its place.
func (g *group[T]) runAndHandOver(items []*groupItem[T], self *groupItem[T]) {
	live := items[:0:0]
	for _, it := range items {
		if err := it.ctx.Err(); err != nil {
			it.Err = err
			continue
		}
		live = append(live, it)
	}
	if len(live) > 0 {
		ctx, cancel := groupContext(live)
		g.run(ctx, live)
		cancel()
	}

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
