// Package webhook delivers the events exchange writes to the outbox
// (storage.Outbox) to the configured HTTP endpoints, signed per the
// Standard Webhooks specification (https://www.standardwebhooks.com/):
// headers webhook-id, webhook-timestamp (Unix seconds) and
// webhook-signature ("v1," + base64 HMAC-SHA256 of "id.timestamp.body",
// keyed with the base64 after the secret's "whsec_" prefix). It imports
// storage only: it never runs inside a request.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every secret, as the specification serialises it.
const SecretPrefix = "whsec_"

// Secret lengths the specification allows (the decoded key, in bytes).
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// ParseSecret decodes "whsec_" + base64 into the HMAC key. The error says
// what is wrong, never the value.
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("must start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, errors.New("is not standard base64 after " + SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("must decode to %d to %d bytes, not %d", MinSecretBytes, MaxSecretBytes, len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature value for one delivery.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verification errors.
var (
	ErrMissingHeader = errors.New("webhook: a webhook-id, webhook-timestamp or webhook-signature header is missing")
	ErrTimestamp     = errors.New("webhook: webhook-timestamp is not a Unix time within the tolerance")
	ErrSignature     = errors.New("webhook: no signature matches")
)

// Tolerance is how far webhook-timestamp may be from the receiver's clock.
const Tolerance = 5 * time.Minute

// Verify checks a delivery as a receiver does (the specification's
// algorithm): the three headers, the timestamp within Tolerance of now,
// and one of the space-separated "v1," signatures, compared in constant
// time. Receivers written in Go may use it; docs/events.md has it for
// Node and Python.
func Verify(key []byte, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeader
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return ErrTimestamp
	}
	want := Sign(key, id, sec, body)
	for _, sig := range strings.Fields(sigs) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return ErrSignature
}
