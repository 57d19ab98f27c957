package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

type linkRequest struct {
	LinkToken string `json:"link_token"`
	Provider  string `json:"provider"`
	credentialFields
	Nonce string `json:"nonce"`
	// The Authorization header holds the Bearer token: a client that
	// authenticates here (to attest a nonce, see handleLinkIdentity) does
	// so in the body.
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

type linkResponse struct {
	Linked   bool         `json:"linked"`
	Identity identityJSON `json:"identity"`
	User     userJSON     `json:"user"`
}

// handleLinkIdentity links a link_token's identity, or a fresh provider
// credential's, to the bearer's user: 201 when linked now, 200 when it
// already was.
func (s *Server) handleLinkIdentity(c echo.Context) error {
	// From here on an invalid_token is about the provider credential, not
	// about the Bearer token that has just been accepted.
	c.Set(bearerUsed, nil)
	var req linkRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	// Client authentication is optional here (the Bearer token proves the
	// user): a client that sends its credentials is checked, and one
	// registered with verifies_nonce may then omit the nonce.
	var clientID string
	if req.ClientID != "" || req.ClientSecret != "" {
		client, err := s.authClient(c, req.ClientID, req.ClientSecret)
		if err != nil {
			return err
		}
		if client != nil {
			clientID = client.ID
		}
	}
	ctx := c.Request().Context()
	res, err := s.svc.LinkIdentity(ctx, principalOf(c), exchange.LinkRequest{
		LinkToken:  req.LinkToken,
		Provider:   req.Provider,
		Credential: req.credential(req.Nonce),
		ClientID:   clientID,
	})
	if err != nil {
		return err
	}
	// Linking adds an identity and never changes the user record, which
	// Authenticate has just read: only the identities are read again.
	user := principalOf(c).User
	idents, err := s.svc.Identities(ctx, user.ID)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if res.Linked {
		code = http.StatusCreated
	}
	id := res.Identity
	return c.JSON(code, linkResponse{
		Linked:   res.Linked,
		Identity: identityJSON{ID: id.ID, Provider: id.Provider, Subject: id.Subject, Email: id.Email},
		User:     toUserJSON(user, nonNil(idents)),
	})
}

func (s *Server) handleUnlinkIdentity(c echo.Context) error {
	if err := s.svc.UnlinkIdentity(c.Request().Context(), principalOf(c).User.ID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type sessionJSON struct {
	ID            string    `json:"id"`
	CreatedAt     time.Time `json:"created_at"`
	LastRefreshAt time.Time `json:"last_refresh_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	UserAgent     string    `json:"user_agent"`
	IP            string    `json:"ip"`
	Provider      string    `json:"provider"`
	ClientID      string    `json:"client_id,omitempty"`
	Current       bool      `json:"current"`
}

func (s *Server) handleListSessions(c echo.Context) error {
	p := principalOf(c)
	list, err := s.svc.ListLiveSessions(c.Request().Context(), p.User.ID)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, len(list))
	for i, sess := range list {
		out[i] = sessionJSON{
			ID: sess.ID, CreatedAt: sess.CreatedAt.UTC(), LastRefreshAt: sess.RotatedAt.UTC(),
			ExpiresAt: sess.IdleExpiresAt.UTC(), UserAgent: sess.UserAgent, IP: sess.IP,
			Provider: sess.Provider, ClientID: sess.ClientID, Current: sess.ID == p.Claims.SessionID,
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) handleRevokeSession(c echo.Context) error {
	if err := s.svc.RevokeOwnSession(c.Request().Context(), principalOf(c).User.ID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func nonNil(idents []storage.Identity) []storage.Identity {
	if idents == nil {
		return []storage.Identity{}
	}
	return idents
}
