package emulator

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// authzParams are the authorize request's parameters, carried through the
// approval form unchanged.
type authzParams struct {
	ResponseType, ClientID, RedirectURI, Scope, State, Nonce, Challenge, Method string
	// ResponseMode: "" or "query" (a redirect), or "form_post" (an
	// auto-submitted POST to redirect_uri, as Sign in with Apple answers
	// and Auth.js's Apple provider asks for).
	ResponseMode string
}

func readAuthz(v url.Values) authzParams {
	return authzParams{
		ResponseType: v.Get("response_type"), ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"),
		Scope: v.Get("scope"), State: v.Get("state"), Nonce: v.Get("nonce"),
		Challenge: v.Get("code_challenge"), Method: v.Get("code_challenge_method"),
		ResponseMode: v.Get("response_mode"),
	}
}

// check validates an authorize request and, when it fails, answers it. A
// bad client or redirect_uri is shown on the page (redirecting to an
// unchecked URI would make us an open redirector); anything else goes back
// to the client as an OAuth error. It reports whether p passed.
func (e *Emulator) check(w http.ResponseWriter, r *http.Request, p authzParams) bool {
	if !e.knownClient(p.ClientID) {
		e.render(w, http.StatusBadRequest, page{Error: "unknown client_id " + strconv.Quote(p.ClientID) + "; this emulator accepts " + strings.Join(e.clientIDs, ", ")})
		return false
	}
	u, err := url.Parse(p.RedirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		e.render(w, http.StatusBadRequest, page{Error: "redirect_uri must be an absolute http(s) URL without a fragment"})
		return false
	}
	var code, desc string
	switch {
	case p.ResponseMode != "" && p.ResponseMode != "query" && p.ResponseMode != "form_post":
		code, desc = "invalid_request", "response_mode must be query or form_post"
		p.ResponseMode = "" // the error itself goes back in the query
	case p.ResponseType != "code":
		code, desc = "unsupported_response_type", "only response_type=code is supported"
	case p.Challenge == "":
		code, desc = "invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256"
	case p.Method != "S256":
		code, desc = "invalid_request", "code_challenge_method must be S256"
	case len(p.Challenge) != 43:
		code, desc = "invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"
	default:
		return true
	}
	e.redirect(w, r, p, url.Values{"error": {code}, "error_description": {desc}})
	return false
}

func (e *Emulator) handleAuthorizePage(w http.ResponseWriter, r *http.Request) {
	p := readAuthz(r.URL.Query())
	if !e.check(w, r, p) {
		return
	}
	e.render(w, http.StatusOK, page{P: p, Recent: e.recentPeople(), Issuer: e.issuer})
}

// handleApprove is the form's POST: approve (with an email and a name) or
// deny.
func (e *Emulator) handleApprove(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		e.render(w, http.StatusBadRequest, page{Error: "unreadable form"})
		return
	}
	p := readAuthz(r.PostForm)
	if !e.check(w, r, p) {
		return
	}
	if r.PostForm.Get("action") == "deny" {
		e.redirect(w, r, p, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}})
		return
	}
	person := Person{Email: strings.TrimSpace(r.PostForm.Get("email")), Name: strings.TrimSpace(r.PostForm.Get("name"))}
	if a, err := mail.ParseAddress(person.Email); err != nil || a.Address != person.Email {
		e.render(w, http.StatusBadRequest, page{P: p, Recent: e.recentPeople(), Issuer: e.issuer, Error: "type an email address like ada@example.com", Typed: person})
		return
	}
	if person.Name == "" {
		person.Name, _, _ = strings.Cut(person.Email, "@")
	}
	e.remember(person)
	code := randomToken()
	now := e.now()
	e.mu.Lock()
	e.sweep(now)
	if len(e.codes) >= maxPending {
		e.mu.Unlock()
		e.redirect(w, r, p, url.Values{"error": {"temporarily_unavailable"}, "error_description": {"too many pending codes"}})
		return
	}
	e.codes[code] = &grant{clientID: p.ClientID, redirectURI: p.RedirectURI, challenge: p.Challenge,
		nonce: p.Nonce, scope: p.Scope, person: person, expires: now.Add(codeTTL)}
	e.mu.Unlock()
	e.log.Info("emulator: sign-in approved", "client_id", p.ClientID, "email", person.Email)
	answer := url.Values{"code": {code}}
	if user := e.firstUser(p, person); user != "" {
		answer.Set("user", user)
	}
	e.redirect(w, r, p, answer)
}

