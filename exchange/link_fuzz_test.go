package exchange

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var (
	fuzzLinkKey = bytes.Repeat([]byte{7}, 32)
	fuzzLinkIss = "https://auth.example.com"
	fuzzLinkNow = time.Unix(1_800_000_000, 0)
)

func sealedForFuzz(tb testing.TB, c linkClaims) string {
	tb.Helper()
	tok, err := sealLinkToken(fuzzLinkKey, fuzzLinkIss, c)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// FuzzLinkToken: the link_token parser never panics, opens only what
// sealLinkToken made under the same key and issuer, and round-trips.
func FuzzLinkToken(f *testing.F) {
	good := linkClaims{Owner: "o", Provider: "corp", IDPIssuer: "https://idp", IDPSubject: "s", Email: "a@b.c",
		EmailVerified: true, ExpiresAt: fuzzLinkNow.Add(time.Minute).Unix()}
	f.Add(sealedForFuzz(f, good), "corp", "s", int64(60))
	f.Add("lt1.", "", "", int64(0))
	f.Add("lt1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "p", "s", int64(-1))
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "p", "s", int64(1))
	f.Add("lt1."+strings.Repeat("A", 5000), "p", "s", int64(1))
	f.Fuzz(func(t *testing.T, raw, provider, subject string, ttl int64) {
		if c, err := openLinkToken(fuzzLinkKey, fuzzLinkIss, raw, fuzzLinkNow); err == nil {
			if c.Owner == "" || c.Provider == "" || c.IDPIssuer == "" || c.IDPSubject == "" || c.ExpiresAt <= fuzzLinkNow.Unix() {
				t.Fatalf("opened an incomplete or expired token: %+v", c)
			}
		}
		// Round trip of what we seal ourselves.
		in := linkClaims{Owner: "owner", Provider: provider, IDPIssuer: "https://idp", IDPSubject: subject,
			ExpiresAt: fuzzLinkNow.Unix() + ttl}
		tok := sealedForFuzz(t, in)
		out, err := openLinkToken(fuzzLinkKey, fuzzLinkIss, tok, fuzzLinkNow)
		// Provider names come from the config and subjects from decoded
		// JSON: always UTF-8, which JSON keeps as it is.
		if !utf8.ValidString(provider) || !utf8.ValidString(subject) {
			return
		}
		complete := provider != "" && subject != "" && in.ExpiresAt > fuzzLinkNow.Unix() && len(tok) <= maxLinkToken
		if complete != (err == nil) {
			t.Fatalf("sealed %+v (%d bytes): err %v", in, len(tok), err)
		}
		if err == nil && *out != in {
			t.Fatalf("round trip: %+v != %+v", *out, in)
		}
		// Another issuer or key never opens it.
		if _, err := openLinkToken(fuzzLinkKey, fuzzLinkIss+"/x", tok, fuzzLinkNow); err == nil {
			t.Fatal("opened under another issuer")
		}
		if _, err := openLinkToken(bytes.Repeat([]byte{8}, 32), fuzzLinkIss, tok, fuzzLinkNow); err == nil {
			t.Fatal("opened under another key")
		}
	})
}
