package verify

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// delivery is one delivery signed now by authex's signer.
func delivery(t *testing.T, body string) http.Header {
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Unix()
	h := http.Header{}
	h.Set("webhook-id", "msg_0193test")
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", "v1,bm9wZQ== "+webhook.Sign(key, "msg_0193test", ts, []byte(body)))
	return h
}

const body = `{"type":"user.created","timestamp":"2026-12-03T09:00:00Z","data":{"user":{"id":"u1"}}}`

func TestGoSnippet(t *testing.T) {
	h := delivery(t, body)
	if err := Verify(secret, h, []byte(body), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := Verify(secret, h, []byte(body+" "), time.Now()); err == nil {
		t.Fatal("a tampered body verified")
	}
	if err := Verify(secret, h, []byte(body), time.Now().Add(6*time.Minute)); err == nil {
		t.Fatal("an old delivery verified")
	}
}

// runSnippet runs a snippet's check on a delivery signed by authex, and on
// the same delivery with the body changed, and wants "ok" then "refused".
func runSnippet(t *testing.T, tool string, args ...string) {
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed (.ci/run installs it)", tool)
	}
	h := delivery(t, body)
	for _, tc := range []struct{ body, want string }{{body, "ok"}, {body + " ", "refused"}} {
		cmd := exec.Command(tool, args...)
		cmd.Dir = "."
		cmd.Env = append(os.Environ(), "SECRET="+secret, "BODY="+tc.body, "WID="+h.Get("webhook-id"),
			"WTS="+h.Get("webhook-timestamp"), "WSIG="+h.Get("webhook-signature"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Fatalf("%s: %v %q, want %s", tool, err, out, tc.want)
		}
	}
}

func TestNodeSnippet(t *testing.T) {
	runSnippet(t, "node", "--input-type=module", "-e", `
import { verifyWebhook } from "./verify.mjs";
const e = process.env;
try {
  verifyWebhook(e.SECRET, {"webhook-id": e.WID, "webhook-timestamp": e.WTS, "webhook-signature": e.WSIG}, Buffer.from(e.BODY));
  console.log("ok");
} catch (err) { console.log("refused"); }`)
}

func TestPythonSnippet(t *testing.T) {
	runSnippet(t, "python3", "-c", `
import os
from verify import verify_webhook
e = os.environ
try:
    verify_webhook(e["SECRET"], {"webhook-id": e["WID"], "webhook-timestamp": e["WTS"], "webhook-signature": e["WSIG"]}, e["BODY"].encode())
    print("ok")
except ValueError:
    print("refused")`)
}

// TestSnippetsInDocs: docs/events.md shows these files as they are.
func TestSnippetsInDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "events.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"verify.mjs", "verify.py", "verify.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(doc), string(src)) {
			t.Errorf("docs/events.md does not show examples/webhooks/%s as it is", f)
		}
	}
}
