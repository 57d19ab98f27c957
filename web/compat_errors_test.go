package web_test

import (
	"net/http"
	"reflect"
	"testing"
)

// TestCompatErrorBodies pins whole error bodies and headers of the compat
// views (web/errors.go compatErrors): the frontends read these exact keys
// and messages.
func TestCompatErrorBodies(t *testing.T) {
	sj := newHarness(t, withPassword(passwordConfig()), withCompat("simplejwt", "fastapi"))
	dj := newHarness(t, withCompat("djrestauth"))
	if res := sj.postJSON("/v1/register", map[string]string{"email": "shape@example.com", "password": goodPassword}); res.status != http.StatusOK && res.status != http.StatusCreated {
		t.Fatalf("register: %d %s", res.status, res.body)
	}
	for _, tc := range []struct {
		name    string
		res     func() response
		status  int
		body    map[string]any
		wwwAuth string
	}{
		{"simplejwt login, wrong password", func() response {
			return sj.postJSON("/api/auth/login/", map[string]string{"username": "shape@example.com", "password": "wrong"})
		}, 401, map[string]any{"detail": "No active account found with the given credentials", "code": "no_active_account", "reason": "invalid_credentials"}, ""},
		{"simplejwt user, bad token", func() response { return sj.get("/api/auth/user/", "garbage") },
			401, map[string]any{"detail": "Given token not valid for any token type", "code": "token_not_valid", "reason": "malformed"}, `Bearer realm="api"`},
		{"simplejwt refresh, bad token", func() response {
			return sj.postJSON("/api/auth/token/refresh/", map[string]string{"refresh": "garbage"})
		}, 401, map[string]any{"detail": "Token is invalid or expired", "code": "token_not_valid", "reason": "malformed"}, `Bearer realm="api"`},
		{"simplejwt register, email taken", func() response {
			return sj.postJSON("/api/auth/register/", map[string]string{"username": "shape@example.com", "email": "shape@example.com", "password": goodPassword, "password2": goodPassword})
		}, 400, nil, ""},
		{"fastapi login, wrong password", func() response {
			return sj.postJSON("/users/login/", map[string]string{"username": "shape@example.com", "password": "wrong"})
		}, 401, map[string]any{"detail": "Could not validate credentials", "reason": "invalid_credentials"}, "Bearer"},
		{"fastapi session, bad token", func() response {
			return sj.postJSON("/users/session/", map[string]string{}, "Authorization", "Bearer garbage")
		},
			401, map[string]any{"detail": "Could not validate credentials", "reason": "malformed"}, "Bearer"},
		{"allauth social, unknown provider", func() response {
			return dj.postJSON("/api/auth/nope/", map[string]string{"id_token": "x"})
		}, 400, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.res()
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			got := res.json(t)
			if tc.body != nil && !reflect.DeepEqual(got, tc.body) {
				t.Fatalf("body %v, want %v", got, tc.body)
			}
			if h := res.header.Get("WWW-Authenticate"); h != tc.wwwAuth {
				t.Fatalf("WWW-Authenticate %q, want %q", h, tc.wwwAuth)
			}
			if res.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control %q", res.header.Get("Cache-Control"))
			}
		})
	}
	// Field errors: on the field the page reads, nothing else but reason.
	m := sj.postJSON("/api/auth/register/", map[string]string{"username": "shape@example.com", "email": "shape@example.com", "password": goodPassword, "password2": goodPassword}).json(t)
	if len(m) != 2 || m["reason"] != "email_taken" || firstOf(t, m, "username") == "" {
		t.Fatalf("register, email taken: %v", m)
	}
	m = dj.postJSON("/api/auth/nope/", map[string]string{"id_token": "x"}).json(t)
	if len(m) != 2 || m["reason"] != "unknown_provider" || firstOf(t, m, "non_field_errors") == "" {
		t.Fatalf("social, unknown provider: %v", m)
	}
}
