package emulator_test

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authex/authex/exchange"
)

var (
	formAction = regexp.MustCompile(`<form id="post" method="post" action="([^"]*)">`)
	formField  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// submitFormPost is what the browser does with a form_post page: it POSTs
// the page's hidden fields to the form's action. It returns the action and
// the fields.
func submitFormPost(t *testing.T, page []byte) (string, url.Values) {
	t.Helper()
	m := formAction.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form_post form in:\n%s", page)
	}
	fields := url.Values{}
	for _, f := range formField.FindAllSubmatch(page, -1) {
		fields.Set(html.UnescapeString(string(f[1])), html.UnescapeString(string(f[2])))
	}
	action := html.UnescapeString(string(m[1]))
	res, err := http.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST to the callback: %d", res.StatusCode)
	}
	return action, fields
}

// approveFormPost approves f (with response_mode=form_post) on the
// authorize page and returns the page the approval answers.
func approveFormPost(t *testing.T, base string, f url.Values, email, name string) *http.Response {
	t.Helper()
	c := noRedirects()
	res, err := c.Get(base + "/emulator/authorize?" + f.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="response_mode" value="form_post"`) {
		t.Fatalf("authorize page does not carry response_mode: %d %s", res.StatusCode, page)
	}
	form := url.Values{}
	for k, v := range f {
		form[k] = v
	}
	form.Set("email", email)
	form.Set("name", name)
	form.Set("action", "approve")
	res, err = c.PostForm(base+"/emulator/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestFormPostNonceFlowAtAuthex walks the flow Auth.js's Apple provider
// runs, against the emulator mounted in a real authex: authorize with a
// nonce and response_mode=form_post, the callback a POST of code, state,
// iss and (first time only) user; the code redeemed for an id_token that
// carries the nonce; that id_token exchanged by the Next.js server, a
// client with verifies_nonce, without the nonce; then refused as a replay.
func TestFormPostNonceFlowAtAuthex(t *testing.T) {
	const secret = "nextjs-secret-0123456789"
	var callbacks []url.Values
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
			http.Error(w, "form_post expected", http.StatusBadRequest)
			return
		}
		callbacks = append(callbacks, r.PostForm)
	}))
	t.Cleanup(app.Close)
	callbackURL := app.URL + "/api/auth/callback/apple"

	base, em := authexWithEmulator(t, []exchange.ClientConfig{{ID: "nextjs", Secret: secret, VerifiesNonce: true}, {ID: "ios", Public: true}})

	f := defaultFlow()
	f.redirectURI = callbackURL
	params := f.values()
	params.Set("response_mode", "form_post")
	params.Set("scope", "openid name email")

	signIn := func() url.Values {
		t.Helper()
		res := approveFormPost(t, base, params, "tim@example.com", "Tim Apple")
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'sha256-") {
			t.Fatalf("form_post answer: %d %v %s", res.StatusCode, res.Header, page)
		}
		action, fields := submitFormPost(t, page)
		if action != callbackURL {
			t.Fatalf("form posts to %q, want %q", action, callbackURL)
		}
		got := callbacks[len(callbacks)-1]
		if got.Encode() != fields.Encode() || got.Get("state") != f.state || got.Get("iss") != em.Issuer() || got.Get("code") == "" {
			t.Fatalf("callback received %v", got)
		}
		return got
	}

	first := signIn()
	var user struct {
		Name  struct{ FirstName, LastName string }
		Email string
	}
	if err := json.Unmarshal([]byte(first.Get("user")), &user); err != nil || user.Name.FirstName != "Tim" ||
		user.Name.LastName != "Apple" || user.Email != "tim@example.com" {
		t.Fatalf("first form_post user field %q: %+v %v", first.Get("user"), user, err)
	}
	if second := signIn(); second.Has("user") {
		t.Fatalf("user field posted again at the second sign-in: %v", second)
	}

	status, tok := token(t, base, tokenForm(first.Get("code"), callbackURL, verifier), clientID)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	idToken := tok["id_token"].(string)
	if claims := jwtClaims(t, idToken); claims["nonce"] != f.nonce {
		t.Fatalf("id_token nonce %v, want the authorize request's %q", claims["nonce"], f.nonce)
	}

	cred := map[string]any{"provider": "dev", "id_token": idToken, "profile": map[string]any{"name": "Tim Apple"}}
	if status, m := postExchange(t, base, map[string]any{"provider": "dev", "id_token": idToken, "client_id": "ios"}, "", ""); status != 401 || m["reason"] != "nonce_mismatch" {
		t.Fatalf("public client without nonce: %d %v", status, m)
	}
	if status, m := postExchange(t, base, cred, "nextjs", secret); status != http.StatusOK {
		t.Fatalf("verifying client: %d %v", status, m)
	}
	if status, m := postExchange(t, base, cred, "nextjs", secret); status != 401 || m["reason"] != "replayed" {
		t.Fatalf("replay: %d %v", status, m)
	}
}

// TestFormPostRefusals: an unknown response_mode goes back as an error in
// the query; a denial with form_post is posted like an answer.
func TestFormPostRefusals(t *testing.T) {
	_, srv := newEmulator(t)
	params := defaultFlow().values()
	params.Set("response_mode", "fragment")
	res, err := noRedirects().Get(srv.URL + "/emulator/authorize?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" || !strings.Contains(loc.Query().Get("error_description"), "response_mode") {
		t.Fatalf("response_mode=fragment: %d %s", res.StatusCode, loc)
	}

	params.Set("response_mode", "form_post")
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	form.Set("action", "deny")
	res, err = noRedirects().PostForm(srv.URL+"/emulator/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="error" value="access_denied"`) ||
		!strings.Contains(string(page), `action="`+redirect+`"`) {
		t.Fatalf("denied form_post: %d %s", res.StatusCode, page)
	}
}

func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
