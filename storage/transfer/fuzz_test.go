package transfer_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/authex/authex/storage/transfer"
)

// fuzzStream is a small valid stream: every kind of line once.
var fuzzStream = strings.Join([]string{
	`{"kind":"header","format":"authex-export","version":1,"exported_at":"2025-05-01T12:00:00Z"}`,
	`{"kind":"secret","secret":{"name":"refresh_mac","value":"c2VjcmV0"}}`,
	`{"kind":"signing_key","signing_key":{"id":"k1","algorithm":"ES256","private_key":"MIGH","created_at":"2025-05-01T12:00:00Z"}}`,
	`{"kind":"user","user":{"id":"u1","email":"a@example.com","email_verified":true,"roles":["admin"]},"identities":[{"id":"i1","user_id":"u1","provider":"google","issuer":"https://accounts.google.com","subject":"1"}]}`,
	`{"kind":"user","user":{"id":"u2","password_hash":"$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}}`,
	`{"kind":"session","session":{"id":"s1","user_id":"u1","generation":3,"expires_at":"2026-01-01T00:00:00Z"}}`,
	`{"kind":"session","session":{"id":"s2","user_id":"u2","generation":0}}`,
	`{"kind":"audit","audit":{"id":"e1","time":"2025-05-01T12:00:00Z","type":"user.created","user_id":"u1"}}`,
	`{"kind":"end","counts":{"users":2,"identities":1,"sessions":2,"signing_keys":1,"secrets":1,"audit_events":1}}`,
}, "\n") + "\n"

// FuzzImport feeds any bytes to transfer.Read, the import's reader and
// checker (it spools to a temporary file; no store is involved): it never
// panics, leaves no spool file behind, accepts only a stream that ends
// with its end line (so the same stream cut before that line is refused),
// and its counts are consistent.
func FuzzImport(f *testing.F) {
	f.Add([]byte(fuzzStream))
	f.Add([]byte(strings.TrimSuffix(fuzzStream, "\n")))
	f.Add([]byte(`{"kind":"header","format":"authex-export","version":1}` + "\n" + `{"kind":"end","counts":{"users":0,"identities":0,"sessions":0,"signing_keys":0,"secrets":0,"audit_events":0}}`))
	f.Add([]byte(`{"kind":"header","format":"authex-export","version":2}`))
	f.Add([]byte(`{"kind":"header","format":"authex-export","version":1} {"kind":"end"}`))
	f.Add([]byte(`{"KIND":"header","Format":"authex-export","version":1,"kind":"end"}`))
	f.Add([]byte("\n\n"))
	f.Add([]byte{})
	if st, err := transfer.Read(strings.NewReader(fuzzStream)); err != nil {
		f.Fatalf("the valid seed: %v", err)
	} else {
		st.Close()
	}
	dir := f.TempDir()
	f.Setenv("TMPDIR", dir) // Read spools into os.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := transfer.Read(bytes.NewReader(data))
		if err == nil {
			c := st.Counts()
			if c.SkippedUsers > c.Users || c.SkippedSessions > c.Sessions || c.Identities < c.Users-c.SkippedUsers ||
				c.Users < 0 || c.Identities < 0 || c.Sessions < 0 || c.SigningKeys < 0 || c.Secrets < 0 || c.AuditEvents < 0 {
				t.Fatalf("inconsistent counts %+v", c)
			}
			if err := st.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			// The end line is the last: without it the stream is truncated.
			body := bytes.TrimSuffix(data, []byte("\n"))
			if cut := bytes.LastIndexByte(body, '\n'); cut >= 0 {
				if st, err := transfer.Read(bytes.NewReader(data[:cut+1])); err == nil {
					st.Close()
					t.Fatalf("accepted the stream without its last line: %q", data[:cut+1])
				}
			}
		}
		if left, err := os.ReadDir(dir); err != nil || len(left) > 0 {
			t.Fatalf("spool files left behind: %v %v", left, err)
		}
	})
}
