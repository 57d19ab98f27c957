package web

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
)

// TestCompatErrorsTable: every view a handler may name has a rule, and
// every kind a rule overrides is one statusOf knows, so an override never
// shadows a kind the core table lacks.
func TestCompatErrorsTable(t *testing.T) {
	for _, v := range []compatView{viewFastAPI, viewDRF, viewDRFRegister, viewDRFLogin, viewAllauthSocial, viewDRFToken, viewDRFAuth} {
		rule, ok := compatErrors[v]
		if !ok {
			t.Errorf("view %q has no rule", v)
		}
		for k := range rule.status {
			if _, ok := statusOf[k]; !ok {
				t.Errorf("view %q overrides kind %v, which statusOf lacks", v, k)
			}
		}
	}
}

// On the simplejwt token views only a refused token is token_not_valid:
// rate limiting and a busy server keep their status and Retry-After (a
// 401 would make the client sign the user out), a client refusal stays
// invalid_client.
func TestCompatTokenViewsKindsNotAboutTheToken(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, view := range []compatView{viewDRFToken, viewDRFAuth} {
		for _, tc := range []struct {
			err        *exchange.Error
			status     int
			retryAfter string
			wwwAuth    string
		}{
			{&exchange.Error{Kind: exchange.KindRateLimited, Reason: "rate_limited", Description: "slow down", RetryAfter: 2500 * time.Millisecond}, 429, "3", ""},
			{&exchange.Error{Kind: exchange.KindBusy, Reason: "busy", Description: "busy", RetryAfter: time.Second}, 503, "1", ""},
			{&exchange.Error{Kind: exchange.KindInvalidClient, Reason: "invalid_secret", Description: "wrong secret"}, 401, "", `Basic realm="authex", charset="UTF-8"`},
			{&exchange.Error{Kind: exchange.KindInvalidToken, Reason: "expired", Description: "expired"}, 401, "", `Bearer realm="api"`},
		} {
			rec := httptest.NewRecorder()
			c := echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/", nil), rec)
			if err := s.compatError(c, view, tc.err); err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			tokenNotValid := body["code"] == "token_not_valid"
			if rec.Code != tc.status || rec.Header().Get("Retry-After") != tc.retryAfter ||
				rec.Header().Get("WWW-Authenticate") != tc.wwwAuth || tokenNotValid != (tc.err.Kind == exchange.KindInvalidToken) ||
				body["reason"] != tc.err.Reason {
				t.Errorf("%s, %s: %d Retry-After %q WWW-Authenticate %q %v; want %d, %q, %q",
					view, tc.err.Reason, rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("WWW-Authenticate"), body,
					tc.status, tc.retryAfter, tc.wwwAuth)
			}
		}
	}
}
