package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
)

// Password accounts: /v1/register and /v1/login answer exactly as
// /v1/exchange does; /v1/me/password changes the caller's password.

type registerRequest struct {
	Email        string `json:"email"`
	Password     string `json:"password"`
	Name         string `json:"name"`
	Username     string `json:"username"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

type loginRequest struct {
	Email        string `json:"email"`
	Username     string `json:"username"`
	Identifier   string `json:"identifier"` // an email when it contains '@', else a username
	Password     string `json:"password"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func (s *Server) handleRegister(c echo.Context) error {
	var req registerRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	who, err := s.caller(c, req.ClientID, req.ClientSecret)
	if err != nil {
		return err
	}
	res, err := s.svc.Register(c.Request().Context(), exchange.RegisterRequest{
		Email: req.Email, Password: req.Password, Name: req.Name, Username: req.Username, Client: who,
	})
	if err != nil {
		return err
	}
	return writeTokens(c, toTokenResponse(res, true))
}

func (s *Server) handleLogin(c echo.Context) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	who, err := s.caller(c, req.ClientID, req.ClientSecret)
	if err != nil {
		return err
	}
	res, err := s.svc.Login(c.Request().Context(), exchange.LoginRequest{
		Email: req.Email, Username: req.Username, Identifier: req.Identifier, Password: req.Password, Client: who,
	})
	if err != nil {
		return err
	}
	return writeTokens(c, toTokenResponse(res, true))
}

func (s *Server) handleSetPassword(c echo.Context) error {
	var req struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	n, err := s.svc.SetPassword(c.Request().Context(), principalOf(c), exchange.SetPasswordRequest{
		Current: req.CurrentPassword, New: req.NewPassword, IP: c.RealIP(),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"revoked": n})
}
