package web

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
)

// errorBody is the one error shape of every endpoint (RFC 6749 §5.2 plus
// our machine-readable reason and the request id to quote to an operator).
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Reason      string `json:"reason,omitempty"`
	RequestID   string `json:"request_id"`
	LinkToken   string `json:"link_token,omitempty"`
}

type status struct {
	code  int
	error string
}

// statusOf is the one table that turns error kinds into HTTP statuses.
var statusOf = map[exchange.Kind]status{
	exchange.KindInvalidRequest:      {http.StatusBadRequest, "invalid_request"},
	exchange.KindUnsupportedProvider: {http.StatusBadRequest, "unsupported_provider"},
	exchange.KindInvalidClient:       {http.StatusUnauthorized, "invalid_client"},
	exchange.KindInvalidToken:        {http.StatusUnauthorized, "invalid_token"},
	exchange.KindInvalidGrant:        {http.StatusBadRequest, "invalid_grant"},
	exchange.KindAccountExists:       {http.StatusConflict, "account_exists"},
	exchange.KindIdentityInUse:       {http.StatusConflict, "identity_in_use"},
	exchange.KindAccessDenied:        {http.StatusForbidden, "access_denied"},
	exchange.KindRateLimited:         {http.StatusTooManyRequests, "rate_limited"},
	exchange.KindProviderUnavailable: {http.StatusServiceUnavailable, "provider_unavailable"},
	exchange.KindStoreUnavailable:    {http.StatusServiceUnavailable, "server_error"},
	exchange.KindNotFound:            {http.StatusNotFound, "not_found"},
	exchange.KindServer:              {http.StatusInternalServerError, "server_error"},

	// Linking, clients and the OAuth endpoints.
	exchange.KindConflict:             {http.StatusConflict, "conflict"},
	exchange.KindUnauthorizedClient:   {http.StatusBadRequest, "unauthorized_client"},
	exchange.KindUnsupportedGrantType: {http.StatusBadRequest, "unsupported_grant_type"},

	// Password accounts.
	exchange.KindInvalidCredentials: {http.StatusUnauthorized, "invalid_credentials"},

	// Operations.
	exchange.KindNotImplemented: {http.StatusNotImplemented, "not_implemented"},
	exchange.KindBusy:           {http.StatusServiceUnavailable, "server_error"},
}

// requestError is a refusal found by web itself (a body too large, bad
// JSON), in the same shape as the domain's.
func requestError(reason, description string) error {
	return &exchange.Error{Kind: exchange.KindInvalidRequest, Reason: reason, Description: description}
}

// errorHandler writes every error, ours or echo's, in the one shape, and
// logs internals with the request id; the client sees only the description.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	var body errorBody
	code := http.StatusInternalServerError
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		body = errorBody{Error: httpErrorCode(he.Code), Description: http.StatusText(he.Code)}
		if code == http.StatusRequestEntityTooLarge {
			body.Reason = "body_too_large"
			body.Description = "request body is larger than 64 KiB"
		}
	} else {
		e := exchange.AsError(err)
		st, ok := statusOf[e.Kind]
		if !ok {
			st = statusOf[exchange.KindServer]
		}
		code = st.code
		body = errorBody{Error: st.error, Description: e.Description, Reason: e.Reason, LinkToken: e.LinkToken}
		if (e.Kind == exchange.KindRateLimited || e.Kind == exchange.KindBusy) && e.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
		}
		if e.Kind == exchange.KindInvalidClient {
			// RFC 6749 §5.2: a 401 invalid_client names the scheme to use.
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="authex", charset="UTF-8"`)
		}
		if e.Kind == exchange.KindInvalidToken && c.Get(bearerUsed) != nil {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer error="invalid_token"`)
		}
		if code >= 500 {
			s.log.ErrorContext(c.Request().Context(), "request failed", "request_id", rid,
				"route", c.Path(), "reason", e.Reason, "err", e.Err)
		} else if e.Err != nil {
			s.log.InfoContext(c.Request().Context(), "request refused", "request_id", rid,
				"route", c.Path(), "reason", e.Reason, "detail", e.Err.Error())
		}
	}
	body.RequestID = rid
	c.Response().Header().Set("Cache-Control", "no-store")
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	if err := c.JSON(code, body); err != nil {
		slog.Default().Error("write error body", "err", err)
	}
}

func httpErrorCode(code int) string {
	switch {
	case code == http.StatusNotFound:
		return "not_found"
	case code == http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case code == http.StatusRequestEntityTooLarge:
		return "invalid_request"
	case code >= 500:
		return "server_error"
	default:
		return "invalid_request"
	}
}
