package providertest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// CodeGrant is an authorization code the Issuer's token endpoint accepts:
// what the request must carry, and what it answers.
type CodeGrant struct {
	ClientID     string // client authentication, HTTP Basic or in the form
	ClientSecret string
	RedirectURI  string // must equal the request's redirect_uri
	CodeVerifier string // PKCE: must equal the request's code_verifier ("" = none sent)
	IDToken      string // answered as id_token ("" = no id_token in the answer)
	AccessToken  string // answered as access_token ("" = "at-" + the code)
}

// AddCode registers a one-time authorization code with the token endpoint.
// A request that fails a check is answered 400 invalid_grant (or 401
// invalid_client) and leaves the code usable; a successful one uses it up.
func (iss *Issuer) AddCode(code string, g CodeGrant) {
	iss.codesMu.Lock()
	defer iss.codesMu.Unlock()
	iss.codes[code] = g
}

// TokenCalls counts requests to the token endpoint.
func (iss *Issuer) TokenCalls() int { return int(iss.tokenCalls.Load()) }

func (iss *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	iss.tokenCalls.Add(1)
	if iss.refuse(w) {
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	id, secret := clientCredentials(r)
	code := r.PostForm.Get("code")
	iss.codesMu.Lock()
	defer iss.codesMu.Unlock()
	g, ok := iss.codes[code]
	switch {
	case !ok:
		oauthError(w, http.StatusBadRequest, "invalid_grant")
	case id != g.ClientID || secret != g.ClientSecret:
		oauthError(w, http.StatusUnauthorized, "invalid_client")
	case r.PostForm.Get("redirect_uri") != g.RedirectURI, r.PostForm.Get("code_verifier") != g.CodeVerifier:
		oauthError(w, http.StatusBadRequest, "invalid_grant")
	default:
		delete(iss.codes, code)
		at := g.AccessToken
		if at == "" {
			at = "at-" + code
		}
		answer := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 3600}
		if g.IDToken != "" {
			answer["id_token"] = g.IDToken
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, answer)
	}
}

// clientCredentials reads client authentication from HTTP Basic (RFC 6749
// §2.3.1: both parts form-encoded) or from the form.
func clientCredentials(r *http.Request) (id, secret string) {
	if u, p, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
		return id, secret
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "providertest: " + code})
}

// bearer returns the token of an "Authorization: Bearer|token X" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	for _, p := range []string{"Bearer ", "bearer ", "token "} {
		if strings.HasPrefix(h, p) {
			return strings.TrimPrefix(h, p)
		}
	}
	return ""
}

// downable is an on/off switch shared by the fakes.
type downable struct{ down atomic.Bool }

// SetDown makes every endpoint answer 503 (true) or serve again.
func (d *downable) SetDown(down bool) { d.down.Store(down) }

func (d *downable) refuse(w http.ResponseWriter) bool {
	if d.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	}
	return false
}

// GitHubUser is an account of the fake GitHub API.
type GitHubUser struct {
	ID        int64  `json:"id"`
	Login     string `json:"login"`
	Name      string `json:"name"`
	AvatarURL string `json:"avatar_url"`
}

// GitHubEmail is one entry of GET /user/emails.
type GitHubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// GitHubToken is a user access token the fake GitHub API knows.
type GitHubToken struct {
	ClientID     string // the OAuth app it was issued to
	User         GitHubUser
	Emails       []GitHubEmail
	NoEmailScope bool // GET /user/emails answers 403, as without user:email
}

// GitHub is a fake of the parts of GitHub's API that sign-in uses:
//
//	POST /applications/{client_id}/token  app check (Basic client_id:secret)
//	GET  /user, GET /user/emails          with the user's token
//	POST /login/oauth/access_token        code exchange (codes from AddCode)
type GitHub struct {
	downable
	srv *httptest.Server

	mu     sync.Mutex
	apps   map[string]string // client id -> secret
	tokens map[string]GitHubToken
	codes  map[string]string // code -> token

	appChecks atomic.Int64
	userCalls atomic.Int64
}

// NewGitHub starts a fake GitHub API; tb.Cleanup closes it.
func NewGitHub(tb testing.TB) *GitHub {
	tb.Helper()
	g := &GitHub{apps: map[string]string{}, tokens: map[string]GitHubToken{}, codes: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /applications/{client_id}/token", g.serveAppCheck)
	mux.HandleFunc("GET /user", g.serveUser)
	mux.HandleFunc("GET /user/emails", g.serveEmails)
	mux.HandleFunc("POST /login/oauth/access_token", g.serveCode)
	g.srv = httptest.NewServer(mux)
	tb.Cleanup(g.srv.Close)
	return g
}

// URL is the API base (api_url).
func (g *GitHub) URL() string { return g.srv.URL }

// AddApp registers an OAuth app and its secret.
func (g *GitHub) AddApp(clientID, secret string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.apps[clientID] = secret
}

// AddToken registers a user access token.
func (g *GitHub) AddToken(token string, t GitHubToken) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokens[token] = t
}

