package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

const actorKey = "authex.admin"

// requireAdmin accepts a Bearer token equal to one of the configured admin
// tokens. Both sides are hashed first, so the comparison runs in constant
// time whatever the lengths, and every configured token is compared, so
// the time does not say which one matched. The actor recorded in the
// audit log is a fingerprint of the token, never the token.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(bearerUsed, true)
		token, ok := bearerToken(c)
		if !ok || token == "" {
			return adminRefused(exchange.ReasonMissingToken, "an Authorization: Bearer admin token is required")
		}
		if len(s.adminTokens) == 0 {
			return adminRefused(exchange.ReasonAdminDisabled, "no admin token is configured (admin.tokens or admin.tokens_file)")
		}
		sum := sha256.Sum256([]byte(token))
		match := 0
		for i := range s.adminTokens {
			match |= subtle.ConstantTimeCompare(sum[:], s.adminTokens[i][:])
		}
		if match != 1 {
			return adminRefused(exchange.ReasonAdminToken, "the admin token is not valid")
		}
		c.Set(actorKey, "admin:"+hex.EncodeToString(sum[:4]))
		return next(c)
	}
}

func adminRefused(reason, description string) error {
	return &exchange.Error{Kind: exchange.KindInvalidToken, Reason: reason, Description: description}
}

func actorOf(c echo.Context) string {
	a, _ := c.Get(actorKey).(string)
	return a
}

type adminIdentityJSON struct {
	ID            string     `json:"id"`
	Provider      string     `json:"provider"`
	Issuer        string     `json:"issuer"`
	Subject       string     `json:"subject"`
	Email         string     `json:"email"`
	EmailVerified bool       `json:"email_verified"`
	CreatedAt     time.Time  `json:"created_at"`
	LastLoginAt   *time.Time `json:"last_login_at,omitempty"`
}

type adminUserJSON struct {
	ID            string               `json:"id"`
	Email         string               `json:"email"`
	EmailVerified bool                 `json:"email_verified"`
	Name          string               `json:"name"`
	Picture       string               `json:"picture"`
	Roles         []string             `json:"roles"`
	Disabled      bool                 `json:"disabled"`
	Password      bool                 `json:"password"`
	CreatedAt     time.Time            `json:"created_at"`
	UpdatedAt     time.Time            `json:"updated_at"`
	Identities    *[]adminIdentityJSON `json:"identities,omitempty"`
	Username      string               `json:"username,omitempty"`
	GivenName     string               `json:"given_name,omitempty"`
	FamilyName    string               `json:"family_name,omitempty"`
}

func toAdminUser(u storage.User, idents []storage.Identity) adminUserJSON {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	out := adminUserJSON{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		Picture: u.Picture, Roles: roles, Disabled: u.Disabled, Password: u.PasswordHash != "",
		Username: u.Username, GivenName: u.GivenName, FamilyName: u.FamilyName,
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
	if idents != nil {
		list := make([]adminIdentityJSON, len(idents))
		for i, id := range idents {
			list[i] = adminIdentityJSON{ID: id.ID, Provider: id.Provider, Issuer: id.Issuer, Subject: id.Subject,
				Email: id.Email, EmailVerified: id.EmailVerified, CreatedAt: id.CreatedAt.UTC(), LastLoginAt: optTime(id.LastLoginAt)}
		}
		out.Identities = &list
	}
	return out
}

type adminSessionJSON struct {
	ID            string     `json:"id"`
	UserID        string     `json:"user_id"`
	Provider      string     `json:"provider"`
	ClientID      string     `json:"client_id,omitempty"`
	Active        bool       `json:"active"`
	Generation    uint64     `json:"generation"`
	CreatedAt     time.Time  `json:"created_at"`
	RotatedAt     time.Time  `json:"rotated_at"`
	IdleExpiresAt time.Time  `json:"idle_expires_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
	UserAgent     string     `json:"user_agent,omitempty"`
	IP            string     `json:"ip,omitempty"`
}

type adminKeyJSON struct {
	ID        string     `json:"id"`
	Algorithm string     `json:"algorithm"`
	State     string     `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	NotBefore time.Time  `json:"not_before"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	FromFile  bool       `json:"from_file,omitempty"`
}

type adminRefreshSecretJSON struct {
	ID         string     `json:"id"`
	State      string     `json:"state"`
	ActiveFrom *time.Time `json:"active_from,omitempty"`
	RetiresAt  *time.Time `json:"retires_at,omitempty"`
}

type adminAuditJSON struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	UserID    string    `json:"user_id,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	Provider  string    `json:"provider,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// queryLimit reads the optional ?limit= of a list; 0 when absent.
func queryLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, requestError(exchange.ReasonInvalidLimit, "limit must be a number")
	}
	return n, nil
}

