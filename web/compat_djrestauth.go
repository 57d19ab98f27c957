package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
)

// The djrestauth profile: dj-rest-auth v4+ in JWT mode with allauth social
// login, and the DRF helpers the simplejwt profile shares.

// djUserJSON is dj-rest-auth's UserDetailsSerializer. username is the
// email: authex has no usernames.
type djUserJSON struct {
	PK        string `json:"pk"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

type djLoginJSON struct {
	Access  string     `json:"access"`
	Refresh string     `json:"refresh"`
	User    djUserJSON `json:"user"`
}

func toDjUser(r *exchange.Principal) djUserJSON {
	first, last := splitName(r.User.Name)
	return djUserJSON{PK: r.User.ID, Username: r.User.Email, Email: r.User.Email, FirstName: first, LastName: last}
}

// drfRequired answers DRF's 400 for missing fields, all at once.
func drfRequired(c echo.Context, fields ...string) error {
	body := map[string]any{"reason": exchange.ReasonMissingField}
	for _, f := range fields {
		body[f] = []string{"This field is required."}
	}
	return compatJSON(c, http.StatusBadRequest, body)
}

// drfPrincipal authenticates the Bearer token of a DRF view.
func (s *Server) drfPrincipal(c echo.Context) (*exchange.Principal, error) {
	token, ok := bearerToken(c)
	if !ok {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="api"`)
		return nil, compatJSON(c, http.StatusUnauthorized, map[string]any{
			"detail": "Authentication credentials were not provided.", "reason": exchange.ReasonMissingToken})
	}
	p, err := s.svc.Authenticate(c.Request().Context(), token)
	if err != nil {
		return nil, s.compatError(c, viewDRFAuth, err)
	}
	return p, nil
}

// drfRefresh is simplejwt's TokenRefreshView with ROTATE_REFRESH_TOKENS:
// {refresh} -> {access, refresh}. The old refresh token stops working
// (after the reuse grace): keep the new one.
func (s *Server) drfRefresh(c echo.Context) error {
	var req struct {
		Refresh string `json:"refresh" form:"refresh"`
	}
	if err := compatDecode(c, &req); err != nil {
		return s.compatError(c, viewDRF, err)
	}
	if req.Refresh == "" {
		return drfRequired(c, "refresh")
	}
	_, client, err := s.compatCaller(c)
	if err != nil {
		return s.compatError(c, viewDRFToken, err)
	}
	// A session issued to another client (a confidential one on
	// /v1/exchange) does not refresh here without that client's secret.
	res, err := s.svc.RefreshForClient(c.Request().Context(), req.Refresh, client)
	if err != nil {
		return s.compatError(c, viewDRFToken, err)
	}
	return writeTokens(c, map[string]string{"access": res.AccessToken, "refresh": res.RefreshToken})
}

// djSocialLogin is dj-rest-auth's SocialLoginView at /api/auth/{provider}/:
// the provider's access_token, id_token or code -> {access, refresh, user}.
func (s *Server) djSocialLogin(c echo.Context) error {
	// redirect_uri and code_verifier are not in dj-rest-auth (allauth
	// knows its callback URL): accepted for a code exchange, as
	// /v1/exchange takes them. No nonce, as in dj-rest-auth.
	var req credentialFields
	if err := compatDecode(c, &req); err != nil {
		return s.compatError(c, viewDRF, err)
	}
	var res *exchange.Result
	who, _, err := s.compatCaller(c)
	if err == nil {
		res, err = s.svc.Exchange(c.Request().Context(), exchange.ExchangeRequest{
			Provider:   c.Param("provider"),
			Credential: req.credential(""),
			Client:     who,
		})
	}
	if err != nil {
		return s.compatError(c, viewAllauthSocial, err)
	}
	return writeTokens(c, djLoginJSON{Access: res.AccessToken, Refresh: res.RefreshToken,
		User: toDjUser(&exchange.Principal{User: res.User})})
}

// djVerify is simplejwt's TokenVerifyView: {token} -> {} or 401. It checks
// more than the signature: the session must be live and the user enabled.
func (s *Server) djVerify(c echo.Context) error {
	var req struct {
		Token string `json:"token" form:"token"`
	}
	if err := compatDecode(c, &req); err != nil {
		return s.compatError(c, viewDRF, err)
	}
	if req.Token == "" {
		return drfRequired(c, "token")
	}
	if _, err := s.svc.Authenticate(c.Request().Context(), req.Token); err != nil {
		return s.compatError(c, viewDRFToken, err)
	}
	return c.JSON(http.StatusOK, map[string]any{})
}

// djLogout is dj-rest-auth's LogoutView with the simplejwt blacklist:
// revokes the session of the refresh token in the body, or of the Bearer
// access token.
func (s *Server) djLogout(c echo.Context) error {
	var req struct {
		Refresh string `json:"refresh" form:"refresh"`
	}
	if err := compatDecode(c, &req); err != nil {
		return s.compatError(c, viewDRF, err)
	}
	bearer, _ := bearerToken(c)
	if req.Refresh == "" && bearer == "" {
		return compatJSON(c, http.StatusUnauthorized, map[string]any{
			"detail": "Refresh token was not included in request data.", "reason": exchange.ReasonMissingCredential})
	}
	var client *exchange.AuthenticatedClient
	if req.Refresh != "" {
		bearer = ""
		// As on the refresh route: only the compat client's sessions.
		var err error
		if _, client, err = s.compatCaller(c); err != nil {
			return s.compatError(c, viewDRFToken, err)
		}
	}
	if _, err := s.svc.Logout(c.Request().Context(), exchange.LogoutRequest{RefreshToken: req.Refresh, AccessToken: bearer, Client: client}); err != nil {
		return s.compatError(c, viewDRFToken, err)
	}
	return c.JSON(http.StatusOK, map[string]string{"detail": "Successfully logged out."})
}

// djUser is dj-rest-auth's UserDetailsView (GET).
func (s *Server) djUser(c echo.Context) error {
	p, err := s.drfPrincipal(c)
	if p == nil {
		return err
	}
	return c.JSON(http.StatusOK, toDjUser(p))
}
