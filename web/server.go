// Package web is authex's HTTP surface: routes, handlers, middleware and the
// one table that maps domain error kinds to HTTP statuses. It is the only
// package that knows echo; it holds no business rules of its own.
package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/authex/authex/exchange"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

// Deps are everything the server needs, passed explicitly.
type Deps struct {
	Exchange *exchange.Service
	Logger   *slog.Logger
	// Mounts lets the caller add routes owned by other components (the
	// development emulator) without web knowing them.
	Mounts map[string]http.Handler

	// Metrics, when set, counts every request and serves GET /metrics
	// (behind an admin token here; open on the admin listener).
	Metrics *Metrics
	// AdminTokens guard /admin/v1 (Bearer, compared in constant time).
	// With none, every admin request is refused.
	AdminTokens []string
	// AdminSeparate moves /admin/v1 and /metrics off this server: they are
	// served only by NewAdminServer, on the admin listener.
	AdminSeparate bool
	// TrustedProxies are the networks whose X-Forwarded-For is believed;
	// from anyone else the connection's address is the client's.
	TrustedProxies []*net.IPNet
	// Compat names the compatibility profiles to serve (web/compat*.go).
	Compat []string
	// CompatClient is the public client the compat routes act as when
	// clients are configured; without it they refuse (invalid_client).
	CompatClient string
}

// Server is the HTTP API.
type Server struct {
	echo          *echo.Echo
	svc           *exchange.Service
	log           *slog.Logger
	admin         *exchange.Admin
	adminTokens   [][sha256.Size]byte
	adminSeparate bool
	metrics       *Metrics
	compatClient  string
}

// NewServer builds the API with every route registered (the admin API and
// /metrics too, both behind an admin token, unless Deps.AdminSeparate).
func NewServer(d Deps) *Server {
	s := newServer(d)
	s.routes(d.Mounts, d.Compat)
	return s
}

// NewAdminServer builds the admin listener's server: /admin/v1, /metrics
// and /healthz only.
func NewAdminServer(d Deps) *Server {
	s := newServer(d)
	s.adminRoutes(true)
	s.echo.GET("/healthz", s.handleHealthz)
	return s
}

func newServer(d Deps) *Server {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{echo: e, svc: d.Exchange, log: d.Logger, metrics: d.Metrics, adminSeparate: d.AdminSeparate,
		compatClient: d.CompatClient}
	if s.log == nil {
		s.log = slog.Default()
	}
	if d.Exchange != nil {
		s.admin = d.Exchange.Admin()
	}
	for _, t := range d.AdminTokens {
		s.adminTokens = append(s.adminTokens, sha256.Sum256([]byte(t)))
	}
	e.IPExtractor = ipExtractor(d.TrustedProxies)
	e.HTTPErrorHandler = s.errorHandler
	e.Use(requestID)
	e.Use(securityHeaders)
	e.Use(s.accessLog)
	if s.metrics != nil {
		e.Use(s.metrics.middleware)
	}
	e.Use(middleware.Recover())
	e.Use(limitBody)
	e.Use(boundRequest)
	return s
}

// ipExtractor trusts X-Forwarded-For only from the configured proxies:
// the header is client-controlled. Echo's defaults would trust every
// private, loopback and link-local address; those are turned off so that
// only the listed networks count.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// ServeHTTP makes the server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// NewHTTPServer wraps a handler with the timeouts a public service needs:
// slow clients cannot hold connections or goroutines forever.
func NewHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// maxRequestID bounds a client's X-Request-ID.
const maxRequestID = 64

// validRequestID accepts a client's X-Request-ID only when it is 1-64
// characters of [A-Za-z0-9._-]: it is echoed in a header and in every
// error body and written to the log, so anything else (newlines, quotes,
// JSON, megabytes) is replaced by our own id.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// requestID keeps a client's X-Request-ID when it is safe to echo and log,
// and makes one otherwise; the answer carries it in X-Request-Id.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rid := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(rid) {
			rid = newRequestID()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, rid)
		return next(c)
	}
}

// securityHeaders puts on every answer what keeps a browser or a cache
// from misusing it: nosniff, and no-store (with Pragma for HTTP/1.0
// caches), since most answers carry a token or user data. The few public,
// cacheable answers (discovery, JWKS) set their own Cache-Control and drop
// Pragma (publicCache).
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		return next(c)
	}
}

// publicCache marks an answer that carries nothing private as cacheable.
func publicCache(c echo.Context, maxAge string) {
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age="+maxAge)
	h.Del("Pragma")
}

// RequestTimeout bounds the work one API request may do (provider fetches,
// store queries): a database that drops packets instead of refusing them
// must turn into a 503, not a request that hangs until TCP gives up.
const RequestTimeout = 15 * time.Second

// boundRequest puts RequestTimeout on every request's context except the
// admin API's, whose backup streams for as long as the store is large.
func boundRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if strings.HasPrefix(c.Request().URL.Path, "/admin/") {
			return next(c)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), RequestTimeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// limitBody refuses bodies over MaxBodyBytes with 413 before reading them
// when the length is declared, and stops reading at the limit otherwise.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > MaxBodyBytes {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, MaxBodyBytes)
		return next(c)
	}
}

// accessLog writes one line per request. It never logs bodies, query
// strings or headers that could carry a token.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
			slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			slog.String("method", c.Request().Method),
			slog.String("route", route),
			slog.Int("status", c.Response().Status),
			slog.Duration("latency", time.Since(start)),
			slog.String("ip", c.RealIP()),
		)
		return nil
	}
}
