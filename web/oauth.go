package web

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
)

// Grant types /oauth/token accepts.
const (
	grantRefreshToken  = "refresh_token"
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// clientCredentials returns the client credentials a request presented:
// HTTP Basic (RFC 6749 §2.3.1, form-encoded id and secret) or client_id and
// client_secret in the body. Using both methods at once is refused, as
// the RFC requires.
func clientCredentials(c echo.Context, bodyID, bodySecret string) (id, secret string, err error) {
	user, pass, basic := c.Request().BasicAuth()
	if !basic {
		if h := c.Request().Header.Get(echo.HeaderAuthorization); len(h) >= 6 && strings.EqualFold(h[:6], "basic ") {
			return "", "", requestError(exchange.ReasonMalformedClientAuth, "the Basic credentials are not base64 of id:secret")
		}
		return bodyID, bodySecret, nil
	}
	if id, err = url.QueryUnescape(user); err != nil {
		return "", "", requestError(exchange.ReasonMalformedClientAuth, "the Basic credentials are not form-encoded")
	}
	if secret, err = url.QueryUnescape(pass); err != nil {
		return "", "", requestError(exchange.ReasonMalformedClientAuth, "the Basic credentials are not form-encoded")
	}
	if bodySecret != "" || (bodyID != "" && bodyID != id) {
		return "", "", requestError(exchange.ReasonMultipleClientAuth, "authenticate the client with one method only: HTTP Basic or the body")
	}
	return id, secret, nil
}

// authClient authenticates the calling client; nil when no clients are
// configured.
func (s *Server) authClient(c echo.Context, bodyID, bodySecret string) (*exchange.AuthenticatedClient, error) {
	id, secret, err := clientCredentials(c, bodyID, bodySecret)
	if err != nil {
		return nil, err
	}
	return s.svc.AuthenticateClient(id, secret)
}

// oauthRequest reads an /oauth/* body and authenticates its client (nil
// when no clients are configured).
func (s *Server) oauthRequest(c echo.Context) (map[string]string, *exchange.AuthenticatedClient, error) {
	p, err := oauthParams(c)
	if err != nil {
		return nil, nil, err
	}
	client, err := s.authClient(c, p["client_id"], p["client_secret"])
	if err != nil {
		return nil, nil, err
	}
	return p, client, nil
}

// oauthParams reads an /oauth/* body: application/x-www-form-urlencoded
// (RFC 6749) or a JSON object of strings. Query strings are never read:
// tokens in URLs end up in logs.
func oauthParams(c echo.Context) (map[string]string, error) {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge)
		}
		return nil, requestError(exchange.ReasonMalformedBody, "the request body could not be read")
	}
	out := map[string]string{}
	switch mt {
	case echo.MIMEApplicationForm:
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, requestError(exchange.ReasonMalformedBody, "the form body is not valid application/x-www-form-urlencoded")
		}
		for k, v := range vals {
			if len(v) > 1 {
				return nil, requestError(exchange.ReasonDuplicateParameter, "parameter "+k+" is sent more than once")
			}
			out[k] = v[0]
		}
	case echo.MIMEApplicationJSON:
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, requestError(exchange.ReasonMalformedJSON, "request body is not a JSON object")
		}
		for k, v := range m {
			str, ok := v.(string)
			if !ok {
				return nil, requestError(exchange.ReasonMalformedJSON, "parameter "+k+" must be a string")
			}
			out[k] = str
		}
	default:
		return nil, requestError(exchange.ReasonContentType, "Content-Type must be application/x-www-form-urlencoded or application/json")
	}
	return out, nil
}

type oauthTokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	RefreshToken    string `json:"refresh_token,omitempty"`
}

