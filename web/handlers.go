package web

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// credentialFields are a provider credential's fields as the request
// bodies carry them: embedded in /v1/exchange's and /v1/me/identities',
// and dj-rest-auth's social login body (JSON or form) as they are. The
// nonce is not among them: dj-rest-auth's view takes none.
type credentialFields struct {
	IDToken      string `json:"id_token" form:"id_token"`
	AccessToken  string `json:"access_token" form:"access_token"`
	Code         string `json:"code" form:"code"`
	CodeVerifier string `json:"code_verifier" form:"code_verifier"`
	RedirectURI  string `json:"redirect_uri" form:"redirect_uri"`
}

// credential is the providers.Credential of f and the request's nonce.
func (f credentialFields) credential(nonce string) providers.Credential {
	return providers.Credential{IDToken: f.IDToken, AccessToken: f.AccessToken, Code: f.Code,
		CodeVerifier: f.CodeVerifier, RedirectURI: f.RedirectURI, Nonce: nonce}
}

type exchangeRequest struct {
	Provider string `json:"provider"`
	credentialFields
	Nonce   string `json:"nonce"`
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

type identityJSON struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	Subject  string `json:"subject"`
	Email    string `json:"email"`
}

type userJSON struct {
	ID            string          `json:"id"`
	Email         string          `json:"email"`
	EmailVerified bool            `json:"email_verified"`
	Name          string          `json:"name"`
	Picture       string          `json:"picture"`
	Roles         []string        `json:"roles"`
	CreatedAt     time.Time       `json:"created_at"`
	Identities    *[]identityJSON `json:"identities,omitempty"`
	// PreferredUsername: the username, as the access token's claim.
	PreferredUsername string `json:"preferred_username,omitempty"`
}

type tokenResponse struct {
	AccessToken      string   `json:"access_token"`
	TokenType        string   `json:"token_type"`
	ExpiresIn        int64    `json:"expires_in"`
	ExpiresAt        int64    `json:"expires_at"`
	RefreshToken     string   `json:"refresh_token"`
	RefreshExpiresAt int64    `json:"refresh_expires_at"`
	SessionID        string   `json:"session_id"`
	Created          *bool    `json:"created,omitempty"`
	User             userJSON `json:"user"`
}

func toUserJSON(u storage.User, idents []storage.Identity) userJSON {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	out := userJSON{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		Picture: u.Picture, Roles: roles, CreatedAt: u.CreatedAt.UTC(), PreferredUsername: u.Username}
	if idents != nil {
		list := make([]identityJSON, len(idents))
		for i, id := range idents {
			list[i] = identityJSON{ID: id.ID, Provider: id.Provider, Subject: id.Subject, Email: id.Email}
		}
		out.Identities = &list
	}
	return out
}

func toTokenResponse(r *exchange.Result, withCreated bool) tokenResponse {
	out := tokenResponse{
		AccessToken:      r.AccessToken,
		TokenType:        "Bearer",
		ExpiresIn:        max(0, int64(time.Until(r.ExpiresAt).Seconds())),
		ExpiresAt:        r.ExpiresAt.Unix(),
		RefreshToken:     r.RefreshToken,
		RefreshExpiresAt: r.RefreshExpiresAt.Unix(),
		SessionID:        r.SessionID,
		User:             toUserJSON(r.User, r.Identities),
	}
	if withCreated {
		created := r.Created
		out.Created = &created
	}
	return out
}

func (s *Server) handleExchange(c echo.Context) error {
	var req exchangeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	who, err := s.caller(c, req.ClientID, req.ClientSecret)
	if err != nil {
		return err
	}
	res, err := s.svc.Exchange(c.Request().Context(), exchange.ExchangeRequest{
		Provider:    req.Provider,
		Credential:  req.credential(req.Nonce),
		ProfileName: req.Profile.Name,
		Client:      who,
	})
	if err != nil {
		return err
	}
	return writeTokens(c, toTokenResponse(res, true))
}

