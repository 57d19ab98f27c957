package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
)

// Endpoint is one configured receiver.
type Endpoint struct {
	Name string
	URL  string
	Key  []byte // ParseSecret's result
	// Timeout bounds one attempt; MaxAttempts gives up (the record is
	// failed, for the admin to replay) after that many.
	Timeout     time.Duration
	MaxAttempts int
}

// Options configure a Worker. Zero durations take the defaults below.
type Options struct {
	Store     storage.Store // must offer storage.Outbox
	Endpoints []Endpoint
	Logger    *slog.Logger
	Client    *http.Client // nil: a client with no redirects
	// Owner names this instance in leases (default: a random id).
	Owner string
	// Poll is how often the outbox is read without a wake-up (Notify):
	// what another instance writes waits at most this long.
	Poll time.Duration
	// BackoffBase and BackoffMax: attempt n (1, 2, ...) failed waits
	// BackoffBase * 2^(n-1), at most BackoffMax, plus up to 10% jitter.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Batch is how many records one claim takes.
	Batch int
	Now   func() time.Time
	// Observe, when set, is told each attempt's outcome (metrics).
	Observe func(endpoint, outcome string, latency time.Duration)
}

// Defaults.
const (
	DefaultPoll        = time.Second
	DefaultBackoffBase = 5 * time.Second
	DefaultBackoffMax  = time.Hour
	DefaultBatch       = 32
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 20 // about 12 hours with the default backoff
	// leaseMargin: a claim holds a record for the endpoint's timeout plus
	// this, so the outcome is written before another instance may take it.
	// An instance killed mid-attempt delays that record by as much.
	leaseMargin = 10 * time.Second
	// maxBodyRead: what is read of a receiver's answer (for the log).
	maxBodyRead = 512
)

// Outcomes given to Options.Observe.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetry     = "retry"
	OutcomeFailed    = "failed"
)

// Worker claims due records from the outbox and delivers them. Run it in
// one goroutine per instance; on PostgreSQL every instance may run one.
type Worker struct {
	o         Options
	outbox    storage.Outbox
	endpoints map[string]Endpoint
	wake      chan struct{}
	lease     time.Duration
	// inFlight holds a slot per attempt running (at most Batch at once);
	// wg waits for them at the end of Run.
	inFlight chan struct{}
	wg       sync.WaitGroup
}

