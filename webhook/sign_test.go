package webhook

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// The test vector of the Standard Webhooks reference libraries.
func TestSignVector(t *testing.T) {
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	key, _ := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	now := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,bm9wZQ== "+Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body))
	if err := Verify(key, h, body, now); err != nil {
		t.Fatal(err)
	}
	if err := Verify(key, h, []byte(`{"test": 1}`), now); err != ErrSignature {
		t.Fatalf("tampered body: %v", err)
	}
	if err := Verify(key, h, body, now.Add(Tolerance+time.Second)); err != ErrTimestamp {
		t.Fatalf("old timestamp: %v", err)
	}
	h2 := h.Clone()
	h2.Set("webhook-timestamp", strconv.Itoa(1614265331))
	if err := Verify(key, h2, body, now); err != ErrSignature {
		t.Fatalf("moved timestamp: %v", err)
	}
	h2.Del("webhook-id")
	if err := Verify(key, h2, body, now); err != ErrMissingHeader {
		t.Fatalf("missing header: %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_c2hvcnQ=", "whsec_" + string(make([]byte, 0))} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
}
