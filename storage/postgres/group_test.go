package postgres

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The unit tests of group[T] (group.go): no database, a run func that
// records what it was given.

// recorder is a group's run that records each group's requests and
// answers each one (the request's number, doubled), optionally blocking
// the first group until released.
type recorder struct {
	mu     sync.Mutex
	groups [][]int
	ctxs   []context.Context

	started chan struct{} // gets a value as each group starts, when not nil
	release chan struct{} // closed to let the first group finish, when not nil
	first   atomic.Bool
}

type req struct {
	n      int
	answer int
	runs   int // how many times run saw this request
}

func (r *recorder) run(ctx context.Context, items []*groupItem[req]) {
	ns := make([]int, len(items))
	for i, it := range items {
		ns[i] = it.req.n
		it.req.answer = 2 * it.req.n
		it.req.runs++
	}
	r.mu.Lock()
	r.groups = append(r.groups, ns)
	r.ctxs = append(r.ctxs, ctx)
	r.mu.Unlock()
	if r.started != nil {
		r.started <- struct{}{}
	}
	if r.release != nil && r.first.CompareAndSwap(false, true) {
		<-r.release
	}
}

func (r *recorder) recorded() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.groups)
}

// queued is how many callers wait in g's queue.
func (g *group[T]) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// waitUntil polls count every step until it is want, and fails tb after
// 2 s, naming what it counts.
func waitUntil(tb testing.TB, what string, want int, step time.Duration, count func() int) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := count()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d %s, want %d", got, what, want)
		}
		time.Sleep(step)
	}
}

// waitQueued waits until n callers wait in g's queue.
func waitQueued[T any](tb testing.TB, g *group[T], n int) {
	tb.Helper()
	waitUntil(tb, "callers queued", n, 100*time.Microsecond, g.queued)
}

// caller runs g.do(ctx, req{n}) in a goroutine; its item arrives on the
// returned channel.
func caller(ctx context.Context, g *group[req], n int) <-chan *groupItem[req] {
	done := make(chan *groupItem[req], 1)
	go func() { done <- g.do(ctx, req{n: n}) }()
	return done
}

// answerOf waits for a caller's item.
func answerOf(tb testing.TB, done <-chan *groupItem[req]) *groupItem[req] {
	tb.Helper()
	select {
	case it := <-done:
		return it
	case <-time.After(2 * time.Second):
		tb.Fatal("a caller got no answer")
		return nil
	}
}

// startBlocked starts caller 0 on g, whose run (r.run) blocks the first
// group until r.release is closed, and waits for that group to start.
func startBlocked(tb testing.TB, g *group[req], r *recorder) <-chan *groupItem[req] {
	tb.Helper()
	done := caller(tb.Context(), g, 0)
	select {
	case <-r.started:
	case <-time.After(2 * time.Second):
		tb.Fatal("the first caller did not run")
	}
	return done
}

// A lone caller runs at once, alone, under its own context, and gives its
// place back.
func TestGroupLoneCall(t *testing.T) {
	r := &recorder{}
	g := newGroup(2, 64, r.run)
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "mine")
	for i := range 3 {
		it := answerOf(t, caller(ctx, g, i+1))
		if it.err != nil || it.req.answer != 2*(i+1) || it.req.runs != 1 {
			t.Fatalf("call %d: %+v, err %v", i, it.req, it.err)
		}
	}
	if got := r.recorded(); !slices.EqualFunc(got, [][]int{{1}, {2}, {3}}, slices.Equal) {
		t.Fatalf("groups %v, want each call alone", got)
	}
	if r.ctxs[0] != ctx {
		t.Errorf("a group of one ran under another context than its caller's")
	}
	if g.running != 0 || g.queued() != 0 {
		t.Errorf("after the calls: %d running, %d queued; want none", g.running, g.queued())
	}
}