func (s *Server) handleAdminUsers(c echo.Context) error {
	f := storage.UserFilter{
		Email: c.QueryParam("email"), Provider: c.QueryParam("provider"), Subject: c.QueryParam("subject"),
		After: c.QueryParam("after"), Username: c.QueryParam("username"),
	}
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	f.Limit = limit
	users, err := s.admin.ListUsers(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Users     []adminUserJSON `json:"users"`
		NextAfter string          `json:"next_after,omitempty"`
	}{Users: make([]adminUserJSON, 0, len(users))}
	for _, u := range users {
		out.Users = append(out.Users, toAdminUser(u, nil))
	}
	if limit == 0 {
		limit = exchange.DefaultUserPage
	}
	if len(users) == limit {
		out.NextAfter = users[len(users)-1].ID
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleAdminUser(c echo.Context) error {
	u, idents, err := s.admin.GetUser(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAdminUser(u, nonNil(idents)))
}

func (s *Server) handleAdminDisable(disabled bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, n, err := s.admin.SetDisabled(c.Request().Context(), c.Param("id"), disabled, actorOf(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"user": toAdminUser(u, nil), "revoked_sessions": n})
	}
}

func (s *Server) handleAdminDeleteUser(c echo.Context) error {
	id := c.Param("id")
	if err := s.admin.DeleteUser(c.Request().Context(), id, actorOf(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"deleted": id})
}

func (s *Server) handleAdminRoles(c echo.Context) error {
	var req struct {
		Roles *[]string `json:"roles"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Roles == nil {
		return requestError(exchange.ReasonMissingRoles, `roles is required (a list; [] removes every role)`)
	}
	u, err := s.admin.SetRoles(c.Request().Context(), c.Param("id"), *req.Roles, actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAdminUser(u, nil))
}

func (s *Server) handleAdminSessions(c echo.Context) error {
	list, err := s.admin.ListSessions(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	now := s.admin.Now()
	out := make([]adminSessionJSON, 0, len(list))
	for _, x := range list {
		out = append(out, adminSessionJSON{
			ID: x.ID, UserID: x.UserID, Provider: x.Provider, ClientID: x.ClientID,
			Active: !x.Revoked() && !x.Expired(now), Generation: x.Generation,
			CreatedAt: x.CreatedAt.UTC(), RotatedAt: x.RotatedAt.UTC(), IdleExpiresAt: x.IdleExpiresAt.UTC(),
			ExpiresAt: x.ExpiresAt.UTC(), RevokedAt: optTime(x.RevokedAt), RevokedReason: x.RevokedReason,
			UserAgent: x.UserAgent, IP: x.IP,
		})
	}
	return c.JSON(http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) handleAdminRevokeUserSessions(c echo.Context) error {
	n, err := s.admin.RevokeUserSessions(c.Request().Context(), c.Param("id"), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"revoked": n})
}

func (s *Server) handleAdminRevokeSession(c echo.Context) error {
	if err := s.admin.RevokeSession(c.Request().Context(), c.Param("id"), actorOf(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"revoked": 1})
}

func toAdminKey(k exchange.KeyInfo) adminKeyJSON {
	return adminKeyJSON{ID: k.ID, Algorithm: k.Algorithm, State: k.State, CreatedAt: k.CreatedAt.UTC(),
		NotBefore: k.NotBefore.UTC(), RetiredAt: optTime(k.RetiredAt), ExpiresAt: optTime(k.ExpiresAt),
		RevokedAt: optTime(k.RevokedAt), FromFile: k.FromFile}
}

func (s *Server) handleAdminRevokeKey(c echo.Context) error {
	k, repl, err := s.admin.RevokeKey(c.Request().Context(), c.Param("kid"), actorOf(c))
	if err != nil {
		return err
	}
	out := map[string]any{"key": toAdminKey(k)}
	if repl != nil {
		out["replacement"] = toAdminKey(*repl)
	}
	return c.JSON(http.StatusOK, out)
}

func toAdminRefreshSecret(r exchange.RefreshSecretInfo) adminRefreshSecretJSON {
	return adminRefreshSecretJSON{ID: r.ID, State: r.State, ActiveFrom: optTime(r.ActiveFrom), RetiresAt: optTime(r.RetiresAt)}
}

func (s *Server) handleAdminRefreshSecrets(c echo.Context) error {
	list, err := s.admin.RefreshSecrets(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]adminRefreshSecretJSON, 0, len(list))
	for _, r := range list {
		out = append(out, toAdminRefreshSecret(r))
	}
	return c.JSON(http.StatusOK, map[string]any{"secrets": out})
}

func (s *Server) handleAdminRotateRefreshSecret(c echo.Context) error {
	r, err := s.admin.RotateRefreshSecret(c.Request().Context(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"secret": toAdminRefreshSecret(r)})
}

func (s *Server) handleAdminRetireRefreshSecret(c echo.Context) error {
	if err := s.admin.RetireRefreshSecret(c.Request().Context(), c.Param("id"), actorOf(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"retired": c.Param("id")})
}

func (s *Server) handleAdminKeys(c echo.Context) error {
	keys, err := s.admin.ListKeys(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]adminKeyJSON, 0, len(keys))
	for _, k := range keys {
		out = append(out, toAdminKey(k))
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": out})
}

func (s *Server) handleAdminRotate(c echo.Context) error {
	k, err := s.admin.RotateKey(c.Request().Context(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"key": toAdminKey(k)})
}

func (s *Server) handleAdminAudit(c echo.Context) error {
	f := storage.AuditFilter{UserID: c.QueryParam("user_id"), Type: c.QueryParam("type")}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		v := c.QueryParam(name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return requestError(exchange.ReasonInvalidTime, name+" must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
		*dst = t
	}
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	f.Limit = limit
	events, err := s.admin.ListAudit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := make([]adminAuditJSON, 0, len(events))
	for _, e := range events {
		out = append(out, adminAuditJSON{ID: e.ID, Time: e.Time.UTC(), Type: e.Type, UserID: e.UserID,
			SessionID: e.SessionID, Provider: e.Provider, Detail: e.Detail})
	}
	return c.JSON(http.StatusOK, map[string]any{"events": out})
}

// handleAdminBackup streams a consistent copy of the store. Once the first
// byte is out the status cannot change, so a failure half-way aborts the
// connection: the client sees a truncated transfer, never a short file
// that looks whole (the CLI also checks the file before keeping it).
func (s *Server) handleAdminBackup(c echo.Context) error {
	if !s.admin.CanBackup() {
		_, err := s.admin.Backup(c.Request().Context(), nil, actorOf(c))
		return err
	}
	// A large file takes longer than the server's write timeout.
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Time{})
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEOctetStream)
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="authex-%s.db"`, time.Now().UTC().Format("20060102T150405Z")))
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	n, err := s.admin.Backup(c.Request().Context(), c.Response(), actorOf(c))
	if err != nil {
		s.log.ErrorContext(c.Request().Context(), "backup failed mid-stream", "request_id",
			c.Response().Header().Get(echo.HeaderXRequestID), "bytes", n, "err", err)
		if errors.Is(err, c.Request().Context().Err()) {
			return nil
		}
		panic(http.ErrAbortHandler)
	}
	return nil
}