// AddCode registers a one-time code that exchanges for token (whose app
// must match the requesting client).
func (g *GitHub) AddCode(code, token string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.codes[code] = token
}

// AppChecks counts POST /applications/{client_id}/token requests.
func (g *GitHub) AppChecks() int { return int(g.appChecks.Load()) }

// UserCalls counts GET /user and GET /user/emails requests.
func (g *GitHub) UserCalls() int { return int(g.userCalls.Load()) }

func (g *GitHub) serveAppCheck(w http.ResponseWriter, r *http.Request) {
	g.appChecks.Add(1)
	if g.refuse(w) {
		return
	}
	clientID := r.PathValue("client_id")
	u, p, ok := r.BasicAuth()
	g.mu.Lock()
	secret, known := g.apps[clientID]
	g.mu.Unlock()
	if !ok || !known || u != clientID || p != secret {
		http.Error(w, `{"message":"Requires authentication"}`, http.StatusUnauthorized)
		return
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.AccessToken == "" {
		http.Error(w, `{"message":"Validation Failed"}`, http.StatusUnprocessableEntity)
		return
	}
	g.mu.Lock()
	t, found := g.tokens[body.AccessToken]
	g.mu.Unlock()
	if !found || t.ClientID != clientID {
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
		return
	}
	writeJSON(w, map[string]any{"id": 1, "token": body.AccessToken, "app": map[string]any{"client_id": clientID}, "user": t.User})
}

func (g *GitHub) userToken(w http.ResponseWriter, r *http.Request) (GitHubToken, bool) {
	g.userCalls.Add(1)
	if g.refuse(w) {
		return GitHubToken{}, false
	}
	g.mu.Lock()
	t, ok := g.tokens[bearer(r)]
	g.mu.Unlock()
	if !ok {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
	}
	return t, ok
}

func (g *GitHub) serveUser(w http.ResponseWriter, r *http.Request) {
	if t, ok := g.userToken(w, r); ok {
		writeJSON(w, t.User)
	}
}

func (g *GitHub) serveEmails(w http.ResponseWriter, r *http.Request) {
	t, ok := g.userToken(w, r)
	if !ok {
		return
	}
	if t.NoEmailScope {
		http.Error(w, `{"message":"Resource not accessible by integration"}`, http.StatusForbidden)
		return
	}
	emails := t.Emails
	if emails == nil {
		emails = []GitHubEmail{}
	}
	writeJSON(w, emails)
}

// serveCode answers like GitHub: 200 even for errors, with an error field.
func (g *GitHub) serveCode(w http.ResponseWriter, r *http.Request) {
	if g.refuse(w) {
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret := clientCredentials(r)
	g.mu.Lock()
	defer g.mu.Unlock()
	if s, ok := g.apps[id]; !ok || s != secret {
		writeJSON(w, map[string]string{"error": "incorrect_client_credentials"})
		return
	}
	token, ok := g.codes[r.PostForm.Get("code")]
	if !ok || g.tokens[token].ClientID != id {
		writeJSON(w, map[string]string{"error": "bad_verification_code"})
		return
	}
	delete(g.codes, r.PostForm.Get("code"))
	writeJSON(w, map[string]string{"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"})
}

// GoogleToken is an access token the fake Google API knows.
type GoogleToken struct {
	ClientID string // aud and azp in tokeninfo
	Subject  string
	Email    string
	Verified bool
	Name     string
	Domain   string // hd
	Expired  bool   // tokeninfo answers 400 invalid_token
}

// GoogleAPI fakes Google's tokeninfo and userinfo endpoints:
//
//	GET|POST /tokeninfo (access_token=...)  aud, azp, sub, expires_in as strings
//	GET      /userinfo (Bearer)             sub, email, email_verified, name, hd
type GoogleAPI struct {
	downable
	srv *httptest.Server

	mu     sync.Mutex
	tokens map[string]GoogleToken

	tokenInfoCalls atomic.Int64
	userInfoCalls  atomic.Int64
}

// NewGoogleAPI starts the fake; tb.Cleanup closes it.
func NewGoogleAPI(tb testing.TB) *GoogleAPI {
	tb.Helper()
	g := &GoogleAPI{tokens: map[string]GoogleToken{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/tokeninfo", g.serveTokenInfo)
	mux.HandleFunc("GET /userinfo", g.serveUserInfo)
	g.srv = httptest.NewServer(mux)
	tb.Cleanup(g.srv.Close)
	return g
}

// TokenInfoURL and UserInfoURL are the endpoints to configure.
func (g *GoogleAPI) TokenInfoURL() string { return g.srv.URL + "/tokeninfo" }
func (g *GoogleAPI) UserInfoURL() string  { return g.srv.URL + "/userinfo" }

// AddToken registers an access token.
func (g *GoogleAPI) AddToken(token string, t GoogleToken) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokens[token] = t
}

// UserInfoCalls counts userinfo requests.
func (g *GoogleAPI) UserInfoCalls() int { return int(g.userInfoCalls.Load()) }

// TokenInfoCalls counts tokeninfo requests.
func (g *GoogleAPI) TokenInfoCalls() int { return int(g.tokenInfoCalls.Load()) }

func (g *GoogleAPI) serveTokenInfo(w http.ResponseWriter, r *http.Request) {
	g.tokenInfoCalls.Add(1)
	if g.refuse(w) {
		return
	}
	_ = r.ParseForm()
	g.mu.Lock()
	t, ok := g.tokens[r.Form.Get("access_token")]
	g.mu.Unlock()
	if !ok || t.Expired {
		oauthError(w, http.StatusBadRequest, "invalid_token")
		return
	}
	writeJSON(w, map[string]string{
		"azp": t.ClientID, "aud": t.ClientID, "sub": t.Subject, "scope": "openid email profile",
		"expires_in": "3599", "email": t.Email, "email_verified": boolString(t.Verified), "access_type": "online",
	})
}

func (g *GoogleAPI) serveUserInfo(w http.ResponseWriter, r *http.Request) {
	g.userInfoCalls.Add(1)
	if g.refuse(w) {
		return
	}
	g.mu.Lock()
	t, ok := g.tokens[bearer(r)]
	g.mu.Unlock()
	if !ok || t.Expired {
		oauthError(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	answer := map[string]any{"sub": t.Subject, "email": t.Email, "email_verified": t.Verified, "name": t.Name}
	if t.Domain != "" {
		answer["hd"] = t.Domain
	}
	writeJSON(w, answer)
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// IntrospectedToken is an access token the fake OAuth 2 provider knows.
type IntrospectedToken struct {
	ClientID string
	Active   bool
	Subject  string
	UserInfo map[string]any // the userinfo answer
}

// OAuth2 fakes a plain OAuth 2 provider with RFC 7662 introspection
// (client-authenticated) and a userinfo endpoint:
//
//	POST /introspect  token=...        active, client_id, sub
//	GET  /userinfo    Bearer           the token's UserInfo
type OAuth2 struct {
	downable
	srv *httptest.Server

	mu      sync.Mutex
	clients map[string]string
	tokens  map[string]IntrospectedToken

	userInfoCalls atomic.Int64
}

// NewOAuth2 starts the fake; tb.Cleanup closes it.
func NewOAuth2(tb testing.TB) *OAuth2 {
	tb.Helper()
	o := &OAuth2{clients: map[string]string{}, tokens: map[string]IntrospectedToken{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /introspect", o.serveIntrospect)
	mux.HandleFunc("GET /userinfo", o.serveUserInfo)
	o.srv = httptest.NewServer(mux)
	tb.Cleanup(o.srv.Close)
	return o
}

func (o *OAuth2) URL() string              { return o.srv.URL }
func (o *OAuth2) IntrospectionURL() string { return o.srv.URL + "/introspect" }
func (o *OAuth2) UserInfoURL() string      { return o.srv.URL + "/userinfo" }

// AddClient registers a client allowed to introspect.
func (o *OAuth2) AddClient(id, secret string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clients[id] = secret
}

// AddToken registers an access token.
func (o *OAuth2) AddToken(token string, t IntrospectedToken) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tokens[token] = t
}

// UserInfoCalls counts userinfo requests.
func (o *OAuth2) UserInfoCalls() int { return int(o.userInfoCalls.Load()) }

func (o *OAuth2) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	if o.refuse(w) {
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret := clientCredentials(r)
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.clients[id]; !ok || s != secret {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	t, ok := o.tokens[r.PostForm.Get("token")]
	if !ok || !t.Active {
		writeJSON(w, map[string]any{"active": false})
		return
	}
	writeJSON(w, map[string]any{"active": true, "client_id": t.ClientID, "sub": t.Subject, "token_type": "Bearer"})
}

func (o *OAuth2) serveUserInfo(w http.ResponseWriter, r *http.Request) {
	o.userInfoCalls.Add(1)
	if o.refuse(w) {
		return
	}
	o.mu.Lock()
	t, ok := o.tokens[bearer(r)]
	o.mu.Unlock()
	if !ok || !t.Active {
		oauthError(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	writeJSON(w, t.UserInfo)
}
