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
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
	"github.com/authex/authex/storage/bolt"
	"github.com/authex/authex/storage/observed"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/web"
)

// shutdownGrace bounds how long in-flight requests may take to finish
// after SIGINT/SIGTERM.
const shutdownGrace = 20 * time.Second

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs, getenv)
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060); off when empty")
	dev := fs.Bool("dev", false, "development mode: mount the authex emulator at /emulator as provider \"dev\" (loopback public_url and listen only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pprofAddr != "" {
		if err := checkLoopback(*pprofAddr); err != nil {
			return fmt.Errorf("-pprof: %w", err)
		}
	}
	cfg, err := loadConfigReporting(*path, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	mounts := map[string]http.Handler{}
	if *dev {
		em, err := devMode(&cfg, log)
		if err != nil {
			return err
		}
		mounts["/emulator"] = em
	}
	raw, err := openStore(ctx, cfg.Storage, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := raw.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()
	metrics := web.NewMetrics(raw)
	store := observed.Wrap(raw, metrics.Committed)
	sealer, err := newSealer(cfg, log, true)
	if err != nil {
		return err
	}

	// Listen before the providers start discovery: the dev provider
	// discovers at this very server, and a connection waiting in the listen
	// backlog is answered as soon as we serve, with no retry delay.
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()

	// Providers discover in the background; they live as long as the service.
	provCtx, cancelProviders := context.WithCancel(context.Background())
	defer cancelProviders()
	provs, password, err := buildProviders(provCtx, cfg.Providers, log, metrics.KeyFetched)
	if err != nil {
		return err
	}

	svc, err := exchange.New(ctx, exchange.Config{
		Issuer: cfg.Server.PublicURL, Audience: cfg.Tokens.Audience, Algorithm: cfg.Tokens.Algorithm,
		AccessTTL: cfg.Tokens.AccessTTL, RefreshTTL: cfg.Tokens.RefreshTTL,
		SessionMax: cfg.Tokens.SessionMax, ReuseGrace: cfg.Tokens.RefreshReuseGrace,
		KeyPublishDelay: cfg.Tokens.KeyPublishDelay, KeyRotation: cfg.Tokens.KeyRotation,
		Clients: cfg.exchangeClients(), MaxSessionsPerUser: cfg.Tokens.MaxSessionsPerUser, SigningKeys: cfg.Tokens.signingKeys,
	}, store, provs, exchange.Options{Logger: log, Observer: metrics, Password: password, Sealer: sealer})
	if err != nil {
		return err
	}
	go svc.MaintainKeys(provCtx, keyMaintenanceInterval)
	if len(cfg.Clients) == 0 {
		log.Warn("no clients configured: /v1/exchange and /oauth/token accept any caller and /oauth/introspect is off; configure clients")
	} else {
		log.Info("client authentication on", "clients", len(cfg.Clients))
	}
	if password != nil && len(cfg.Server.TrustedProxies) == 0 {
		log.Warn("password accounts are on and server.trusted_proxies is empty: behind a proxy every client shares one per-IP throttle budget; list the proxy's addresses")
	}

	// Several instances may share the store: pick up keys and MAC secrets
	// another one made, and revocations, within a second.
	go svc.Keys().Watch(provCtx, exchange.KeyPollInterval, log)

	deps := web.Deps{
		Exchange: svc, Logger: log, Mounts: mounts, Compat: cfg.Compat, CompatClient: cfg.CompatClient, Metrics: metrics,
		AdminTokens: cfg.Admin.Tokens, AdminSeparate: cfg.Server.AdminListen != "", TrustedProxies: cfg.Server.trustedNets,
	}
	if len(cfg.Admin.Tokens) == 0 {
		log.Warn("no admin token configured: the admin API refuses every request (admin.tokens)")
	}
	servers := []*http.Server{web.NewHTTPServer(cfg.Server.Listen, web.NewServer(deps), log)}
	listeners := []net.Listener{ln}
	if cfg.Server.AdminListen != "" {
		adminDeps := deps
		adminDeps.Mounts, adminDeps.Compat = nil, nil
		servers = append(servers, web.NewHTTPServer(cfg.Server.AdminListen, web.NewAdminServer(adminDeps), log))
		aln, err := net.Listen("tcp", cfg.Server.AdminListen)
		if err != nil {
			return err
		}
		listeners = append(listeners, aln)
	}
	log.Info("listening", "addr", listeners[0].Addr().String(), "public_url", cfg.Server.PublicURL,
		"store", cfg.Storage.Driver, "version", version)
	if len(listeners) > 1 {
		log.Info("admin API listening", "addr", listeners[1].Addr().String())
	}

	if *pprofAddr != "" {
		stopPprof, err := servePprof(*pprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	served := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { served <- srv.Serve(listeners[i]) }()
	}
	var failed error
	select {
	case failed = <-served:
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutCtx); err != nil {
			// Past the grace (a long backup transfer): cut the connections,
			// so the store can close instead of waiting for the reader.
			log.Error("shutdown: closing the connections still open", "err", err)
			srv.Close()
		}
	}
	waiting := len(servers)
	if failed != nil {
		waiting--
	}
	for ; waiting > 0; waiting-- {
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) && failed == nil {
			failed = err
		}
	}
	if failed != nil && !errors.Is(failed, http.ErrServerClosed) {
		return failed
	}
	log.Info("stopped")
	return nil
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