// New checks the options and fills the defaults in.
func New(o Options) (*Worker, error) {
	ob, ok := storage.As[storage.Outbox](o.Store)
	if !ok {
		return nil, errors.New("webhook: the store keeps no outbox")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Owner == "" {
		o.Owner = uuid.NewString()
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = DefaultBackoffMax
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Worker{o: o, outbox: ob, endpoints: map[string]Endpoint{}, wake: make(chan struct{}, 1), inFlight: make(chan struct{}, o.Batch)}
	for _, e := range o.Endpoints {
		if e.Timeout <= 0 {
			e.Timeout = DefaultTimeout
		}
		if e.MaxAttempts <= 0 {
			e.MaxAttempts = DefaultMaxAttempts
		}
		w.endpoints[e.Name] = e
		// The lease outlasts the longest attempt, so a record is never
		// handed to a second instance while the first still waits for it.
		w.lease = max(w.lease, e.Timeout+leaseMargin)
	}
	if w.lease == 0 {
		w.lease = DefaultTimeout + leaseMargin
	}
	return w, nil
}

// Notify wakes the worker: something was just written. It never blocks.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the attempts in flight (each
// bounded by its endpoint's timeout) and returns. A record whose attempt
// was cut short keeps its lease until it runs out, then goes again.
func (w *Worker) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	defer w.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		w.Once(ctx)
		wait := w.o.Poll
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// Once claims as many due records as there are free attempt slots and
// starts delivering them, each in its own goroutine (a slow receiver holds
// up only its own records); it returns how many it claimed. Each attempt
// that ends wakes the worker, for its user's next record.
func (w *Worker) Once(ctx context.Context) int {
	free := cap(w.inFlight) - len(w.inFlight)
	if free == 0 {
		return 0
	}
	recs, err := w.outbox.ClaimOutbox(ctx, w.o.Owner, w.o.Now().UTC(), w.lease, free)
	if err != nil {
		if ctx.Err() == nil {
			w.o.Logger.WarnContext(ctx, "webhook: claim from the outbox failed", "err", err)
		}
		return 0
	}
	for _, r := range recs {
		w.inFlight <- struct{}{}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.deliver(context.WithoutCancel(ctx), r)
			<-w.inFlight
			w.Notify()
		}()
	}
	return len(recs)
}

// Wait waits for the attempts in flight (tests use it with Once).
func (w *Worker) Wait() { w.wg.Wait() }

// deliver makes one attempt and records its outcome. It runs on a context
// that a drain does not cancel: the attempt is bounded by the endpoint's
// timeout, and its outcome must reach the store.
func (w *Worker) deliver(ctx context.Context, r storage.OutboxRecord) {
	ep, ok := w.endpoints[r.Endpoint]
	if !ok {
		// The endpoint left the config: give up; a replay after it is
		// configured again delivers it.
		w.record(ctx, r, Endpoint{Name: r.Endpoint, MaxAttempts: 1}, "endpoint no longer configured", 0)
		return
	}
	start := w.o.Now()
	err := w.post(ctx, ep, r)
	latency := w.o.Now().Sub(start)
	if err == nil {
		if err := w.outbox.FinishOutbox(ctx, r.Endpoint, r.ID, w.o.Owner, w.o.Now().UTC()); err != nil {
			// Delivered, but the lease ran out (or the store failed): the
			// record may go again. At least once.
			w.o.Logger.WarnContext(ctx, "webhook: delivered but not marked so; it may be delivered again",
				"endpoint", r.Endpoint, "webhook_id", r.ID, "err", err)
		}
		w.observe(ep.Name, OutcomeDelivered, latency)
		w.o.Logger.DebugContext(ctx, "webhook delivered", "endpoint", r.Endpoint, "webhook_id", r.ID, "type", r.Type, "latency", latency)
		return
	}
	w.record(ctx, r, ep, err.Error(), latency)
}

func (w *Worker) record(ctx context.Context, r storage.OutboxRecord, ep Endpoint, msg string, latency time.Duration) {
	now := w.o.Now().UTC()
	attempts := r.Attempts + 1
	failed := attempts >= ep.MaxAttempts
	next := now.Add(w.backoff(attempts))
	if err := w.outbox.RetryOutbox(ctx, r.Endpoint, r.ID, w.o.Owner, now, next, truncate(msg, 500), failed); err != nil {
		w.o.Logger.WarnContext(ctx, "webhook: could not record a failed attempt", "endpoint", r.Endpoint, "webhook_id", r.ID, "err", err)
	}
	outcome := OutcomeRetry
	if failed {
		outcome = OutcomeFailed
		w.o.Logger.ErrorContext(ctx, "webhook delivery given up; replay it with `authex webhooks replay`",
			"endpoint", r.Endpoint, "webhook_id", r.ID, "type", r.Type, "attempts", attempts, "err", msg)
	} else {
		w.o.Logger.WarnContext(ctx, "webhook delivery failed; will retry", "endpoint", r.Endpoint, "webhook_id", r.ID,
			"attempts", attempts, "next_attempt_at", next, "err", msg)
	}
	w.observe(ep.Name, outcome, latency)
}

func (w *Worker) observe(endpoint, outcome string, latency time.Duration) {
	if w.o.Observe != nil {
		w.o.Observe(endpoint, outcome, latency)
	}
}

// backoff is the wait after the attempts-th failed attempt.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.o.BackoffBase
	for i := 1; i < attempts && d < w.o.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, w.o.BackoffMax)
	return d + rand.N(d/10+1)
}

// post sends one attempt: any 2xx is delivered; anything else (a status,
// a timeout, a refused connection, a redirect) is a failure.
func (w *Worker) post(ctx context.Context, ep Endpoint, r storage.OutboxRecord) error {
	ctx, cancel := context.WithTimeout(ctx, ep.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(r.Payload))
	if err != nil {
		return err
	}
	ts := w.o.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "authex-webhooks")
	req.Header.Set("webhook-id", r.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(ep.Key, r.ID, ts, r.Payload))
	resp, err := w.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("POST: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, truncate(string(b), 200))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
