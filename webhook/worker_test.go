package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/storage/postgres/pgtest"
	"github.com/authex/authex/webhook"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// Receiver is a real HTTP receiver that checks every delivery with the
// Standard Webhooks algorithm and records what it accepted.
type Receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []Delivery
	down     atomic.Bool
	bad      atomic.Int64 // deliveries that failed verification
	attempts atomic.Int64
}

// Delivery is one verified delivery.
type Delivery struct {
	ID   string
	Type string
	User string
	Body []byte
	At   time.Time
}

func newReceiver(t *testing.T) *Receiver {
	key, err := webhook.ParseSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.attempts.Add(1)
		if r.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(req.Body)
		if err := webhook.Verify(key, req.Header, body, time.Now()); err != nil {
			r.bad.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				UserID string `json:"user_id"`
				User   struct {
					ID string `json:"id"`
				} `json:"user"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			r.bad.Add(1)
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		user := ev.Data.UserID
		if user == "" {
			user = ev.Data.User.ID
		}
		r.mu.Lock()
		r.got = append(r.got, Delivery{ID: req.Header.Get("webhook-id"), Type: ev.Type, User: user, Body: body, At: time.Now()})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *Receiver) deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.got...)
}

func (r *Receiver) waitFor(t *testing.T, n int, within time.Duration) []Delivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if d := r.deliveries(); len(d) >= n {
			return d
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%d of %d deliveries after %s (%d attempts, %d bad)", len(r.deliveries()), n, within, r.attempts.Load(), r.bad.Load())
	return nil
}

func openBolt(t *testing.T) storage.Store {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "authex.db"), bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendEvent(t *testing.T, s storage.Store, endpoint, user string, n int) string {
	t.Helper()
	id := "msg_" + uuid.Must(uuid.NewV7()).String()
	body := fmt.Sprintf(`{"type":"user.updated","timestamp":"x","data":{"user_id":%q,"n":%d}}`, user, n)
	now := time.Now().UTC()
	ob, _ := storage.As[storage.Outbox](s)
	if err := ob.AppendOutbox(t.Context(), storage.OutboxRecord{ID: id, Endpoint: endpoint, UserID: user, Type: "user.updated",
		Payload: []byte(body), CreatedAt: now, NextAttemptAt: now}); err != nil {
		t.Fatal(err)
	}
	return id
}

func startWorker(t *testing.T, s storage.Store, url string, o webhook.Options) *webhook.Worker {
	key, _ := webhook.ParseSecret(testSecret)
	o.Store = s
	o.Endpoints = []webhook.Endpoint{{Name: "app", URL: url, Key: key, Timeout: 2 * time.Second, MaxAttempts: 100}}
	if o.Poll == 0 {
		o.Poll = 20 * time.Millisecond
	}
	w, err := webhook.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// TestReceiverDownThenBack: while the receiver answers 503 nothing is
// lost; once it is back it gets every event, each user's in order, and
// each once.
func TestReceiverDownThenBack(t *testing.T) {
	s := openBolt(t)
	rcv := newReceiver(t)
	rcv.down.Store(true)
	startWorker(t, s, rcv.URL, webhook.Options{BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	var want []string
	for i := range 30 {
		want = append(want, appendEvent(t, s, "app", fmt.Sprint("user", i%3), i))
	}
	time.Sleep(500 * time.Millisecond)
	if rcv.attempts.Load() == 0 {
		t.Fatal("no attempt while the receiver was down")
	}
	rcv.down.Store(false)
	got := rcv.waitFor(t, 30, 10*time.Second)
	checkOrderedOnce(t, got, want)
}

// checkOrderedOnce: every id in want delivered exactly once, and each
// user's deliveries in the order of want.
func checkOrderedOnce(t *testing.T, got []Delivery, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, d := range got {
		seen[d.ID]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("%s delivered %d times", id, seen[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d deliveries, want %d", len(got), len(want))
	}
	last := map[string]string{}
	for _, d := range got {
		if prev := last[d.User]; prev != "" && d.ID < prev {
			t.Errorf("user %s: %s delivered after %s", d.User, d.ID, prev)
		}
		last[d.User] = d.ID
	}
}

// TestGivesUpAndReplays: after MaxAttempts the record is failed (listed)
// and the user's next record goes; a replay delivers it.
func TestGivesUpAndReplays(t *testing.T) {
	s := openBolt(t)
	rcv := newReceiver(t)
	rcv.down.Store(true)
	key, _ := webhook.ParseSecret(testSecret)
	w, err := webhook.New(webhook.Options{Store: s, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
		Endpoints: []webhook.Endpoint{{Name: "app", URL: rcv.URL, Key: key, MaxAttempts: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	id := appendEvent(t, s, "app", "u", 1)
	for range 2 {
		w.Once(t.Context())
		w.Wait()
		time.Sleep(5 * time.Millisecond)
	}
	ob, _ := storage.As[storage.Outbox](s)
	failed, _ := ob.ListOutbox(t.Context(), storage.OutboxFilter{Failed: true})
	if len(failed) != 1 || failed[0].ID != id || failed[0].Attempts != 2 || failed[0].LastError == "" {
		t.Fatalf("failed: %+v", failed)
	}
	rcv.down.Store(false)
	if _, err := ob.ReplayOutbox(t.Context(), "app", id, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.Once(t.Context())
	w.Wait()
	if d := rcv.deliveries(); len(d) != 1 || d[0].ID != id {
		t.Fatalf("after replay: %v", d)
	}
}

// TestBadSignatureIsRetried: a receiver with another secret refuses every
// delivery (401), and the worker keeps the record.
func TestBadSignatureIsRetried(t *testing.T) {
	s := openBolt(t)
	rcv := newReceiver(t)
	other, _ := webhook.ParseSecret("whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	w, _ := webhook.New(webhook.Options{Store: s, Endpoints: []webhook.Endpoint{{Name: "app", URL: rcv.URL, Key: other}}})
	appendEvent(t, s, "app", "u", 1)
	w.Once(t.Context())
	w.Wait()
	if rcv.bad.Load() != 1 || len(rcv.deliveries()) != 0 {
		t.Fatalf("bad %d, delivered %d", rcv.bad.Load(), len(rcv.deliveries()))
	}
	ob, _ := storage.As[storage.Outbox](s)
	if p, _ := ob.ListOutbox(t.Context(), storage.OutboxFilter{}); len(p) != 1 || p[0].Attempts != 1 {
		t.Fatalf("pending: %+v", p)
	}
}

// TestTwoInstancesPostgres: two workers on one PostgreSQL database (two
// stores, two pools, as two instances) deliver every event exactly once,
// each user's in order.
func TestTwoInstancesPostgres(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	open := func() storage.Store {
		s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	rcv := newReceiver(t)
	startWorker(t, a, rcv.URL, webhook.Options{Owner: "a"})
	startWorker(t, b, rcv.URL, webhook.Options{Owner: "b"})
	var want []string
	for i := range 200 {
		s := a
		if i%2 == 1 {
			s = b
		}
		want = append(want, appendEvent(t, s, "app", fmt.Sprint("user", i%7), i))
	}
	rcv.waitFor(t, len(want), 30*time.Second)
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive now
	checkOrderedOnce(t, rcv.deliveries(), want)
}
