package emulator_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func getPage(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// TestTrySignIn: the landing page's sign-in runs the code flow with PKCE,
// state and nonce as its own client and shows the id_token; without an
// ExchangeURL there is no curl. A denied sign-in ends on the page with the
// error; a callback with an unknown or spent state is refused.
func TestTrySignIn(t *testing.T) {
	em, srv := newEmulator(t)
	c := noRedirects()
	status, landing, hdr := getPage(t, c, srv.URL+"/emulator/")
	if status != http.StatusOK || !strings.Contains(landing, `id="try"`) || !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("landing: %d %v\n%s", status, hdr, landing)
	}

	start := func() url.Values {
		t.Helper()
		res, err := c.Get(srv.URL + "/emulator/try")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		q := loc.Query()
		if res.StatusCode != http.StatusFound || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" ||
			q.Get("redirect_uri") != em.Issuer()+"/try/callback" {
			t.Fatalf("/try: %d %s", res.StatusCode, loc)
		}
		return q
	}
	decide := func(q url.Values, action string) string {
		t.Helper()
		form := url.Values{}
		for k, v := range q {
			form[k] = v
		}
		form.Set("email", "try@example.com")
		form.Set("action", action)
		res, err := c.PostForm(srv.URL+"/emulator/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header.Get("Location")
	}

	q := start()
	callback := decide(q, "approve")
	status, page, _ := getPage(t, c, callback)
	if status != http.StatusOK || !strings.Contains(page, `id="claims"`) || !strings.Contains(page, q.Get("nonce")) ||
		!strings.Contains(page, "try@example.com") || strings.Contains(page, `id="curl"`) {
		t.Fatalf("callback: %d\n%s", status, page)
	}
	if status, _, _ := getPage(t, c, callback); status != http.StatusBadRequest {
		t.Fatalf("spent callback: %d", status)
	}

	denied := decide(start(), "deny")
	status, page, _ = getPage(t, c, denied)
	if status != http.StatusOK || !strings.Contains(page, "access_denied") || strings.Contains(page, `id="claims"`) {
		t.Fatalf("denied: %d\n%s", status, page)
	}
	if status, _, _ := getPage(t, c, srv.URL+"/emulator/try/callback?state=forged&code=x"); status != http.StatusBadRequest {
		t.Fatalf("unknown state: %d", status)
	}
}
