package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authex/authex/storage"
)

// storage.Outbox: both backends offer it, and Run runs these.

func newOutboxRecord(endpoint, userID string, t0 time.Time) storage.OutboxRecord {
	return storage.OutboxRecord{
		ID: uuid.Must(uuid.NewV7()).String(), Endpoint: endpoint, UserID: userID, Type: "user.created",
		Payload: []byte(`{"type":"user.created"}`), CreatedAt: t0, NextAttemptAt: t0,
		// Ignored by AppendOutbox:
		Attempts: 7, LeaseOwner: "x", LeaseUntil: t0.Add(time.Hour), LastError: "x", FailedAt: t0,
	}
}

func ids(rs []storage.OutboxRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID + "/" + r.Endpoint
	}
	return out
}

// testOutbox: append, claim, the lease, finish, retry, fail and replay.
func testOutbox(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	o := mustOffer[storage.Outbox](t, s)
	r := newOutboxRecord("app", "u1", t0)
	if err := o.AppendOutbox(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := o.AppendOutbox(ctx, r); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("append twice: %v, want ErrConflict", err)
	}
	pending, err := o.ListOutbox(ctx, storage.OutboxFilter{})
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending: %v, %v", pending, err)
	}
	got := pending[0]
	if got.ID != r.ID || got.Endpoint != "app" || got.UserID != "u1" || got.Type != r.Type || string(got.Payload) != string(r.Payload) ||
		!got.CreatedAt.Equal(t0) || got.CreatedAt.Location() != time.UTC || got.Attempts != 0 || got.LeaseOwner != "" ||
		!got.LeaseUntil.IsZero() || got.Failed() || got.LastError != "" {
		t.Fatalf("read back %+v", got)
	}
	if n, _ := o.ListOutbox(ctx, storage.OutboxFilter{Failed: true}); len(n) != 0 {
		t.Fatalf("failed: %v", n)
	}
	// Not due yet: nothing.
	if c, err := o.ClaimOutbox(ctx, "a", t0.Add(-time.Second), time.Minute, 10); err != nil || len(c) != 0 {
		t.Fatalf("claim before due: %v, %v", c, err)
	}
	c, err := o.ClaimOutbox(ctx, "a", t0, time.Minute, 10)
	if err != nil || len(c) != 1 || c[0].LeaseOwner != "a" || !c[0].LeaseUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	// Leased: nobody else gets it until the lease ends.
	if c, err := o.ClaimOutbox(ctx, "b", t0.Add(30*time.Second), time.Minute, 10); err != nil || len(c) != 0 {
		t.Fatalf("claim while leased: %v, %v", c, err)
	}
	if err := o.FinishOutbox(ctx, "app", r.ID, "b", t0.Add(time.Second)); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("finish by another owner: %v, want ErrStale", err)
	}
	if err := o.RetryOutbox(ctx, "app", r.ID, "a", t0.Add(time.Second), t0.Add(10*time.Second), "HTTP 500", false); err != nil {
		t.Fatal(err)
	}
	if c, _ := o.ClaimOutbox(ctx, "b", t0.Add(9*time.Second), time.Minute, 10); len(c) != 0 {
		t.Fatalf("claimed before the retry time: %v", c)
	}
	c, err = o.ClaimOutbox(ctx, "b", t0.Add(10*time.Second), time.Minute, 10)
	if err != nil || len(c) != 1 || c[0].Attempts != 1 || c[0].LastError != "HTTP 500" {
		t.Fatalf("claim after retry: %+v, %v", c, err)
	}
	// The lease has ended: its owner can no longer finish it.
	if err := o.FinishOutbox(ctx, "app", r.ID, "b", t0.Add(10*time.Second+time.Minute)); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("finish after the lease: %v, want ErrStale", err)
	}
	if err := o.RetryOutbox(ctx, "app", r.ID, "b", t0.Add(11*time.Second), time.Time{}, "gave up", true); err != nil {
		t.Fatal(err)
	}
	failed, err := o.ListOutbox(ctx, storage.OutboxFilter{Failed: true})
	if err != nil || len(failed) != 1 || failed[0].Attempts != 2 || !failed[0].FailedAt.Equal(t0.Add(11*time.Second)) {
		t.Fatalf("failed: %+v, %v", failed, err)
	}
	if c, _ := o.ClaimOutbox(ctx, "b", t0.Add(time.Hour), time.Minute, 10); len(c) != 0 {
		t.Fatalf("a failed record was claimed: %v", c)
	}
	if _, err := o.ReplayOutbox(ctx, "app", "nope", t0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("replay unknown: %v", err)
	}
	rp, err := o.ReplayOutbox(ctx, "app", r.ID, t0.Add(time.Hour))
	if err != nil || rp.Failed() || rp.Attempts != 0 || !rp.NextAttemptAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("replay: %+v, %v", rp, err)
	}
	c, err = o.ClaimOutbox(ctx, "c", t0.Add(time.Hour), time.Minute, 10)
	if err != nil || len(c) != 1 {
		t.Fatalf("claim after replay: %v, %v", c, err)
	}
	if err := o.FinishOutbox(ctx, "app", r.ID, "c", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := o.FinishOutbox(ctx, "app", r.ID, "c", t0.Add(time.Hour)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("finish twice: %v, want ErrNotFound", err)
	}
	if p, _ := o.ListOutbox(ctx, storage.OutboxFilter{}); len(p) != 0 {
		t.Fatalf("left after finish: %v", p)
	}
}

