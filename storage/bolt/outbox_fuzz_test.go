package bolt

import (
	"testing"
	"time"

	"github.com/authex/authex/storage"
)

// FuzzDecodeOutbox: a damaged outbox record is an error, never a panic;
// what decodes encodes and decodes to itself.
func FuzzDecodeOutbox(f *testing.F) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 123456000, time.UTC)
	good, _ := encodeOutbox(storage.OutboxRecord{ID: "msg_1", Endpoint: "app", UserID: "u", Type: "user.created",
		Payload: []byte(`{"type":"user.created"}`), CreatedAt: t0, NextAttemptAt: t0, Attempts: 2, LeaseOwner: "a", LeaseUntil: t0})
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"payload":"!!"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeOutbox(b)
		if err != nil {
			return
		}
		again, err := encodeOutbox(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeOutbox(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
