package webhook

import (
	"net/http"
	"testing"
	"time"
)

// FuzzVerify: any headers and body are refused or accepted without a
// panic, and what verifies is exactly what Sign made.
func FuzzVerify(f *testing.F) {
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`))
	f.Add("", "", "", []byte{})
	f.Add("a", "-99999999999999999999", "v1, v1,,, v2,abc", []byte("x"))
	key, _ := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	now := time.Unix(1614265330, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		if Verify(key, h, body, now) == nil {
			if h.Get("webhook-id") == "" {
				t.Fatal("verified without an id")
			}
		}
	})
}

// FuzzParseSecret: no panic; an accepted secret has a key of a length the
// specification allows.
func FuzzParseSecret(f *testing.F) {
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	f.Add("whsec_")
	f.Add("whsec_====")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseSecret(s)
		if err == nil && (len(key) < MinSecretBytes || len(key) > MaxSecretBytes) {
			t.Fatalf("accepted a %d-byte key", len(key))
		}
	})
}
