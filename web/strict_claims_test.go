package web_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestStrictClaimsTakeover (issue 11, finding 6): a validly signed id_token
// whose claims spell a claim twice or in another case used to decode with
// encoding/json's "case-insensitive, last wins" rule, so "SUB":"victim"
// signed its holder in as victim. Every such token is now malformed and
// writes nothing. A date sent as a string is malformed too.
func TestStrictClaimsTakeover(t *testing.T) {
	h := newHarness(t)
	h.exchangeOK("corp", h.idToken("victim", nil))
	before := h.snapshot()

	now := time.Now().Unix()
	base := fmt.Sprintf(`"iss":%q,"aud":%q,"iat":%d,"email":"attacker@example.com"`, h.iss.URL(), webClientID, now)
	exp := fmt.Sprintf(`"exp":%d`, now+3600)
	for name, body := range map[string]string{
		"SUB after sub":            `{` + base + `,` + exp + `,"sub":"attacker","SUB":"victim"}`,
		"sub twice":                `{` + base + `,` + exp + `,"sub":"attacker","sub":"victim"}`,
		"Email_Verified overrides": `{` + base + `,` + exp + `,"sub":"attacker","email_verified":false,"Email_Verified":true}`,
		"exp as a string":          `{` + base + `,"exp":"` + fmt.Sprint(now+3600) + `","sub":"attacker"}`,
	} {
		t.Run(name, func(t *testing.T) {
			token := h.iss.MintRaw(t, []byte(body))
			res := h.postJSON("/v1/exchange", map[string]any{"provider": "corp", "id_token": token})
			assertError(t, res, http.StatusUnauthorized, "invalid_token", "malformed")
			h.assertUnchanged(before)
		})
	}
}