// Callers that arrive while maxRunning groups run wait, and the first
// group to finish hands them over to run together, in arrival order.
func TestGroupQueuedCallersRunTogether(t *testing.T) {
	r := &recorder{started: make(chan struct{}, 16), release: make(chan struct{})}
	g := newGroup(1, 64, r.run)
	first := startBlocked(t, g, r)
	var dones []<-chan *groupItem[req]
	for n := 1; n <= 5; n++ {
		dones = append(dones, caller(t.Context(), g, n))
		waitQueued(t, g, n)
	}
	if got := r.recorded(); len(got) != 1 {
		t.Fatalf("groups %v ran while the first blocked, want only the first", got)
	}
	close(r.release)
	if it := answerOf(t, first); it.err != nil || it.req.answer != 0 {
		t.Errorf("first caller: %+v, %v", it.req, it.err)
	}
	for i, done := range dones {
		if it := answerOf(t, done); it.err != nil || it.req.answer != 2*(i+1) || it.req.runs != 1 {
			t.Errorf("queued caller %d: %+v, %v", i+1, it.req, it.err)
		}
	}
	if got, want := r.recorded(), [][]int{{0}, {1, 2, 3, 4, 5}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("groups %v, want %v", got, want)
	}
	if g.running != 0 || g.queued() != 0 {
		t.Errorf("after the calls: %d running, %d queued; want none", g.running, g.queued())
	}
}

// A group takes at most maxSize of the queue; the rest go in later
// groups, and every caller is answered once.
func TestGroupMaxSize(t *testing.T) {
	r := &recorder{started: make(chan struct{}, 16), release: make(chan struct{})}
	g := newGroup(1, 4, r.run)
	first := startBlocked(t, g, r)
	var dones []<-chan *groupItem[req]
	for n := 1; n <= 10; n++ {
		dones = append(dones, caller(t.Context(), g, n))
		waitQueued(t, g, n)
	}
	close(r.release)
	answerOf(t, first)
	for i, done := range dones {
		if it := answerOf(t, done); it.err != nil || it.req.answer != 2*(i+1) || it.req.runs != 1 {
			t.Errorf("queued caller %d: %+v, %v", i+1, it.req, it.err)
		}
	}
	want := [][]int{{0}, {1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10}}
	if got := r.recorded(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("groups %v, want %v", got, want)
	}
}

// However many callers, never more than maxRunning groups run at once,
// no group exceeds maxSize, and every request runs exactly once.
func TestGroupMaxRunning(t *testing.T) {
	const maxRunning, maxSize, callers, calls = 3, 5, 64, 50
	var running, most, groups atomic.Int32
	var seen sync.Map // request number -> *atomic.Int32
	g := newGroup(maxRunning, maxSize, func(ctx context.Context, items []*groupItem[req]) {
		now := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		groups.Add(1)
		if len(items) > maxSize {
			t.Errorf("a group of %d, over maxSize %d", len(items), maxSize)
		}
		for _, it := range items {
			c, _ := seen.LoadOrStore(it.req.n, new(atomic.Int32))
			c.(*atomic.Int32).Add(1)
			it.req.answer = 2 * it.req.n
		}
		time.Sleep(50 * time.Microsecond) // long enough for others to queue
	})
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range calls {
				n := c*calls + i
				it := g.do(t.Context(), req{n: n})
				if it.err != nil || it.req.answer != 2*n {
					t.Errorf("request %d: %+v, %v", n, it.req, it.err)
					return
				}
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m > maxRunning {
		t.Fatalf("%d groups ran at once, over maxRunning %d", m, maxRunning)
	}
	for n := range callers * calls {
		c, ok := seen.Load(n)
		if !ok || c.(*atomic.Int32).Load() != 1 {
			t.Fatalf("request %d did not run exactly once", n)
		}
	}
	if g.running != 0 || g.queued() != 0 {
		t.Errorf("after the calls: %d running, %d queued; want none", g.running, g.queued())
	}
	t.Logf("%d requests in %d groups, at most %d at once", callers*calls, groups.Load(), most.Load())
}

// A queued caller whose context ends before its group starts gets its
// context's error and is not run; the others of its group run, whether
// it was to run the group or not.
func TestGroupCancelledBeforeStart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cancelled []int // which of the queued callers 1..3
		want      [][]int
	}{
		{"the group's runner", []int{1}, [][]int{{0}, {2, 3}}},
		{"one in the middle", []int{2}, [][]int{{0}, {1, 3}}},
		{"all of them", []int{1, 2, 3}, [][]int{{0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{started: make(chan struct{}, 16), release: make(chan struct{})}
			g := newGroup(1, 64, r.run)
			first := startBlocked(t, g, r)
			dones := map[int]<-chan *groupItem[req]{}
			cancels := map[int]context.CancelFunc{}
			for n := 1; n <= 3; n++ {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				cancels[n] = cancel
				dones[n] = caller(ctx, g, n)
				waitQueued(t, g, n)
			}
			for _, n := range tc.cancelled {
				cancels[n]()
			}
			close(r.release)
			answerOf(t, first)
			for n := 1; n <= 3; n++ {
				it := answerOf(t, dones[n])
				if slices.Contains(tc.cancelled, n) {
					if !errors.Is(it.err, context.Canceled) || it.req.runs != 0 {
						t.Errorf("cancelled caller %d: err %v, run %d times; want context.Canceled, never run", n, it.err, it.req.runs)
					}
				} else if it.err != nil || it.req.runs != 1 {
					t.Errorf("caller %d: err %v, run %d times; want run once", n, it.err, it.req.runs)
				}
			}
			if got := r.recorded(); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("groups %v, want %v", got, tc.want)
			}
			// The group gave its place back: a new caller runs at once.
			if it := g.do(t.Context(), req{n: 9}); it.err != nil || it.req.runs != 1 {
				t.Fatalf("a later caller: %+v, %v", it.req, it.err)
			}
		})
	}
}

