package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
)

// dj-rest-auth's password routes (djrestauth profile): PasswordResetView,
// PasswordResetConfirmView and PasswordChangeView, with their field names,
// answers and error shapes, over /v1/password/forgot, /v1/password/reset
// and /v1/me/password.

// djPasswordField puts a reason on the form field dj-rest-auth reports it
// on (Django's SetPasswordForm reports the validators on new_password2).
func djPasswordField(reason string) string {
	switch {
	case strings.HasPrefix(reason, "password_"), reason == exchange.ReasonMissingPassword:
		return "new_password2"
	case reason == exchange.ReasonInvalidEmail, reason == exchange.ReasonMissingEmail:
		return "email"
	case reason == exchange.ReasonInvalidEmailToken:
		return "token"
	case reason == exchange.ReasonInvalidCredentials, reason == exchange.ReasonMissingCurrentPassword:
		return "old_password"
	}
	return ""
}

// djPasswordReset: {email} -> 200 {"detail": "Password reset e-mail has
// been sent."}, whether or not the account exists.
func (s *Server) djPasswordReset(c echo.Context) error {
	var req struct {
		Email string `json:"email" form:"email"`
	}
	if err := compatDecode(c, &req); err != nil {
		return s.compatError(c, viewDRF, err)
	}
	if req.Email == "" {
		return drfRequired(c, "email")
	}
	if err := s.svc.ForgotPassword(c.Request().Context(), req.Email, c.RealIP()); err != nil {
		return s.compatError(c, viewDJPassword, err)
	}
	return c.JSON(http.StatusOK, map[string]string{"detail": "Password reset e-mail has been sent."})
}

// djPasswordResetConfirm: {uid, token, new_password1, new_password2} ->
// 200 {"detail": "Password has been reset with the new password."}.
func (s *Server) djPasswordResetConfirm(c echo.Context) error {
	var req struct {
		UID       string `json:"uid" form:"uid"`
		Token     string `json:"token" form:"token"`
		Password1 string `json:"new_password1" form:"new_password1"`
		Password2 string `json:"new_password2" form:"new_password2"`
	}
	if err := compatDecode(c, &req); err != nil {
		return s.compatError(c, viewDRF, err)
	}
	if missing := missingFields(map[string]string{"uid": req.UID, "token": req.Token,
		"new_password1": req.Password1, "new_password2": req.Password2}); len(missing) > 0 {
		return drfRequired(c, missing...)
	}
	if req.Password1 != req.Password2 {
		return compatJSON(c, http.StatusBadRequest, map[string]any{"reason": exchange.ReasonPasswordMismatch,
			"new_password2": []string{"The two password fields didn’t match."}})
	}
	_, err := s.svc.ResetPassword(c.Request().Context(), exchange.ResetRequest{Token: req.Token, Password: req.Password1, UID: req.UID})
	if e := exchange.AsError(err); err != nil && e.Reason == exchange.ReasonInvalidEmailToken {
		// dj-rest-auth's own words for a bad token.
		return compatJSON(c, http.StatusBadRequest, map[string]any{"reason": e.Reason, "token": []string{"Invalid value"}})
	}
	if err != nil {
		return s.compatError(c, viewDJPassword, err)
	}
	return c.JSON(http.StatusOK, map[string]string{"detail": "Password has been reset with the new password."})
}

// djPasswordChange: Bearer + {new_password1, new_password2, old_password}
// -> 200 {"detail": "New password has been saved."}. Unlike dj-rest-auth's
// default (OLD_PASSWORD_FIELD_ENABLED = False), old_password is required
// when the account has a password, as on /v1/me/password.
func (s *Server) djPasswordChange(c echo.Context) error {
	p, err := s.drfPrincipal(c)
	if p == nil {
		return err // the 401 is written
	}
	var req struct {
		Old       string `json:"old_password" form:"old_password"`
		Password1 string `json:"new_password1" form:"new_password1"`
		Password2 string `json:"new_password2" form:"new_password2"`
	}
	if err := compatDecode(c, &req); err != nil {
		return s.compatError(c, viewDRF, err)
	}
	if missing := missingFields(map[string]string{"new_password1": req.Password1, "new_password2": req.Password2}); len(missing) > 0 {
		return drfRequired(c, missing...)
	}
	if req.Password1 != req.Password2 {
		return compatJSON(c, http.StatusBadRequest, map[string]any{"reason": exchange.ReasonPasswordMismatch,
			"new_password2": []string{"The two password fields didn’t match."}})
	}
	if _, err := s.svc.SetPassword(c.Request().Context(), p, exchange.SetPasswordRequest{
		Current: req.Old, New: req.Password1, IP: c.RealIP()}); err != nil {
		return s.compatError(c, viewDJPassword, err)
	}
	return c.JSON(http.StatusOK, map[string]string{"detail": "New password has been saved."})
}

// missingFields lists the empty ones, in a stable order.
func missingFields(fields map[string]string) []string {
	var out []string
	for _, k := range []string{"uid", "token", "old_password", "new_password1", "new_password2", "email"} {
		if v, ok := fields[k]; ok && v == "" {
			out = append(out, k)
		}
	}
	return out
}
