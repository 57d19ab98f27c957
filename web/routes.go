package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// routes lists the whole API surface in one place.
func (s *Server) routes(mounts map[string]http.Handler, compat []string) {
	e := s.echo
	e.POST("/v1/exchange", s.handleExchange)
	e.POST("/v1/token/refresh", s.handleRefresh)
	e.POST("/v1/logout", s.handleLogout)
	e.GET("/v1/me", s.handleMe, s.requireBearer)
	e.POST("/v1/register", s.handleRegister)
	e.POST("/v1/login", s.handleLogin)
	e.POST("/v1/me/password", s.handleSetPassword, s.requireBearer)
	e.POST("/v1/me/identities", s.handleLinkIdentity, s.requireBearer)
	e.DELETE("/v1/me/identities/:id", s.handleUnlinkIdentity, s.requireBearer)
	e.GET("/v1/me/sessions", s.handleListSessions, s.requireBearer)
	e.DELETE("/v1/me/sessions/:id", s.handleRevokeSession, s.requireBearer)
	e.POST("/v1/email/verify/send", s.handleSendVerification, s.requireBearer) // web/email.go
	e.POST("/v1/email/verify", s.handleVerifyEmail)
	e.POST("/v1/password/forgot", s.handleForgotPassword)
	e.POST("/v1/password/reset", s.handleResetPassword)

	e.POST("/oauth/token", s.handleOAuthToken)
	e.POST("/oauth/revoke", s.handleOAuthRevoke)
	e.POST("/oauth/introspect", s.handleOAuthIntrospect)

	e.POST("/v1/signals", s.handleSignal) // upstream security events (RFC 8935 push)
	e.POST("/v1/anonymous", s.handleAnonymous)

	e.GET("/.well-known/openid-configuration", s.handleDiscovery())
	e.GET("/.well-known/oauth-authorization-server", s.handleDiscovery()) // RFC 8414
	e.GET("/.well-known/jwks.json", s.handleJWKS)
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)

	s.compatRoutes(compat) // web/compat*.go: the tutorials' frontends' routes

	if !s.adminSeparate {
		s.adminRoutes(false)
	}

	for prefix, h := range mounts {
		prefix = strings.TrimSuffix(prefix, "/")
		e.Any(prefix+"/*", echo.WrapHandler(h))
		e.Any(prefix, echo.WrapHandler(h))
	}
}

// adminRoutes lists the operator API (docs/admin.md) and /metrics: on the
// public server, or alone on the admin listener (server.admin_listen).
// On the admin listener, which only the operator's network reaches,
// /metrics is open to the scraper; on the public server it needs an admin
// token like the rest, since it tells anyone the traffic, the users'
// provider mix and the store's health.
func (s *Server) adminRoutes(adminListener bool) {
	if s.metrics != nil {
		if adminListener {
			s.echo.GET("/metrics", echo.WrapHandler(s.metrics.Handler()))
		} else {
			s.echo.GET("/metrics", echo.WrapHandler(s.metrics.Handler()), s.requireAdmin)
		}
	}
	a := s.echo.Group("/admin/v1", s.requireAdmin)
	a.GET("/users", s.handleAdminUsers)
	a.GET("/users/:id", s.handleAdminUser)
	a.POST("/users/:id/disable", s.handleAdminDisable(true))
	a.POST("/users/:id/enable", s.handleAdminDisable(false))
	a.DELETE("/users/:id", s.handleAdminDeleteUser)
	a.PUT("/users/:id/roles", s.handleAdminRoles)
	a.GET("/users/:id/sessions", s.handleAdminSessions)
	a.DELETE("/users/:id/sessions", s.handleAdminRevokeUserSessions)
	a.DELETE("/sessions/:id", s.handleAdminRevokeSession)
	a.GET("/keys", s.handleAdminKeys)
	a.POST("/keys/rotate", s.handleAdminRotate)
	a.POST("/keys/:kid/revoke", s.handleAdminRevokeKey)
	a.GET("/secrets/refresh", s.handleAdminRefreshSecrets)
	a.POST("/secrets/refresh/rotate", s.handleAdminRotateRefreshSecret)
	a.POST("/secrets/refresh/:id/retire", s.handleAdminRetireRefreshSecret)
	a.GET("/audit", s.handleAdminAudit)
	a.GET("/backup", s.handleAdminBackup)
	a.GET("/webhooks/deliveries", s.handleAdminDeliveries)
	a.POST("/webhooks/deliveries/:endpoint/:id/replay", s.handleAdminReplayDelivery)
}
