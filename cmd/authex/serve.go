package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers/emulator"
	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/observed"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/web"
	"github.com/authex/authex/webhook"
)

// shutdownGrace bounds how long in-flight requests may take to finish
// after SIGINT/SIGTERM.
const shutdownGrace = 20 * time.Second

// gcPercent and gcMemoryLimit are the collector's settings for serve when
// the environment sets neither GOGC nor GOMEMLIMIT. authex's live heap is
// small (a few MB) and every request allocates, so at Go's default
// (GOGC=100) the collector runs every few MB of allocation, dozens of times
// a second under load. At 400 it runs about a third as often; the limit
// caps what that costs in memory (anonymous memory under load stays in
// the mid-20s of MB: docs/performance.md, "Authex's own CPU per
// request"). The limit is soft: should the live heap itself come near it,
// the runtime collects more often but gives the collector at most half
// the CPU and lets the heap pass the limit, rather than fail.
const (
	gcPercent     = 400
	gcMemoryLimit = 28 << 20
)

// tuneGC applies gcPercent and gcMemoryLimit unless the operator set GOGC
// or GOMEMLIMIT, which the runtime has then applied as given.
func tuneGC(getenv func(string) string, log *slog.Logger) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(gcMemoryLimit)
	log.Debug("garbage collector tuned", "gc_percent", gcPercent, "memory_limit_bytes", gcMemoryLimit)
}

// serveFlags are `authex serve`'s flags.
type serveFlags struct {
	config, pprof string
	dev           bool
}

func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (serveFlags, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs, getenv)
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060); off when empty")
	dev := fs.Bool("dev", false, "development mode: mount the authex emulator at /emulator as provider \"dev\" (loopback public_url and listen only)")
	if err := fs.Parse(args); err != nil {
		return serveFlags{}, err
	}
	if *pprofAddr != "" {
		if err := checkLoopback(*pprofAddr); err != nil {
			return serveFlags{}, fmt.Errorf("-pprof: %w", err)
		}
	}
	return serveFlags{config: *path, pprof: *pprofAddr, dev: *dev}, nil
}

