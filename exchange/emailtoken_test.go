package exchange

import (
	"strings"
	"testing"

	"github.com/authex/authex/storage"
)

// FuzzParseEmailToken: the parser never panics, accepts only the exact
// shape newEmailToken makes, and answers the hash the store keeps.
func FuzzParseEmailToken(f *testing.F) {
	v, _ := newEmailToken(storage.TokenPurposeVerifyEmail)
	r, _ := newEmailToken(storage.TokenPurposeResetPassword)
	for _, s := range []string{v, r, "", "pr.", "xx." + strings.Repeat("A", 43), "pr." + strings.Repeat("A", 42) + "=",
		"pr." + strings.Repeat("_", 43), "pr:" + strings.Repeat("A", 43), strings.Repeat("A", 46)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		purpose, hash, err := parseEmailToken(s)
		if err != nil {
			if purpose != "" || hash != "" {
				t.Fatal("a refused token answered a purpose or hash")
			}
			return
		}
		if len(s) != emailTokenLen || hash != emailTokenHash(s) || emailTokenPrefix(purpose) != s[:2] {
			t.Fatalf("accepted %q as %s %s", s, purpose, hash)
		}
	})
}

func TestEmailTokenRoundTrip(t *testing.T) {
	for _, p := range []string{storage.TokenPurposeVerifyEmail, storage.TokenPurposeResetPassword} {
		tok, hash := newEmailToken(p)
		gp, gh, err := parseEmailToken(tok)
		if err != nil || gp != p || gh != hash {
			t.Fatalf("parse(%q) = %q %q %v", tok, gp, gh, err)
		}
	}
}