// testOutboxClaimOrder: only the oldest pending record of an (endpoint,
// user) is handed out, so a user's events go out in order; other users and
// other endpoints do not wait; a failed record stops holding back.
func testOutboxClaimOrder(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	o := mustOffer[storage.Outbox](t, s)
	var u1 []storage.OutboxRecord
	for i := range 3 {
		r := newOutboxRecord("app", "u1", t0.Add(time.Duration(i)*time.Second))
		u1 = append(u1, r)
		if err := o.AppendOutbox(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	u2 := newOutboxRecord("app", "u2", t0)
	other := u1[0]
	other.Endpoint = "crm" // the same event to a second endpoint
	for _, r := range []storage.OutboxRecord{u2, other} {
		if err := o.AppendOutbox(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(time.Minute)
	c, err := o.ClaimOutbox(ctx, "a", now, time.Minute, 10)
	want := fmt.Sprint([]string{u1[0].ID + "/app", other.ID + "/crm", u2.ID + "/app"})
	if err != nil || fmt.Sprint(ids(c)) != want {
		t.Fatalf("claim: %v, %v; want %v", ids(c), err, want)
	}
	// While u1's head is out, u1's next is not handed out, even when the
	// head's lease is still running for another owner.
	if c, _ := o.ClaimOutbox(ctx, "b", now, time.Minute, 10); len(c) != 0 {
		t.Fatalf("claimed behind a leased head: %v", ids(c))
	}
	for _, r := range c {
		if err := o.FinishOutbox(ctx, r.Endpoint, r.ID, "a", now); err != nil {
			t.Fatal(err)
		}
	}
	c, _ = o.ClaimOutbox(ctx, "b", now, time.Minute, 10)
	if fmt.Sprint(ids(c)) != fmt.Sprint([]string{u1[1].ID + "/app"}) {
		t.Fatalf("after finishing the head: %v", ids(c))
	}
	// A retry not yet due still holds its user's later records back.
	if err := o.RetryOutbox(ctx, "app", u1[1].ID, "b", now, now.Add(time.Hour), "down", false); err != nil {
		t.Fatal(err)
	}
	if c, _ := o.ClaimOutbox(ctx, "b", now, time.Minute, 10); len(c) != 0 {
		t.Fatalf("claimed behind a waiting retry: %v", ids(c))
	}
	c, _ = o.ClaimOutbox(ctx, "b", now.Add(time.Hour), time.Minute, 10)
	if len(c) != 1 || c[0].ID != u1[1].ID {
		t.Fatalf("retry: %v", ids(c))
	}
	// Given up: the next one goes.
	if err := o.RetryOutbox(ctx, "app", u1[1].ID, "b", now.Add(time.Hour), time.Time{}, "gave up", true); err != nil {
		t.Fatal(err)
	}
	c, _ = o.ClaimOutbox(ctx, "b", now.Add(time.Hour), time.Minute, 1)
	if len(c) != 1 || c[0].ID != u1[2].ID {
		t.Fatalf("after a failure: %v", ids(c))
	}
}

// testOutboxInTx: a record appended through a Transactor view commits
// and rolls back with the change it describes.
func testOutboxInTx(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	tr := transactor(t, s)
	u := newUser(t0, "ada@example.com", true)
	boom := errors.New("boom")
	err := tr.InTx(ctx, func(tx storage.Store) error {
		if err := tx.CreateUser(ctx, u, newIdentity(u, "google", "g-ada", t0)); err != nil {
			return err
		}
		if err := mustOffer[storage.Outbox](t, tx).AppendOutbox(ctx, newOutboxRecord("app", u.ID, t0)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if p, _ := mustOffer[storage.Outbox](t, s).ListOutbox(ctx, storage.OutboxFilter{}); len(p) != 0 {
		t.Fatalf("rolled back, yet the outbox holds %v", ids(p))
	}
	err = tr.InTx(ctx, func(tx storage.Store) error {
		if err := tx.CreateUser(ctx, u, newIdentity(u, "google", "g-ada", t0)); err != nil {
			return err
		}
		return mustOffer[storage.Outbox](t, tx).AppendOutbox(ctx, newOutboxRecord("app", u.ID, t0))
	})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := mustOffer[storage.Outbox](t, s).ListOutbox(ctx, storage.OutboxFilter{}); len(p) != 1 {
		t.Fatalf("committed, yet the outbox holds %v", ids(p))
	}
}

// testOutboxClaimConcurrent: many owners claiming at once never share a
// record, and each record is handed out once.
func testOutboxClaimConcurrent(t *testing.T, s storage.Store) {
	ctx, t0 := t.Context(), epoch()
	o := mustOffer[storage.Outbox](t, s)
	const users = 20
	for i := range users {
		if err := o.AppendOutbox(ctx, newOutboxRecord("app", fmt.Sprint("u", i), t0)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]string{}
	atOnce(8, func(i int) {
		c, err := o.ClaimOutbox(ctx, fmt.Sprint("owner", i), t0, time.Minute, 5)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range c {
			if prev, ok := seen[r.ID]; ok {
				t.Errorf("%s handed to %s and owner%d", r.ID, prev, i)
			}
			seen[r.ID] = fmt.Sprint("owner", i)
		}
	})
	if len(seen) != users {
		t.Fatalf("%d of %d records handed out", len(seen), users)
	}
}