// A queued caller whose context ends leaves at once, while the group
// ahead of it still runs, and is out of the queue: the next group is the
// others.
func TestGroupCancelledLeavesAtOnce(t *testing.T) {
	r := &recorder{started: make(chan struct{}, 16), release: make(chan struct{})}
	g := newGroup(1, 64, r.run)
	first := startBlocked(t, g, r)
	ctx, cancel := context.WithCancel(t.Context())
	gone := caller(ctx, g, 1)
	waitQueued(t, g, 1)
	stays := caller(t.Context(), g, 2)
	waitQueued(t, g, 2)
	cancel()
	it := answerOf(t, gone) // the first group is still blocked
	if !errors.Is(it.err, context.Canceled) || it.req.runs != 0 {
		t.Fatalf("cancelled caller: err %v, run %d times; want context.Canceled at once, never run", it.err, it.req.runs)
	}
	if n := g.queued(); n != 1 {
		t.Fatalf("%d callers queued after one left, want 1", n)
	}
	close(r.release)
	answerOf(t, first)
	if it := answerOf(t, stays); it.err != nil || it.req.runs != 1 {
		t.Fatalf("the caller that stayed: %+v, %v", it.req, it.err)
	}
	if got, want := r.recorded(), [][]int{{0}, {2}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("groups %v, want %v", got, want)
	}
}

// A run that panics answers every caller of its group with an error,
// the panic goes on up the runner's stack, and the group still hands over:
// a caller queued meanwhile, and a later one, are answered.
func TestGroupPanicHandsOver(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{}, 4)
	var runs atomic.Int32
	g := newGroup(1, 64, func(ctx context.Context, items []*groupItem[req]) {
		if runs.Add(1) == 1 {
			started <- struct{}{}
			<-release
			panic("boom")
		}
		for _, it := range items {
			it.req.runs++
		}
	})
	panics := make(chan any, 1)
	go func() {
		defer func() { panics <- recover() }()
		g.do(t.Context(), req{n: 0})
	}()
	<-started
	queued := caller(t.Context(), g, 1)
	waitQueued(t, g, 1)
	close(release)
	select {
	case p := <-panics:
		if p != "boom" {
			t.Fatalf("the runner's stack got %v, want the panic", p)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the panic did not reach the runner")
	}
	if it := answerOf(t, queued); it.err != nil || it.req.runs != 1 {
		t.Fatalf("the caller queued behind the panic: %+v, %v; want run once", it.req, it.err)
	}
	if it := g.do(t.Context(), req{n: 2}); it.err != nil || it.req.runs != 1 {
		t.Fatalf("a later caller: %+v, %v", it.req, it.err)
	}
}

// The callers of a group whose run panics get an error, not a half
// answer.
func TestGroupPanicFailsItsCallers(t *testing.T) {
	r := &recorder{started: make(chan struct{}, 16), release: make(chan struct{})}
	var groups atomic.Int32
	g := newGroup(1, 64, func(ctx context.Context, items []*groupItem[req]) {
		if groups.Add(1) == 2 {
			panic("boom")
		}
		r.run(ctx, items)
	})
	first := startBlocked(t, g, r)
	var dones []chan *groupItem[req]
	for n := 1; n <= 2; n++ {
		done := make(chan *groupItem[req], 1)
		go func() {
			var it *groupItem[req]
			defer func() {
				recover() // the runner of the group that panics
				done <- it
			}()
			it = g.do(t.Context(), req{n: n})
		}()
		dones = append(dones, done)
		waitQueued(t, g, n)
	}
	close(r.release)
	answerOf(t, first)
	answered := 0
	for _, done := range dones {
		if it := answerOf(t, done); it != nil {
			answered++
			if it.err == nil {
				t.Errorf("caller %d of the group that panicked: no error", it.req.n)
			}
		}
	}
	if answered != 1 {
		t.Fatalf("%d callers returned an answer, want 1 (the other ran the group and panicked)", answered)
	}
}

