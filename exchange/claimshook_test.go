package exchange

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzHookAnswer: the claims hook's answer decoder never panics, and
// what it accepts has no reserved or badly named claim and stays within
// bounds.
func FuzzHookAnswer(f *testing.F) {
	for _, s := range []string{
		`{"claims":{"tenant":"acme","app_roles":["a"]}}`,
		`{"claims":{"sub":"victim"}}`,
		`{"claims":{"a":1,"a":2}}`,
		`{"claims":{"Sub":"x"}}`,
		`{"claims":null}`,
		`{"claims":{"x":null}}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		claims, err := parseHookAnswer(raw)
		if err != nil {
			return
		}
		if len(claims) > maxHookClaims {
			t.Fatalf("%d claims accepted", len(claims))
		}
		for name := range claims {
			if reservedClaims[name] || !hookClaimName.MatchString(name) {
				t.Fatalf("claim %q accepted", name)
			}
		}
		// Whatever is accepted signs into a token whose own claims win.
		w := withExtra{AccessClaims: AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u", ExpiresAt: jwt.NewNumericDate(time.Unix(1, 0))}}, extra: claims}
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || m["sub"] != "u" {
			t.Fatalf("token claims %s", b)
		}
	})
}