func (s *Server) handleRefresh(c echo.Context) error {
	var req struct {
		RefreshToken string `json:"refresh_token"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	// With clients configured the client authenticates as at /oauth/token,
	// and a session bound to a client refreshes only for that client:
	// otherwise a stolen refresh token of a confidential client would
	// refresh here without its secret.
	client, err := s.authClient(c, req.ClientID, req.ClientSecret)
	if err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return requestError(exchange.ReasonMissingRefreshToken, "refresh_token is required")
	}
	res, err := s.svc.RefreshForClient(c.Request().Context(), req.RefreshToken, client)
	if err != nil {
		return err
	}
	return writeTokens(c, toTokenResponse(res, false))
}

func (s *Server) handleLogout(c echo.Context) error {
	var req struct {
		RefreshToken string `json:"refresh_token"`
		Scope        string `json:"scope"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	// A Bearer-only logout may come without a body.
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	if q := c.QueryParam("scope"); q != "" && req.Scope == "" {
		req.Scope = q
	}
	bearer, _ := bearerToken(c)
	if req.RefreshToken == "" && bearer != "" {
		c.Set(bearerUsed, true)
	}
	// A refresh token logs out only with the client authentication that
	// refreshing it needs: a stolen token that cannot refresh must not
	// sign the user out (scope global) either. A Bearer access token is
	// its own proof, as on /v1/me.
	var client *exchange.AuthenticatedClient
	if req.RefreshToken != "" {
		var err error
		if client, err = s.authClient(c, req.ClientID, req.ClientSecret); err != nil {
			return err
		}
	}
	n, err := s.svc.Logout(c.Request().Context(), exchange.LogoutRequest{
		RefreshToken: req.RefreshToken, AccessToken: bearer, Scope: req.Scope, Client: client,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"revoked": n})
}

func (s *Server) handleMe(c echo.Context) error {
	// Authenticate has just read the user; only the identities are left.
	p := principalOf(c)
	idents, err := s.svc.Identities(c.Request().Context(), p.User.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUserJSON(p.User, idents))
}

// handleDiscovery serves our metadata, one document at both well-known
// paths: OpenID Connect Discovery's (go-oidc, Auth.js) and RFC 8414's
// (openid-client in OAuth mode, MCP clients). It lists only what a client
// can use here:
//   - no authorization_endpoint or userinfo_endpoint: authex runs no
//     authorization-code flow of its own (the provider does), and /v1/me
//     is not an OpenID userinfo; so response_types_supported, which both
//     specifications require, is the truthful empty list;
//   - no scopes_supported: /oauth/token takes no scope (RFC 8414 makes the
//     field optional; an empty list would claim a scope parameter exists);
//   - introspection only with clients configured: without them
//     /oauth/introspect refuses every caller;
//   - id_token_signing_alg_values_supported names the algorithm of the
//     only JWTs we sign, our access tokens: OpenID Discovery requires the
//     field, and go-oidc's provider.Verifier takes its allowed algorithms
//     from it (without it, only RS256, which refuses ES256 and EdDSA);
//   - subject_types_supported "public": sub is the user id, the same for
//     every client.
func (s *Server) handleDiscovery() echo.HandlerFunc {
	return func(c echo.Context) error {
		base := s.svc.Issuer()
		auth := []string{"none"}
		if s.svc.ClientsConfigured() {
			auth = []string{"client_secret_basic", "client_secret_post", "none"}
		}
		alg := []string{s.svc.Algorithm()}
		doc := map[string]any{
			"issuer":                                base,
			"jwks_uri":                              base + "/.well-known/jwks.json",
			"token_endpoint":                        base + "/oauth/token",
			"revocation_endpoint":                   base + "/oauth/revoke",
			"token_endpoint_auth_methods_supported": auth,
			"revocation_endpoint_auth_methods_supported": auth,
			"access_token_signing_alg_values_supported":  alg,
			"id_token_signing_alg_values_supported":      alg,
			"grant_types_supported":                      []string{grantRefreshToken, grantTokenExchange},
			"response_types_supported":                   []string{},
			"subject_types_supported":                    []string{"public"},
		}
		if s.svc.ClientsConfigured() {
			doc["introspection_endpoint"] = base + "/oauth/introspect"
			doc["introspection_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "client_secret_post"}
		}
		publicCache(c, "300")
		return c.JSON(http.StatusOK, doc)
	}
}

func (s *Server) handleJWKS(c echo.Context) error {
	// Short enough that a rotated-in key reaches caches within the publish delay.
	publicCache(c, "300")
	return c.Blob(http.StatusOK, "application/jwk-set+json", s.svc.Keys().JWKS())
}

func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(c echo.Context) error {
	ready := s.svc.Ready(c.Request().Context())
	body := map[string]any{"status": "ready"}
	code := http.StatusOK
	if ready.Store != nil {
		code = http.StatusServiceUnavailable
		body["store"] = "unavailable"
		s.log.Warn("readiness: store", "err", ready.Store)
	}
	if len(ready.Providers) > 0 {
		code = http.StatusServiceUnavailable
		m := map[string]string{}
		// /readyz is public: name the provider, keep the upstream error
		// (resolver addresses, URLs) in the log.
		for name, err := range ready.Providers {
			m[name] = "unavailable"
			s.log.Warn("readiness: provider", "provider", name, "err", err)
		}
		body["providers"] = m
	}
	if code != http.StatusOK {
		body["status"] = "not_ready"
	}
	return c.JSON(code, body)
}

func writeTokens(c echo.Context, body any) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, body)
}