// startGroupOfTwo blocks a group (maxRunning 1) with caller 0, queues
// callers 1 and 2 under ctx1 and ctx2, and releases caller 0, so that 1
// and 2 run together, through run; their items arrive on dones.
func startGroupOfTwo(t *testing.T, ctx1, ctx2 context.Context, run func(ctx context.Context, items []*groupItem[req])) (dones [2]<-chan *groupItem[req]) {
	t.Helper()
	r := &recorder{started: make(chan struct{}, 16), release: make(chan struct{})}
	calls := 0
	g := newGroup(1, 64, func(ctx context.Context, items []*groupItem[req]) {
		calls++ // groups run one at a time (maxRunning 1)
		if calls == 1 {
			r.run(ctx, items)
			return
		}
		run(ctx, items)
	})
	first := startBlocked(t, g, r)
	dones[0] = caller(ctx1, g, 1)
	waitQueued(t, g, 1)
	dones[1] = caller(ctx2, g, 2)
	waitQueued(t, g, 2)
	close(r.release)
	answerOf(t, first)
	return dones
}

// The context of a group of several ends when every caller's has, not
// when its runner's alone has; it carries the runner's values.
func TestGroupContext(t *testing.T) {
	type key struct{}
	ctx1, cancel1 := context.WithCancel(context.WithValue(t.Context(), key{}, "runner's"))
	defer cancel1()
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	groupCtx := make(chan context.Context, 1)
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	defer release()
	dones := startGroupOfTwo(t, ctx1, ctx2, func(ctx context.Context, items []*groupItem[req]) {
		groupCtx <- ctx
		<-hold
		for _, it := range items {
			it.req.runs++
		}
	})
	var ctx context.Context
	select {
	case ctx = <-groupCtx:
	case <-time.After(2 * time.Second):
		t.Fatal("the group of two did not start")
	}
	if v, _ := ctx.Value(key{}).(string); v != "runner's" {
		t.Errorf("the group's context carries %q, want the runner's value", v)
	}
	cancel1()
	select {
	case <-ctx.Done():
		t.Fatalf("the group's context ended with its runner's alone: %v", ctx.Err())
	case <-time.After(50 * time.Millisecond):
	}
	cancel2()
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the group's context did not end when every caller's had")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("the group's context ended with %v, want context.Canceled", ctx.Err())
	}
	release()
	for i, done := range dones {
		// Both were live when the group started: both ran.
		if it := answerOf(t, done); it.err != nil || it.req.runs != 1 {
			t.Errorf("caller %d: %+v, %v", i+1, it.req, it.err)
		}
	}
}

// A group whose callers' deadlines have all passed fails as a lone call
// past its deadline does: with context.DeadlineExceeded, which the store
// reports as ErrUnavailable (translate), not context.Canceled, which it
// passes on as is and exchange reports as an internal error.
func TestGroupContextDeadline(t *testing.T) {
	ctx1, cancel1 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel1()
	ctx2, cancel2 := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel2()
	// run answers as a database call does when its context ends first.
	dones := startGroupOfTwo(t, ctx1, ctx2, func(ctx context.Context, items []*groupItem[req]) {
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		for _, it := range items {
			it.err = ctx.Err()
		}
	})
	for i, done := range dones {
		if it := answerOf(t, done); !errors.Is(it.err, context.DeadlineExceeded) {
			t.Errorf("caller %d, past its deadline in a group: %v, want context.DeadlineExceeded (as alone)", i+1, it.err)
		}
	}
	// Alone, the same run answers DeadlineExceeded.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	alone := newGroup(1, 64, func(ctx context.Context, items []*groupItem[req]) {
		<-ctx.Done()
		items[0].err = ctx.Err()
	})
	if it := alone.do(ctx, req{}); !errors.Is(it.err, context.DeadlineExceeded) {
		t.Fatalf("alone past its deadline: %v", it.err)
	}
}
