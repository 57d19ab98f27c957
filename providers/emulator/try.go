package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The landing page ({issuer}/) and "try a sign-in": the whole code flow
// (PKCE, state, nonce) run by the emulator as its own client, ending on a
// page that shows the id_token and the curl that exchanges it at authex.
// It is what `serve --dev` tells the developer to open: a sign-in in the
// browser with no app to write first.

// tryTTL bounds how long a started sign-in waits for its callback.
const tryTTL = 10 * time.Minute

// tryFlow is what the emulator-as-client keeps between /try and its
// callback, as an app keeps it in a cookie.
type tryFlow struct {
	verifier, nonce string
	expires         time.Time
}

func (e *Emulator) tryRedirectURI() string { return e.issuer + "/try/callback" }

func (e *Emulator) handleLanding(w http.ResponseWriter, r *http.Request) {
	e.renderTry(w, http.StatusOK, tryPage{Issuer: e.issuer, ClientIDs: strings.Join(e.clientIDs, ", "), Exchange: e.exchangeURL})
}

// handleTryStart starts a sign-in as a client would: a fresh PKCE
// verifier, state and nonce, then the authorize page.
func (e *Emulator) handleTryStart(w http.ResponseWriter, r *http.Request) {
	verifier, state, nonce := randomToken(), randomToken(), randomToken()[:22]
	now := e.now()
	e.mu.Lock()
	e.sweep(now)
	full := len(e.tries) >= maxPending
	if !full {
		e.tries[state] = tryFlow{verifier: verifier, nonce: nonce, expires: now.Add(tryTTL)}
	}
	e.mu.Unlock()
	if full {
		e.renderTry(w, http.StatusServiceUnavailable, tryPage{Issuer: e.issuer, Error: "too many sign-ins in progress; try again later"})
		return
	}
	q := url.Values{
		"response_type": {"code"}, "client_id": {e.clientIDs[0]}, "redirect_uri": {e.tryRedirectURI()},
		"scope": {"openid email profile"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"},
	}
	http.Redirect(w, r, e.issuer+"/authorize?"+q.Encode(), http.StatusFound)
}

// handleTryCallback ends the sign-in: it checks state, redeems the code
// with the verifier and shows the id_token.
func (e *Emulator) handleTryCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	e.mu.Lock()
	f, ok := e.tries[state]
	delete(e.tries, state) // one callback per sign-in
	e.mu.Unlock()
	page := tryPage{Issuer: e.issuer, ClientIDs: strings.Join(e.clientIDs, ", "), Exchange: e.exchangeURL}
	switch {
	case !ok || e.now().After(f.expires):
		page.Error = "this sign-in is unknown, expired or already finished; start again"
		e.renderTry(w, http.StatusBadRequest, page)
		return
	case q.Get("error") != "":
		page.Error = "the sign-in ended with " + q.Get("error") + ": " + q.Get("error_description")
		e.renderTry(w, http.StatusOK, page)
		return
	}
	answer, status, code, desc := e.redeem(e.clientIDs[0], q.Get("code"), e.tryRedirectURI(), f.verifier)
	if status != http.StatusOK {
		page.Error = "the code was refused: " + code + ": " + desc
		e.renderTry(w, http.StatusBadRequest, page)
		return
	}
	idToken, _ := answer["id_token"].(string)
	page.IDToken, page.Nonce = idToken, f.nonce
	page.Claims = claimsOf(idToken)
	if e.exchangeURL != "" {
		body, _ := json.Marshal(map[string]string{"provider": e.provider, "id_token": idToken, "nonce": f.nonce})
		page.Curl = "curl -s " + e.exchangeURL + " -H 'Content-Type: application/json' -d '" + string(body) + "'"
	}
	e.renderTry(w, http.StatusOK, page)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// claimsOf is the id_token's payload, indented, for the page: it was
// signed here a moment ago.
func claimsOf(idToken string) string {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	out, _ := json.MarshalIndent(m, "", "  ")
	return string(out)
}

type tryPage struct {
	Issuer, ClientIDs, Exchange string
	Error                       string
	IDToken, Nonce, Claims      string
	Curl                        string
}

func (e *Emulator) renderTry(w http.ResponseWriter, status int, p tryPage) {
	htmlHeaders(w, "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	if err := tryTmpl.Execute(w, p); err != nil {
		e.log.Error("emulator: render page", "err", err)
	}
}

var tryTmpl = template.Must(template.New("try").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>authex emulator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:16px system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem}.warn{background:#fff4d6;border:1px solid #e8c66a;padding:.5rem .75rem;border-radius:6px;font-size:.9rem}
.err{background:#fde2e2;border:1px solid #e09b9b;padding:.5rem .75rem;border-radius:6px}
pre{background:#f4f4f4;padding:.75rem;border-radius:6px;white-space:pre-wrap;word-break:break-all;font-size:.8rem}
a.button{display:inline-block;padding:.5rem 1rem;border:1px solid #888;border-radius:6px;text-decoration:none;color:#222}
</style></head><body>
<h1>authex emulator</h1>
<p class="warn">Development OpenID provider: any email you type signs in, verified. Never expose it.</p>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
{{if .IDToken}}
<p>Signed in. The emulator's id_token (it carries the nonce <code>{{.Nonce}}</code> of this sign-in):</p>
<pre id="claims">{{.Claims}}</pre>
{{if .Curl}}<p>Exchange it at authex for authex's tokens (once: a second use is refused as <code>replayed</code>):</p>
<pre id="curl">{{.Curl}}</pre>{{end}}
<details><summary>The raw id_token</summary><pre id="id_token">{{.IDToken}}</pre></details>
{{end}}
<p><a class="button" id="try" href="{{.Issuer}}/try">{{if .IDToken}}Sign in again{{else}}Try a sign-in{{end}}</a></p>
<p>Issuer <code>{{.Issuer}}</code>, client id(s) <code>{{.ClientIDs}}</code>:
<a href="{{.Issuer}}/.well-known/openid-configuration">discovery</a>.
Point an OpenID client (Auth.js: <code>issuer</code>, <code>clientId</code>, any secret) here,
or mint an id_token directly: <code>curl -s {{.Issuer}}/mint -d '{"email":"ada@example.com"}'</code>.</p>
</body></html>
`))
