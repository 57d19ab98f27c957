package web

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
)

// fuzzContext is an echo context for one request, as the server builds it
// (the body bounded by limitBody's reader).
func fuzzContext(method, contentType string, body []byte, headers ...string) echo.Context {
	e := echo.New()
	r := httptest.NewRequest(method, "/", bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set(echo.HeaderContentType, contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	return e.NewContext(r, w)
}

// requestRefusal fails unless err is nil, echo's own (413), or one of our
// invalid_request refusals: a decoder of untrusted input answers 400, never
// 500.
func requestRefusal(t *testing.T, err error) {
	t.Helper()
	if err == nil || passThrough(err) {
		return
	}
	var e *exchange.Error
	if !errors.As(err, &e) || e.Kind != exchange.KindInvalidRequest || e.Reason == "" {
		t.Fatalf("not an invalid_request refusal: %#v", err)
	}
}

// FuzzBasicAuth: client credentials from HTTP Basic and the body.
func FuzzBasicAuth(f *testing.F) {
	f.Add("Basic bmV4dGpzOnNlY3JldA==", "", "")
	f.Add("Basic bmV4dGpzOnNl%Y3JldA==", "nextjs", "")
	f.Add("Basic Y29ycCUzQW9ubHk6c2VjJTJG", "other", "x")
	f.Add("basic !!!", "", "")
	f.Add("Bearer abc", "id", "secret")
	f.Add("Basic JXp6OiV6eg==", "", "") // %zz:%zz
	f.Fuzz(func(t *testing.T, authorization, bodyID, bodySecret string) {
		c := fuzzContext(http.MethodPost, "", nil, echo.HeaderAuthorization, authorization)
		id, secret, err := clientCredentials(c, bodyID, bodySecret)
		requestRefusal(t, err)
		if err == nil {
			if _, _, basic := c.Request().BasicAuth(); !basic && (id != bodyID || secret != bodySecret) {
				t.Fatalf("without Basic the body's credentials are used: %q %q", id, secret)
			}
		}
	})
}

// FuzzOAuthForm: /oauth/* bodies, form or JSON.
func FuzzOAuthForm(f *testing.F) {
	form, js := echo.MIMEApplicationForm, echo.MIMEApplicationJSON
	f.Add(form, []byte("grant_type=refresh_token&refresh_token=a.1.b"))
	f.Add(form, []byte("token=a&token=b"))
	f.Add(form, []byte("a=%zz"))
	f.Add(form+"; charset=utf-8", []byte("client_id=x;y=z"))
	f.Add(js, []byte(`{"grant_type":"refresh_token","refresh_token":1}`))
	f.Add(js, []byte(`{"a":"b","a":"c"}`))
	f.Add("text/plain", []byte("x"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		c := fuzzContext(http.MethodPost, contentType, body)
		p, err := oauthParams(c)
		requestRefusal(t, err)
		if err == nil && p == nil {
			t.Fatal("nil parameters without an error")
		}
	})
}

// FuzzCompatBodies: the compat routes' body decoder, into each route's
// request shape.
func FuzzCompatBodies(f *testing.F) {
	form, js := echo.MIMEApplicationForm, echo.MIMEApplicationJSON
	f.Add(js, []byte(`{"username":"a@b.c","password":"x","csrfToken":"t"}`))
	f.Add(js, []byte(`{"refresh":"a.1.b"}`))
	f.Add(js, []byte(`{"refresh":1}`))
	f.Add(form, []byte("refresh=a.1.b&refresh=c"))
	f.Add(form, []byte("username=%zz"))
	f.Add("", []byte{})
	f.Add(js, []byte(`{"id_token":"x"} {"id_token":"y"}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		targets := []any{
			&struct {
				Username string `json:"username" form:"username"`
				Password string `json:"password" form:"password"`
			}{},
			&struct {
				Refresh string `json:"refresh" form:"refresh"`
			}{},
			&struct {
				AccessToken  string `json:"access_token" form:"access_token"`
				IDToken      string `json:"id_token" form:"id_token"`
				Code         string `json:"code" form:"code"`
				RedirectURI  string `json:"redirect_uri" form:"redirect_uri"`
				CodeVerifier string `json:"code_verifier" form:"code_verifier"`
			}{},
			&struct {
				Username  string `json:"username" form:"username"`
				Email     string `json:"email" form:"email"`
				Password  string `json:"password" form:"password"`
				Password2 string `json:"password2" form:"password2"`
			}{},
		}
		for _, v := range targets {
			c := fuzzContext(http.MethodPost, contentType, body)
			c.Request().ContentLength = int64(len(body))
			requestRefusal(t, compatDecode(c, v))
		}
	})
}

var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// FuzzRequestID: only a short, safe X-Request-ID is ever echoed.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"", "a", "trace-01.ABC_x", "x\r\ny", `{"a":1}`, "é", string(make([]byte, 65))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if validRequestID(id) != safeRequestID.MatchString(id) {
			t.Fatalf("validRequestID(%q) = %v", id, validRequestID(id))
		}
		c := fuzzContext(http.MethodGet, "", nil, echo.HeaderXRequestID, id)
		_ = requestID(func(echo.Context) error { return nil })(c)
		got := c.Response().Header().Get(echo.HeaderXRequestID)
		if !safeRequestID.MatchString(got) || (got != id && validRequestID(c.Request().Header.Get(echo.HeaderXRequestID))) {
			t.Fatalf("id %q answered as %q", id, got)
		}
	})
}
