package mail

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// The queue is in memory, on purpose: a message holds a live token (in
// its link), and the store keeps tokens only as hashes; a durable queue
// would put them at rest. A message lost in a restart costs the user one
// more "send again"; the tokens are short-lived anyway.

// Retry is the queue's retry policy.
type Retry struct {
	Attempts int           // sends tried at most per message (>= 1)
	Initial  time.Duration // the wait after the first failure
	Max      time.Duration // the longest wait between attempts
}

// DefaultRetry: 5 attempts over about 1 minute + 2 + 4 + 8 seconds of waits.
var DefaultRetry = Retry{Attempts: 5, Initial: time.Second, Max: time.Minute}

// backoff is the wait after failed attempt n (1-based): Initial doubled
// n-1 times, at most Max, with up to 20% jitter off it.
func (r Retry) backoff(n int) time.Duration {
	d := r.Initial
	for i := 1; i < n && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	if d > 0 {
		d -= time.Duration(rand.Int64N(int64(d)/5 + 1))
	}
	return d
}

// Job is one message and what the caller wants back in Result.
type Job struct {
	Message Message
	Meta    any // passed back to Report untouched (e.g. user id, kind)
}

// Outcome is one attempt's result.
type Outcome struct {
	Job     Job
	Attempt int
	Err     error // nil: sent
	Final   bool  // no more attempts (sent, or given up)
}

// ErrQueueFull: Enqueue found the queue at its bound; nothing was queued.
var ErrQueueFull = errors.New("mail: queue full")

// ErrClosed: the queue is closed.
var ErrClosed = errors.New("mail: queue closed")

// Queue sends jobs through a Sender from worker goroutines, retrying
// failures with exponential backoff. Report is called after every attempt.
type Queue struct {
	sender Sender
	retry  Retry
	report func(Outcome)
	jobs   chan Job
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool
}

// NewQueue starts workers goroutines over a queue of at most size jobs.
func NewQueue(sender Sender, size, workers int, retry Retry, report func(Outcome)) *Queue {
	if retry.Attempts < 1 {
		retry.Attempts = 1
	}
	if size < 1 {
		size = 1
	}
	if workers < 1 {
		workers = 1
	}
	if report == nil {
		report = func(Outcome) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{sender: sender, retry: retry, report: report, jobs: make(chan Job, size), ctx: ctx, cancel: cancel}
	for range workers {
		q.wg.Add(1)
		go q.work()
	}
	return q
}

// Enqueue queues j without waiting: ErrQueueFull or ErrClosed when it
// cannot.
func (q *Queue) Enqueue(j Job) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	select {
	case q.jobs <- j:
		return nil
	default:
		return ErrQueueFull
	}
}

func (q *Queue) work() {
	defer q.wg.Done()
	for j := range q.jobs {
		q.deliver(j)
	}
}

func (q *Queue) deliver(j Job) {
	for n := 1; ; n++ {
		err := q.sender.Send(q.ctx, j.Message)
		final := err == nil || n >= q.retry.Attempts || q.ctx.Err() != nil
		q.report(Outcome{Job: j, Attempt: n, Err: err, Final: final})
		if final {
			return
		}
		t := time.NewTimer(q.retry.backoff(n))
		select {
		case <-t.C:
		case <-q.ctx.Done():
			t.Stop()
			q.report(Outcome{Job: j, Attempt: n, Err: ErrClosed, Final: true})
			return
		}
	}
}

// Close stops taking jobs and waits, until ctx ends, for the queued ones
// to be sent; then it abandons what is left (each reported with ErrClosed).
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.jobs)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		return ctx.Err()
	}
}