func (s *Server) handleOAuthToken(c echo.Context) error {
	p, client, err := s.oauthRequest(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var (
		res       *exchange.Result
		issuedAs  string
		grantType = p["grant_type"]
	)
	switch grantType {
	case "":
		return requestError(exchange.ReasonMissingGrantType, "grant_type is required")
	case grantRefreshToken:
		if p["refresh_token"] == "" {
			return requestError(exchange.ReasonMissingRefreshToken, "refresh_token is required")
		}
		if res, err = s.svc.RefreshForClient(ctx, p["refresh_token"], client); err != nil {
			return err
		}
	case grantTokenExchange:
		if p["actor_token"] != "" {
			return requestError(exchange.ReasonActorTokenUnsupported, "delegation (actor_token) is not supported")
		}
		if rt := p["requested_token_type"]; rt != "" && rt != exchange.TokenTypeAccessToken {
			return requestError(exchange.ReasonUnsupportedRequestedTokenType, "requested_token_type must be "+exchange.TokenTypeAccessToken)
		}
		res, err = s.svc.TokenExchange(ctx, exchange.TokenExchangeRequest{
			SubjectToken: p["subject_token"], SubjectTokenType: p["subject_token_type"],
			SubjectIssuer: p["subject_issuer"], Nonce: p["nonce"], Client: clientOf(c, client),
		})
		if err != nil {
			return subjectTokenError(err)
		}
		issuedAs = exchange.TokenTypeAccessToken
	default:
		return &exchange.Error{Kind: exchange.KindUnsupportedGrantType, Reason: exchange.ReasonUnsupportedGrantType,
			Description: "grant_type must be refresh_token or " + grantTokenExchange}
	}
	return writeTokens(c, oauthTokenResponse{
		AccessToken: res.AccessToken, IssuedTokenType: issuedAs, TokenType: "Bearer",
		ExpiresIn: max(0, int64(time.Until(res.ExpiresAt).Seconds())), RefreshToken: res.RefreshToken,
	})
}

// subjectTokenError: RFC 8693 §2.2.2 answers a refused subject token with
// invalid_request (400), not the 401 /v1/exchange uses; the reason stays.
func subjectTokenError(err error) error {
	e := exchange.AsError(err)
	if e.Kind != exchange.KindInvalidToken {
		return err
	}
	cp := *e
	cp.Kind = exchange.KindInvalidRequest
	return &cp
}

func (s *Server) handleOAuthRevoke(c echo.Context) error {
	p, client, err := s.oauthRequest(c)
	if err != nil {
		return err
	}
	if p["token"] == "" {
		return requestError(exchange.ReasonMissingToken, "token is required")
	}
	// token_type_hint is only a hint (RFC 7009 §2.1): both kinds are tried.
	if err := s.svc.Revoke(c.Request().Context(), p["token"], client); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.NoContent(http.StatusOK)
}

type introspectionResponse struct {
	Active    bool     `json:"active"`
	TokenType string   `json:"token_type,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	ExpiresAt int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	Username  string   `json:"username,omitempty"` // RFC 7662 §2.2
}

func (s *Server) handleOAuthIntrospect(c echo.Context) error {
	if !s.svc.ClientsConfigured() {
		// Without registered clients nobody can prove they are a resource
		// server, and an open introspection endpoint is a token oracle.
		return &exchange.Error{Kind: exchange.KindAccessDenied, Reason: exchange.ReasonNoClientsConfigured,
			Description: "introspection needs a registered confidential client; configure clients"}
	}
	p, client, err := s.oauthRequest(c)
	if err != nil {
		return err
	}
	if client.Public {
		return &exchange.Error{Kind: exchange.KindUnauthorizedClient, Reason: exchange.ReasonPublicClient,
			Description: "only a confidential client may introspect tokens"}
	}
	if p["token"] == "" {
		return requestError(exchange.ReasonMissingToken, "token is required")
	}
	in, err := s.svc.Introspect(c.Request().Context(), p["token"])
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, introspectionResponse{
		Active: in.Active, TokenType: in.TokenType, Subject: in.Subject, ClientID: in.ClientID,
		Issuer: in.Issuer, Audience: in.Audience, ExpiresAt: in.ExpiresAt, IssuedAt: in.IssuedAt,
		SessionID: in.SessionID, JTI: in.JTI, Username: in.Username,
	})
}
