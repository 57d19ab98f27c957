package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

// Compatibility profiles: thin routes over the same exchange services that
// answer the paths and JSON shapes the tutorials' frontends call (see
// docs/compat.md). Each profile answers errors in the shape its frontend
// reads, with our machine-readable `reason` in every one; which status a
// kind gets there is in web/errors.go (compatErrors), next to statusOf.

type compatRoute struct {
	method, path string
	handle       func(*Server, echo.Context) error
}

type compatProfile struct {
	needsPassword bool
	routes        []compatRoute
}

var compatProfiles = map[string]compatProfile{
	"djrestauth": {routes: []compatRoute{
		{http.MethodPost, "/api/auth/token/refresh/", (*Server).drfRefresh},
		{http.MethodPost, "/api/auth/token/verify/", (*Server).djVerify},
		{http.MethodPost, "/api/auth/logout/", (*Server).djLogout},
		{http.MethodGet, "/api/auth/user/", (*Server).djUser},
		{http.MethodPost, "/api/auth/:provider/", (*Server).djSocialLogin},
		{http.MethodPost, "/api/auth/password/reset/", (*Server).djPasswordReset}, // compat_djpassword.go
		{http.MethodPost, "/api/auth/password/reset/confirm/", (*Server).djPasswordResetConfirm},
		{http.MethodPost, "/api/auth/password/change/", (*Server).djPasswordChange},
	}},
	"simplejwt": {needsPassword: true, routes: []compatRoute{
		{http.MethodPost, "/api/auth/register/", (*Server).sjRegister},
		{http.MethodPost, "/api/auth/login/", (*Server).sjLogin},
		{http.MethodPost, "/api/auth/token/refresh/", (*Server).drfRefresh},
		{http.MethodGet, "/api/auth/user/", (*Server).sjUser},
	}},
	"fastapi": {needsPassword: true, routes: []compatRoute{
		{http.MethodPost, "/users/login/", (*Server).faLogin},
		{http.MethodPost, "/users/session/", (*Server).faSession},
	}},
}

// CompatProfiles lists the profile names `compat:` accepts.
func CompatProfiles() []string {
	names := make([]string, 0, len(compatProfiles))
	for n := range compatProfiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CompatNeedsPassword reports whether a profile signs users in with a
// password, and so needs the password provider.
func CompatNeedsPassword(name string) bool { return compatProfiles[name].needsPassword }

// CompatConflicts names every pair of the given profiles that answer the
// same method and path (a `:param` segment matches anything): the two
// cannot be served together.
func CompatConflicts(names []string) []string {
	var out []string
	for i, a := range names {
		for _, b := range names[i+1:] {
			if a == b {
				continue
			}
			var shared []string
			for _, ra := range compatProfiles[a].routes {
				for _, rb := range compatProfiles[b].routes {
					if ra.method == rb.method && pathsOverlap(ra.path, rb.path) {
						shared = append(shared, ra.method+" "+rb.path)
					}
				}
			}
			if len(shared) > 0 {
				out = append(out, fmt.Sprintf("%s and %s both answer %s", a, b, strings.Join(shared, ", ")))
			}
		}
	}
	return out
}

func pathsOverlap(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if as[i] != bs[i] && !strings.HasPrefix(as[i], ":") && !strings.HasPrefix(bs[i], ":") {
			return false
		}
	}
	return true
}

// compatRoutes registers the named profiles. Config validation refuses
// unknown and conflicting profiles; should they reach here anyway, the
// first profile keeps a contested route.
func (s *Server) compatRoutes(names []string) {
	var served []string
	for _, name := range names {
		p, ok := compatProfiles[name]
		if !ok || slices.Contains(served, name) {
			s.log.Error("compat profile skipped: unknown or repeated", "profile", name)
			continue
		}
		if c := CompatConflicts(append(slices.Clone(served), name)); len(c) > 0 {
			s.log.Error("compat profile skipped: conflicts with one already served", "profile", name, "conflicts", c)
			continue
		}
		served = append(served, name)
		for _, r := range p.routes {
			s.echo.Add(r.method, r.path, func(c echo.Context) error { return r.handle(s, c) })
		}
	}
}

// compatCaller is the caller of a compat route. The tutorials' frontends
// send no client credentials, so with clients configured the routes act as
// the configured compat_client (a public client): its provider list applies
// and its id goes into the session. client is nil without clients; without
// a compat_client the answer is invalid_client, never an unbound session.
func (s *Server) compatCaller(c echo.Context) (who exchange.Client, client *exchange.AuthenticatedClient, err error) {
	if client, err = s.svc.AuthenticateClient(s.compatClient, ""); err != nil {
		return clientOf(c, nil), nil, err
	}
	return clientOf(c, client), client, nil
}

// compatDecode reads a JSON body like decodeJSON, but also accepts an empty
// body (as {}) and form bodies, as Django and FastAPI do for the clients
// that send them.
func compatDecode(c echo.Context, v any) error {
	r := c.Request()
	if r.ContentLength == 0 {
		return nil // fetch() with a JSON Content-Type and no body
	}
	if strings.HasPrefix(r.Header.Get(echo.HeaderContentType), echo.MIMEApplicationForm) {
		if err := (&echo.DefaultBinder{}).BindBody(c, v); err != nil {
			return requestError(exchange.ReasonMalformedForm, "request body is not a valid form")
		}
		return nil
	}
	return decodeJSON(c, v)
}

// compatJSON writes a compat error body, no-store like every error.
func compatJSON(c echo.Context, code int, body map[string]any) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(code, body)
}

// retryAfter sets Retry-After for a rate-limited error and returns it in
// whole seconds (0 when e is not rate limited).
func retryAfter(c echo.Context, e *exchange.Error) int {
	if e.Kind != exchange.KindRateLimited || e.RetryAfter <= 0 {
		return 0
	}
	secs := int(e.RetryAfter.Seconds() + 0.999)
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return secs
}

// passThrough reports whether err is echo's own (413, 404, ...): those keep
// the core error shape.
func passThrough(err error) bool {
	var he *echo.HTTPError
	return errors.As(err, &he)
}

// splitName turns our one name into Django's first_name and last_name.
func splitName(name string) (first, last string) {
	first, last, _ = strings.Cut(strings.TrimSpace(name), " ")
	return first, strings.TrimSpace(last)
}

// lastLogin is the latest sign-in of any identity, or nil.
func lastLogin(idents []storage.Identity) *time.Time {
	var t time.Time
	for _, id := range idents {
		if id.LastLoginAt.After(t) {
			t = id.LastLoginAt
		}
	}
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
