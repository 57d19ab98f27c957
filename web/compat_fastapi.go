package web

import (
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

// The fastapi profile: the Auth.js v5 + FastAPI tutorial, whose Credentials
// authorize() posts {username, password} to /users/login/ and reads
// access_token and user, and whose session callback posts the token to
// /users/session/ on every render and keeps whatever token comes back.

// faUserJSON is the tutorial's UserSchema. Roles map to the Django flags:
// is_staff is the role "staff", is_superuser the role "superuser".
type faUserJSON struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	FirstName   string     `json:"first_name"`
	LastName    string     `json:"last_name"`
	Name        string     `json:"name"`
	IsStaff     bool       `json:"is_staff"`
	IsActive    bool       `json:"is_active"`
	IsSuperuser bool       `json:"is_superuser"`
	LastLogin   *time.Time `json:"last_login"`
	DateJoined  time.Time  `json:"date_joined"`
}

type faTokenJSON struct {
	AccessToken string     `json:"access_token"`
	TokenType   string     `json:"token_type"`
	User        faUserJSON `json:"user"`
}

func toFaUser(u storage.User, idents []storage.Identity) faUserJSON {
	first, last := u.GivenName, u.FamilyName
	if first == "" && last == "" {
		first, last = splitName(u.Name)
	}
	return faUserJSON{ID: u.ID, Email: u.Email, FirstName: first, LastName: last, Name: u.Name,
		IsStaff: slices.Contains(u.Roles, "staff"), IsActive: !u.Disabled, IsSuperuser: slices.Contains(u.Roles, "superuser"),
		LastLogin: lastLogin(idents), DateJoined: u.CreatedAt.UTC()}
}

// faLogin is the tutorial's POST /users/login/: {username (an email),
// password} -> {access_token, token_type, user}.
func (s *Server) faLogin(c echo.Context) error {
	var req struct {
		Username string `json:"username" form:"username"`
		Password string `json:"password" form:"password"`
	}
	if err := compatDecode(c, &req); err != nil {
		return s.compatError(c, viewFastAPI, err)
	}
	// FastAPI's validation error for missing fields.
	var missing []map[string]any
	for _, f := range []struct{ name, value string }{{"username", req.Username}, {"password", req.Password}} {
		if f.value == "" {
			missing = append(missing, map[string]any{"type": "missing", "loc": []string{"body", f.name}, "msg": "Field required", "input": nil})
		}
	}
	if len(missing) > 0 {
		return compatJSON(c, http.StatusUnprocessableEntity, map[string]any{"detail": missing, "reason": exchange.ReasonMissingField})
	}
	who, _, err := s.compatCaller(c)
	if err != nil {
		return s.compatError(c, viewFastAPI, err)
	}
	res, err := s.svc.Login(c.Request().Context(), exchange.LoginRequest{
		Email: req.Username, Password: req.Password, Client: who,
	})
	if err != nil {
		return s.compatError(c, viewFastAPI, err)
	}
	return writeTokens(c, faTokenJSON{AccessToken: res.AccessToken, TokenType: "Bearer", User: toFaUser(res.User, res.Identities)})
}

// faSession is the tutorial's POST /users/session/: Bearer -> the same
// shape, with the same token while more than a third of its lifetime is
// left and a fresh one (the session rotated) after; 401 for a revoked
// session, a disabled user, or a session of another client than the
// compat client (client_mismatch: renewing it would rotate that client's
// refresh chain).
func (s *Server) faSession(c echo.Context) error {
	token, ok := bearerToken(c)
	if !ok {
		return s.compatError(c, viewFastAPI, &exchange.Error{Kind: exchange.KindInvalidToken, Reason: exchange.ReasonMissingToken,
			Description: "an Authorization: Bearer access token is required"})
	}
	// The route acts as the compat client, as the login does: with
	// clients configured only compat_client's sessions renew here.
	_, client, err := s.compatCaller(c)
	if err != nil {
		return s.compatError(c, viewFastAPI, err)
	}
	ctx := c.Request().Context()
	p, err := s.svc.Authenticate(ctx, token)
	if err != nil {
		return s.compatError(c, viewFastAPI, err)
	}
	within := time.Duration(0)
	if p.Claims.ExpiresAt != nil && p.Claims.IssuedAt != nil {
		within = p.Claims.ExpiresAt.Sub(p.Claims.IssuedAt.Time) / 3
	}
	res, renewed, err := s.svc.RenewAccess(ctx, p, within, client)
	if err != nil {
		return s.compatError(c, viewFastAPI, err)
	}
	if renewed {
		token = res.AccessToken
	}
	idents, err := s.svc.Identities(ctx, p.User.ID)
	if err != nil {
		return s.compatError(c, viewFastAPI, err)
	}
	return writeTokens(c, faTokenJSON{AccessToken: token, TokenType: "Bearer", User: toFaUser(p.User, idents)})
}
