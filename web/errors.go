package web

import (
	"errors"
	"fmt"
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

	// The claims hook (hooks.claims, on_failure: deny).
	exchange.KindHookUnavailable: {http.StatusServiceUnavailable, "temporarily_unavailable"},
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
			body.Reason = exchange.ReasonBodyTooLarge
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
		s.logRefusal(c, e, code)
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

// logRefusal logs what the client does not see of a refusal: the internals
// of a server error, the detail of any other, with the request id.
func (s *Server) logRefusal(c echo.Context, e *exchange.Error, code int) {
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	if code >= 500 {
		s.log.ErrorContext(c.Request().Context(), "request failed", "request_id", rid,
			"route", c.Path(), "reason", e.Reason, "err", e.Err)
	} else if e.Err != nil {
		s.log.InfoContext(c.Request().Context(), "request refused", "request_id", rid,
			"route", c.Path(), "reason", e.Reason, "detail", e.Err.Error())
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

// Compat profiles answer errors as the tutorial backends' views did: in
// their framework's body shape and, for some kinds, with another status or
// a fixed message. compatErrors is that part of the one table: per view,
// the kinds whose answer differs from statusOf. compatError writes it.

// compatView names a view of a tutorial backend whose error answers a
// compat route reproduces.
type compatView string

const (
	viewFastAPI       compatView = "fastapi"             // FastAPI's HTTPException (every fastapi route)
	viewDRF           compatView = "drf"                 // a plain DRF view
	viewDRFRegister   compatView = "simplejwt_register"  // the simplejwt tutorial's RegisterView
	viewDRFLogin      compatView = "simplejwt_login"     // simplejwt's TokenObtainPairView
	viewAllauthSocial compatView = "allauth_social"      // dj-rest-auth's SocialLoginView
	viewDRFToken      compatView = "simplejwt_token"     // simplejwt's refresh, verify and blacklist views
	viewDRFAuth       compatView = "simplejwt_auth"      // simplejwt's JWTAuthentication on a DRF view
	viewDJPassword    compatView = "djrestauth_password" // dj-rest-auth's password reset, confirm and change views
)

// compatBody is a framework's error body shape.
type compatBody int

const (
	bodyFastAPI compatBody = iota // {"detail": "message"}
	bodyDRF                       // {"field": ["message"]} or {"detail": "message"}
)

// compatStatus overrides statusOf for one kind in one view. The zero value
// keeps statusOf's status and the error's description.
type compatStatus struct {
	code    int
	detail  string // the framework's fixed message; "" keeps the description
	drfCode string // simplejwt's "code" field
	wwwAuth string // the WWW-Authenticate header the view sets
}

type compatRule struct {
	body compatBody
	// field puts a reason on a DRF form field ("" = detail); nil: none.
	field  func(reason string) string
	status map[exchange.Kind]compatStatus
	// others, when set, answers every kind not in status.
	others *compatStatus
}

var (
	// FastAPI's get_current_user: every refused credential is one 401.
	faUnauthorized = compatStatus{code: http.StatusUnauthorized, detail: "Could not validate credentials", wwwAuth: "Bearer"}
	// simplejwt: one answer for a wrong password and an inactive user.
	sjNoAccount = compatStatus{code: http.StatusUnauthorized, detail: "No active account found with the given credentials", drfCode: "no_active_account"}
)

var compatErrors = map[compatView]compatRule{
	viewFastAPI: {body: bodyFastAPI, status: map[exchange.Kind]compatStatus{
		exchange.KindInvalidCredentials: faUnauthorized,
		exchange.KindInvalidToken:       faUnauthorized,
		exchange.KindAccessDenied:       faUnauthorized,
		exchange.KindServer:             {detail: "Internal Server Error"},
	}},
	viewDRF: {body: bodyDRF},
	viewDRFRegister: {body: bodyDRF, field: sjField, status: map[exchange.Kind]compatStatus{
		exchange.KindAccountExists: {code: http.StatusBadRequest},
	}},
	viewDRFLogin: {body: bodyDRF, status: map[exchange.Kind]compatStatus{
		exchange.KindInvalidCredentials: sjNoAccount,
		exchange.KindAccessDenied:       sjNoAccount,
	}},
	// allauth answers every refusal of the social token as a validation
	// error of the form.
	viewAllauthSocial: {body: bodyDRF, field: func(string) string { return "non_field_errors" }, status: map[exchange.Kind]compatStatus{
		exchange.KindInvalidRequest:      {code: http.StatusBadRequest},
		exchange.KindInvalidToken:        {code: http.StatusBadRequest},
		exchange.KindUnsupportedProvider: {code: http.StatusBadRequest},
		exchange.KindAccountExists:       {code: http.StatusBadRequest},
	}},
	// A refused token is one 401; what is not about the token keeps its
	// own answer (drfNotToken).
	viewDRFToken: {body: bodyDRF, status: drfNotToken, others: &compatStatus{code: http.StatusUnauthorized,
		detail: "Token is invalid or expired", drfCode: "token_not_valid", wwwAuth: `Bearer realm="api"`}},
	viewDRFAuth: {body: bodyDRF, status: drfNotToken, others: &compatStatus{code: http.StatusUnauthorized,
		detail: "Given token not valid for any token type", drfCode: "token_not_valid", wwwAuth: `Bearer realm="api"`}},
	// dj-rest-auth's password views answer a form's validation errors:
	// a wrong old password is a 400 on old_password, not a 401.
	viewDJPassword: {body: bodyDRF, field: djPasswordField, status: map[exchange.Kind]compatStatus{
		exchange.KindInvalidCredentials: {code: http.StatusBadRequest,
			detail: "Your old password was entered incorrectly. Please enter it again."},
	}},
}

// drfNotToken: the kinds the simplejwt token views answer as statusOf does
// rather than as a bad token: a failing store is a 5xx; a misconfigured
// client is invalid_client, not a token to throw away; and a client told
// its token is bad signs the user out, so "slow down" and "busy" keep
// their 429 and 503 with Retry-After.
var drfNotToken = map[exchange.Kind]compatStatus{
	exchange.KindStoreUnavailable: {}, exchange.KindServer: {},
	exchange.KindInvalidClient: {wwwAuth: `Basic realm="authex", charset="UTF-8"`},
	exchange.KindRateLimited:   {}, exchange.KindBusy: {},
	exchange.KindHookUnavailable: {},
}

// compatError writes err as view answers it, with our machine-readable
// reason in every body. Echo's own errors (413, ...) keep the core shape.
func (s *Server) compatError(c echo.Context, view compatView, err error) error {
	if passThrough(err) {
		return err
	}
	rule := compatErrors[view]
	e := exchange.AsError(err)
	code, detail := statusOf[e.Kind].code, e.Description
	if code == 0 {
		code = http.StatusInternalServerError
	}
	ov, listed := rule.status[e.Kind]
	if !listed && rule.others != nil {
		ov = *rule.others
	}
	if ov.code != 0 {
		code = ov.code
	}
	if ov.detail != "" {
		detail = ov.detail
	}
	if ov.wwwAuth != "" {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, ov.wwwAuth)
	}
	s.logRefusal(c, e, code)
	secs := 0
	if code == http.StatusTooManyRequests {
		secs = retryAfter(c, e)
	}
	if e.Kind == exchange.KindBusy && e.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
	if rule.body == bodyFastAPI {
		return compatJSON(c, code, map[string]any{"detail": detail, "reason": e.Reason})
	}
	if code >= 500 {
		detail = "A server error occurred."
	}
	if secs > 0 {
		detail = fmt.Sprintf("Request was throttled. Expected available in %d seconds.", secs)
	}
	body := map[string]any{"reason": e.Reason}
	if ov.drfCode != "" {
		body["code"] = ov.drfCode
	}
	if e.LinkToken != "" {
		body["link_token"] = e.LinkToken
	}
	if f := fieldOf(rule, e.Reason); f != "" {
		body[f] = []string{detail}
	} else {
		body["detail"] = detail
	}
	return compatJSON(c, code, body)
}

func fieldOf(rule compatRule, reason string) string {
	if rule.field == nil {
		return ""
	}
	return rule.field(reason)
}