// decodeJSON accepts only application/json bodies.
func decodeJSON(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != echo.MIMEApplicationJSON {
		return requestError(exchange.ReasonContentType, "Content-Type must be application/json")
	}
	dec := json.NewDecoder(c.Request().Body)
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
		}
		return requestError(exchange.ReasonMalformedJSON, "request body is not valid JSON of the expected shape")
	}
	if dec.More() {
		return requestError(exchange.ReasonMalformedJSON, "request body has data after the JSON value")
	}
	return nil
}

// clientOf describes the caller for the session it may get; client, the
// authenticated client if any, names it.
func clientOf(c echo.Context, client *exchange.AuthenticatedClient) exchange.Client {
	who := exchange.Client{UserAgent: c.Request().UserAgent(), IP: c.RealIP()}
	if client != nil {
		who.ID = client.ID
	}
	return who
}

// caller authenticates the client (when clients are configured) and
// describes the caller.
func (s *Server) caller(c echo.Context, id, secret string) (exchange.Client, error) {
	client, err := s.authClient(c, id, secret)
	if err != nil {
		return exchange.Client{}, err
	}
	return clientOf(c, client), nil
}

const (
	principalKey = "authex.principal"
	bearerUsed   = "authex.bearer"
)

func bearerToken(c echo.Context) (string, bool) {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// requireBearer authenticates one of our access tokens.
func (s *Server) requireBearer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(bearerUsed, true)
		token, ok := bearerToken(c)
		if !ok {
			return &exchange.Error{Kind: exchange.KindInvalidToken, Reason: exchange.ReasonMissingToken,
				Description: "an Authorization: Bearer access token is required"}
		}
		p, err := s.svc.Authenticate(c.Request().Context(), token)
		if err != nil {
			return err
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

func principalOf(c echo.Context) *exchange.Principal {
	p, _ := c.Get(principalKey).(*exchange.Principal)
	return p
}

// handleAnonymous creates an anonymous user (anonymous.enabled): tokens
// for a user with no identity, which links one later at
// /v1/me/identities and keeps its id.
func (s *Server) handleAnonymous(c echo.Context) error {
	var req struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	who, err := s.caller(c, req.ClientID, req.ClientSecret)
	if err != nil {
		return err
	}
	res, err := s.svc.CreateAnonymous(c.Request().Context(), who)
	if err != nil {
		return err
	}
	return writeTokens(c, toTokenResponse(res, true))
}
