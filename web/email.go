package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
)

// Email verification and password reset (docs/accounts.md).

// forgotAnswer is the one answer of /v1/password/forgot, whether or not
// the account exists.
var forgotAnswer = map[string]string{"status": "accepted",
	"detail": "if a password account has this email, a reset link is on its way"}

func (s *Server) handleSendVerification(c echo.Context) error {
	if err := s.svc.SendVerification(c.Request().Context(), principalOf(c), c.RealIP()); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"status": "sent"})
}

func (s *Server) handleVerifyEmail(c echo.Context) error {
	var req struct {
		Token string `json:"token"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := s.svc.VerifyEmail(c.Request().Context(), req.Token)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"user_id": u.ID, "email": u.Email, "email_verified": u.EmailVerified})
}

func (s *Server) handleForgotPassword(c echo.Context) error {
	var req struct {
		Email string `json:"email"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.svc.ForgotPassword(c.Request().Context(), req.Email, c.RealIP()); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, forgotAnswer)
}

func (s *Server) handleResetPassword(c echo.Context) error {
	var req struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	n, err := s.svc.ResetPassword(c.Request().Context(), exchange.ResetRequest{Token: req.Token, Password: req.Password})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"revoked": n})
}