// service is one `authex serve` as it is put together: each step below
// fills in what the next needs.
type service struct {
	cfg       Config
	log       *slog.Logger
	mounts    map[string]http.Handler
	metrics   *web.Metrics
	store     storage.Store // observed: counts commits into metrics
	sealer    *envelope.Sealer
	password  *exchange.PasswordConfig
	svc       *exchange.Service
	servers   []*http.Server
	listeners []net.Listener
	webhooks  *webhook.Worker // nil: no endpoint configured (webhooks.go)
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f, err := parseServeFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfigReporting(f.config, getenv, stderr)
	if err != nil {
		return err
	}
	s := &service{cfg: cfg, log: newLogger(cfg.Log, stderr), mounts: map[string]http.Handler{}}
	tuneGC(getenv, s.log)
	// Listen before the providers start discovery: the dev provider
	// discovers at this very server, and a connection waiting in the listen
	// backlog is answered as soon as we serve, with no retry delay. --dev
	// listens first of all: it derives the public URL from the address
	// bound (port 0 included) before anything uses it.
	var (
		ln net.Listener
		em *emulator.Emulator
	)
	if f.dev {
		if ln, em, err = s.listenDev(); err != nil {
			return err
		}
		defer ln.Close()
	}
	closeStore, err := s.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	if s.sealer, err = newSealer(s.cfg, s.log, true); err != nil {
		return err
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", s.cfg.Server.Listen); err != nil {
			return err
		}
		defer ln.Close()
	}

	// Providers discover in the background; they live as long as the service.
	provCtx, cancelProviders := context.WithCancel(context.Background())
	defer cancelProviders()
	if err := s.buildService(ctx, provCtx); err != nil {
		return err
	}
	s.startMaintenance(provCtx)
	stopWebhooks := s.startWebhooks()
	defer stopWebhooks() // after the drain: the worker finishes its attempts in flight
	if err := s.buildServers(ln); err != nil {
		return err
	}
	if f.pprof != "" {
		stopPprof, err := servePprof(f.pprof, s.log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	if em != nil {
		printDevStart(stdout, s.cfg.Server.PublicURL, em)
	}
	return s.serve(ctx)
}

// listenDev listens on the loopback listen address for --dev and mounts
// the emulator, registered for the address bound.
func (s *service) listenDev() (net.Listener, *emulator.Emulator, error) {
	if err := checkDevListen(s.cfg); err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", s.cfg.Server.Listen)
	if err != nil {
		return nil, nil, err
	}
	em, err := devMode(&s.cfg, ln.Addr(), s.log)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	s.mounts["/emulator"] = em
	return ln, em, nil
}

// openStore opens the configured store behind the metrics decorator and
// answers the function that closes it.
func (s *service) openStore(ctx context.Context) (func(), error) {
	raw, err := openStore(ctx, s.cfg.Storage, s.log)
	if err != nil {
		return nil, err
	}
	s.metrics = web.NewMetrics(raw)
	s.store = observed.Wrap(raw, s.metrics.Committed)
	return func() {
		if err := raw.Close(); err != nil {
			s.log.Error("close store", "err", err)
		}
	}, nil
}

// buildService makes the providers (living as long as provCtx) and the
// exchange service over them.
func (s *service) buildService(ctx, provCtx context.Context) error {
	cfg, log, metrics := s.cfg, s.log, s.metrics
	provs, password, err := buildProviders(provCtx, cfg.Providers, log, metrics.KeyFetched)
	if err != nil {
		return err
	}
	signals, err := buildSignals(cfg, log)
	if err != nil {
		return err
	}

	email, err := cfg.exchangeEmail(log)
	if err != nil {
		return err
	}
	svc, err := exchange.New(ctx, exchange.Config{
		Issuer: cfg.Server.PublicURL, Audience: cfg.Tokens.Audience, Algorithm: cfg.Tokens.Algorithm,
		AccessTTL: cfg.Tokens.AccessTTL, RefreshTTL: cfg.Tokens.RefreshTTL,
		SessionMax: cfg.Tokens.SessionMax, ReuseGrace: cfg.Tokens.RefreshReuseGrace,
		KeyPublishDelay: cfg.Tokens.KeyPublishDelay, KeyRotation: cfg.Tokens.KeyRotation,
		Clients: cfg.exchangeClients(), MaxSessionsPerUser: cfg.Tokens.MaxSessionsPerUser, SigningKeys: cfg.Tokens.signingKeys,
	}, s.store, provs, exchange.Options{Logger: log, Observer: metrics, Password: password, Sealer: s.sealer,
		Webhooks: cfg.webhookTargets(), WebhookNotify: s.notifyWebhooks, Email: email,
		Signals: signals, ClaimsHook: cfg.claimsHook(), Anonymous: cfg.anonymous()})
	if err != nil {
		return err
	}
	s.svc, s.password = svc, password
	return nil
}

// startMaintenance starts key maintenance and the watch on the store (for
// as long as ctx), and warns about what the config leaves open.
func (s *service) startMaintenance(ctx context.Context) {
	go s.svc.MaintainKeys(ctx, keyMaintenanceInterval)
	if s.cfg.Anonymous.Enabled {
		go s.sweepAnonymous(ctx)
	}
	if len(s.cfg.Clients) == 0 {
		s.log.Warn("no clients configured: /v1/exchange and /oauth/token accept any caller and /oauth/introspect is off; configure clients")
	} else {
		s.log.Info("client authentication on", "clients", len(s.cfg.Clients))
	}
	if s.password != nil && len(s.cfg.Server.TrustedProxies) == 0 {
		s.log.Warn("password accounts are on and server.trusted_proxies is empty: behind a proxy every client shares one per-IP throttle budget; list the proxy's addresses")
	}

	// Several instances may share the store: pick up keys and MAC secrets
	// another one made, and revocations, within a second.
	go s.svc.Keys().Watch(ctx, exchange.KeyPollInterval, s.log)
}

// buildServers makes the public server on ln and, with admin_listen, the
// admin server on its own listener.
func (s *service) buildServers(ln net.Listener) error {
	cfg := s.cfg
	deps := web.Deps{
		Exchange: s.svc, Logger: s.log, Mounts: s.mounts, Compat: cfg.Compat, CompatClient: cfg.CompatClient, Metrics: s.metrics,
		AdminTokens: cfg.Admin.Tokens, AdminSeparate: cfg.Server.AdminListen != "", TrustedProxies: cfg.Server.trustedNets,
	}
	if len(cfg.Admin.Tokens) == 0 {
		s.log.Warn("no admin token configured: the admin API refuses every request (admin.tokens)")
	}
	s.servers = []*http.Server{web.NewHTTPServer(cfg.Server.Listen, web.NewServer(deps), s.log)}
	s.listeners = []net.Listener{ln}
	if cfg.Server.AdminListen != "" {
		adminDeps := deps
		adminDeps.Mounts, adminDeps.Compat = nil, nil
		s.servers = append(s.servers, web.NewHTTPServer(cfg.Server.AdminListen, web.NewAdminServer(adminDeps), s.log))
		aln, err := net.Listen("tcp", cfg.Server.AdminListen)
		if err != nil {
			return err
		}
		s.listeners = append(s.listeners, aln)
	}
	s.log.Info("listening", "addr", s.listeners[0].Addr().String(), "public_url", cfg.Server.PublicURL,
		"store", cfg.Storage.Driver, "version", version)
	if len(s.listeners) > 1 {
		s.log.Info("admin API listening", "addr", s.listeners[1].Addr().String())
	}
	return nil
}

// serve serves until ctx ends or a server fails, then drains.
func (s *service) serve(ctx context.Context) error {
	served := make(chan error, len(s.servers))
	for i, srv := range s.servers {
		go func() { served <- srv.Serve(s.listeners[i]) }()
	}
	var failed error
	select {
	case failed = <-served:
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing in-flight requests")
	failed = s.drain(served, failed)
	if failed != nil && !errors.Is(failed, http.ErrServerClosed) {
		return failed
	}
	s.log.Info("stopped")
	return nil
}

// drain shuts every server down within shutdownGrace and collects what
// their Serve calls answer; failed is the error of one that already
// returned (nil if none did). It answers the first real failure.
func (s *service) drain(served <-chan error, failed error) error {
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, srv := range s.servers {
		if err := srv.Shutdown(shutCtx); err != nil {
			// Past the grace (a long backup transfer): cut the connections,
			// so the store can close instead of waiting for the reader.
			s.log.Error("shutdown: closing the connections still open", "err", err)
			srv.Close()
		}
	}
	// The mail queue gets what is left of the grace to send what waits.
	if err := s.svc.CloseEmail(shutCtx); err != nil {
		s.log.Warn("shutdown: mail still queued was dropped", "err", err)
	}
	waiting := len(s.servers)
	if failed != nil {
		waiting--
	}
	for ; waiting > 0; waiting-- {
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) && failed == nil {
			failed = err
		}
	}
	return failed
}

// keyMaintenanceInterval is how often automatic rotation (tokens.key_rotation),
// the repair of an interrupted rotation and the pruning of expired keys
// run. Key times take effect on time without it; Watch reloads the keys.
const keyMaintenanceInterval = exchange.KeyReloadInterval

func openStore(ctx context.Context, cfg StorageConfig, log *slog.Logger) (storage.Store, error) {
	switch cfg.Driver {
	case "bolt":
		if err := os.MkdirAll(filepath.Dir(cfg.Bolt.Path), 0o700); err != nil {
			return nil, err
		}
		return bolt.Open(cfg.Bolt.Path, bolt.Options{Logger: log})
	case "postgres":
		pg := cfg.Postgres
		return postgres.Open(ctx, pg.DSN, postgres.Options{
			Schema: pg.Schema, MaxConns: int32(pg.MaxConns), ConnectTimeout: pg.ConnectTimeout, Logger: log,
		})
	default:
		return nil, fmt.Errorf("storage.driver %q is not supported", cfg.Driver)
	}
}