// firstUser is Apple's `user` form field: the name (and email), posted
// only with form_post, only when the name scope was asked for, and only at
// the person's first authorization of the client; "" otherwise. The name
// is in no token, so a client that misses it never sees it again.
func (e *Emulator) firstUser(p authzParams, person Person) string {
	if p.ResponseMode != "form_post" || !slices.Contains(strings.Fields(p.Scope), "name") {
		return ""
	}
	key := p.ClientID + " " + Subject(person.Email)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.authorized[key] || len(e.authorized) >= maxPending {
		return ""
	}
	e.authorized[key] = true
	first, last, _ := strings.Cut(person.Name, " ")
	raw, _ := json.Marshal(map[string]any{"name": map[string]string{"firstName": first, "lastName": last}, "email": person.Email})
	return string(raw)
}

// redirect answers the client at its redirect_uri: in the query of a 302,
// or with response_mode=form_post in a page that POSTs the parameters
// there (OAuth 2.0 Form Post Response Mode).
func (e *Emulator) redirect(w http.ResponseWriter, r *http.Request, p authzParams, v url.Values) {
	if p.State != "" {
		v.Set("state", p.State)
	}
	v.Set("iss", e.issuer) // RFC 9207
	if p.ResponseMode == "form_post" {
		e.formPost(w, p.RedirectURI, v)
		return
	}
	u, _ := url.Parse(p.RedirectURI) // checked
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

type postField struct{ Name, Value string }

// formPostScript submits the form; the page's CSP admits only this script,
// by its hash.
const formPostScript = `document.getElementById("post").submit();`

var formPostCSP = func() string {
	sum := sha256.Sum256([]byte(formPostScript))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; form-action *"
}()

var formPostTmpl = template.Must(template.New("post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>authex emulator: signing in</title></head><body>
<form id="post" method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><button type="submit">Continue</button></noscript>
</form>
<script>` + formPostScript + `</script>
</body></html>
`))

func (e *Emulator) formPost(w http.ResponseWriter, action string, v url.Values) {
	fields := make([]postField, 0, len(v))
	for _, k := range slices.Sorted(maps.Keys(v)) {
		fields = append(fields, postField{k, v.Get(k)})
	}
	htmlHeaders(w, formPostCSP)
	if err := formPostTmpl.Execute(w, struct {
		Action string
		Fields []postField
	}{action, fields}); err != nil {
		e.log.Error("emulator: render form_post", "err", err)
	}
}

// handleToken is the token endpoint: authorization_code with PKCE.
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "body must be application/x-www-form-urlencoded")
		return
	}
	f := r.PostForm
	clientID := f.Get("client_id")
	if id, _, ok := r.BasicAuth(); ok {
		// client_secret_basic: RFC 6749 §2.3.1 form-encodes the id.
		if dec, err := url.QueryUnescape(id); err == nil {
			id = dec
		}
		if clientID != "" && clientID != id {
			oauthError(w, http.StatusBadRequest, "invalid_request", "client_id in the body and in Basic auth differ")
			return
		}
		clientID = id
	}
	// Any secret is accepted: the emulator has no registered secrets.
	if !e.knownClient(clientID) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client_id")
		return
	}
	if gt := f.Get("grant_type"); gt != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	answer, status, code, desc := e.redeem(clientID, f.Get("code"), f.Get("redirect_uri"), f.Get("code_verifier"))
	if status != http.StatusOK {
		oauthError(w, status, code, desc)
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

// redeem trades an authorization code for the token answer; on failure it
// answers the HTTP status and the OAuth error code and description.
func (e *Emulator) redeem(clientID, code, redirectURI, codeVerifier string) (answer map[string]any, status int, errCode, desc string) {
	now := e.now()
	e.mu.Lock()
	g := e.codes[code]
	delete(e.codes, code) // single use, whatever happens next
	e.mu.Unlock()
	switch {
	case g == nil || now.After(g.expires):
		return nil, http.StatusBadRequest, "invalid_grant", "authorization code is unknown, expired or already used"
	case g.clientID != clientID:
		return nil, http.StatusBadRequest, "invalid_grant", "authorization code was issued to another client"
	case g.redirectURI != redirectURI:
		return nil, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorize request's"
	case codeVerifier == "":
		return nil, http.StatusBadRequest, "invalid_grant", "code_verifier is required (PKCE)"
	}
	if subtle.ConstantTimeCompare([]byte(s256(codeVerifier)), []byte(g.challenge)) != 1 {
		return nil, http.StatusBadRequest, "invalid_grant", "code_verifier does not match code_challenge"
	}

	access := randomToken()
	user := Claims{"sub": Subject(g.person.Email), "email": g.person.Email, "email_verified": true, "name": g.person.Name}
	idc := Claims{"aud": clientID, "auth_time": now.Unix(), "at_hash": halfHash(access)}
	for k, v := range user {
		idc[k] = v
	}
	if g.nonce != "" {
		idc["nonce"] = g.nonce
	}
	idToken, err := e.Sign(idc)
	if err != nil {
		e.log.Error("emulator: sign id_token", "err", err)
		return nil, http.StatusInternalServerError, "server_error", "could not sign the id_token"
	}
	user["exp"] = now.Add(e.ttl).Unix()
	e.mu.Lock()
	e.sweep(now)
	if len(e.tokens) < maxPending {
		e.tokens[access] = user
	}
	e.mu.Unlock()
	scope := g.scope
	if scope == "" {
		scope = "openid"
	}
	return map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": int(e.ttl.Seconds()),
		"id_token": idToken, "scope": scope,
	}, http.StatusOK, "", ""
}

func (e *Emulator) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	e.mu.Lock()
	c, found := e.tokens[tok]
	if found {
		if exp, _ := c["exp"].(int64); e.now().Unix() > exp {
			delete(e.tokens, tok)
			found = false
		}
	}
	e.mu.Unlock()
	if !ok || !found {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "unknown or expired access token")
		return
	}
	out := Claims{}
	for k, v := range c {
		if k != "exp" {
			out[k] = v
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type page struct {
	P      authzParams
	Recent []Person
	Issuer string
	Error  string
	Typed  Person
}

func (e *Emulator) render(w http.ResponseWriter, status int, p page) {
	htmlHeaders(w, "default-src 'none'; style-src 'unsafe-inline'; form-action *")
	w.WriteHeader(status)
	if err := pageTmpl.Execute(w, p); err != nil {
		e.log.Error("emulator: render page", "err", err)
	}
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>authex emulator: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:16px system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem}.warn{background:#fff4d6;border:1px solid #e8c66a;padding:.5rem .75rem;border-radius:6px;font-size:.9rem}
.err{background:#fde2e2;border:1px solid #e09b9b;padding:.5rem .75rem;border-radius:6px}
label{display:block;margin:.75rem 0 .25rem}input[type=email],input[type=text]{width:100%;padding:.5rem;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1rem;cursor:pointer}.recent button{display:block;width:100%;text-align:left;margin:.4rem 0}
small{color:#666}
</style></head><body>
<h1>authex emulator</h1>
<p class="warn">Development sign-in: any email you type is accepted as verified. Never expose this page.</p>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
{{if .P.ClientID}}
<p>Sign in to <b>{{.P.ClientID}}</b>.</p>
{{if .Recent}}<div class="recent"><p>Recent:</p>
{{range .Recent}}<form method="post">{{template "params" $.P}}
<input type="hidden" name="email" value="{{.Email}}"><input type="hidden" name="name" value="{{.Name}}">
<button type="submit" name="action" value="approve" data-email="{{.Email}}">{{.Name}} <small>&lt;{{.Email}}&gt;</small></button></form>
{{end}}</div><p>Or another account:</p>{{end}}
<form method="post" id="signin">{{template "params" .P}}
<label for="email">Email</label><input id="email" name="email" type="email" required autofocus value="{{.Typed.Email}}" placeholder="ada@example.com">
<label for="name">Name</label><input id="name" name="name" type="text" value="{{.Typed.Name}}" placeholder="Ada Lovelace">
<button id="approve" type="submit" name="action" value="approve">Approve</button>
<button id="deny" type="submit" name="action" value="deny" formnovalidate>Deny</button>
</form>
<p><small>Issuer {{.Issuer}}</small></p>
{{end}}
</body></html>
{{define "params"}}<input type="hidden" name="response_type" value="{{.ResponseType}}">
<input type="hidden" name="client_id" value="{{.ClientID}}"><input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="scope" value="{{.Scope}}"><input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="nonce" value="{{.Nonce}}"><input type="hidden" name="code_challenge" value="{{.Challenge}}">
<input type="hidden" name="code_challenge_method" value="{{.Method}}"><input type="hidden" name="response_mode" value="{{.ResponseMode}}">{{end}}
`))
