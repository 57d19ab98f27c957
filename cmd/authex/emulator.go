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
	"net/url"
	"path/filepath"
	"strings"

	"github.com/authex/authex/providers/emulator"
	"github.com/authex/authex/web"
)

// devProvider is the provider name `serve --dev` registers the emulator as.
const devProvider = "dev"

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runEmulator is `authex emulator`: the development OpenID provider alone,
// at http://LISTEN/emulator.
func runEmulator(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9090", "address to listen on (loopback only, unless -force)")
	var clients stringList
	fs.Var(&clients, "client-id", "a client id to accept (repeatable; default "+emulator.DefaultClientID+")")
	keyFile := fs.String("key-file", "", "keep the RSA signing key in this PEM file (default: a new key at every start)")
	signalReceiver := fs.String("signal-receiver", "", "push the security events POST /emulator/signal signs to this URL (authex's http://HOST/v1/signals)")
	force := fs.Bool("force", false, "listen on a non-loopback address anyway (anyone who reaches it can sign in as anyone)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !emulator.IsLoopback(*listen) && !*force {
		return fmt.Errorf("emulator: refusing to listen on %q: it is not a loopback address, and anyone who reaches the emulator can sign in as anyone; use 127.0.0.1:PORT, or -force", *listen)
	}
	log := newLogger(LogConfig{Level: "info", Format: "auto"}, stderr)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String() + "/emulator"
	em, err := emulator.New(emulator.Config{Issuer: issuer, ClientIDs: clients, KeyFile: *keyFile, Logger: log,
		SignalReceiver: *signalReceiver})
	if err != nil {
		ln.Close()
		return err
	}
	if !emulator.IsLoopback(*listen) {
		log.Warn("EMULATOR ON A NON-LOOPBACK ADDRESS: anyone who reaches it can sign in as anyone", "listen", ln.Addr().String())
	}
	fmt.Fprintf(stdout, "authex emulator: issuer %s (client ids: %s)\n", issuer, strings.Join(em.ClientIDs(), ", "))
	fmt.Fprintf(stdout, "  mint a token: curl -s %s/mint -d '{\"email\":\"ada@example.com\",\"name\":\"Ada\"}'\n", issuer)
	srv := web.NewHTTPServer(ln.Addr().String(), em, log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// devMode checks that `serve --dev` runs on a developer's machine (public
// URL and listen address on loopback), adds provider "dev" for the
// emulator to cfg and returns the emulator to mount under /emulator.
func devMode(cfg *Config, log *slog.Logger) (*emulator.Emulator, error) {
	u, err := url.Parse(cfg.Server.PublicURL)
	if err != nil || !emulator.IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("--dev: server.public_url %q is not a loopback URL (localhost, 127.0.0.1, [::1]); the development emulator lets anyone sign in as anyone and is refused anywhere else", cfg.Server.PublicURL)
	}
	if !emulator.IsLoopback(cfg.Server.Listen) {
		return nil, fmt.Errorf("--dev: server.listen %q is not a loopback address; listen on 127.0.0.1:PORT (env AUTHEX_LISTEN) so the development emulator is not reachable from the network", cfg.Server.Listen)
	}
	if _, taken := cfg.Providers[devProvider]; taken {
		return nil, fmt.Errorf("--dev: the config already has a provider named %q, which --dev would replace", devProvider)
	}
	keyFile := ""
	if cfg.Storage.Driver == "bolt" {
		keyFile = filepath.Join(filepath.Dir(cfg.Storage.Bolt.Path), "emulator-key.pem")
	}
	em, err := emulator.New(emulator.Config{Issuer: cfg.Server.PublicURL + "/emulator", KeyFile: keyFile, Logger: log.With("component", "emulator"),
		SignalReceiver: strings.TrimSuffix(cfg.Server.PublicURL, "/") + "/v1/signals"})
	if err != nil {
		return nil, err
	}
	if cfg.Providers == nil {
		cfg.Providers = map[string]ProviderConfig{}
	}
	cfg.Providers[devProvider] = oidcProvider(em.Issuer(), em.ClientIDs(), "confirm")
	// The emulator is a security event transmitter for provider "dev":
	// POST /emulator/signal signs an event and pushes it to /v1/signals.
	cfg.Signals = append(cfg.Signals, SignalConfig{Provider: devProvider, Issuer: em.Issuer(),
		JWKSURI: em.Issuer() + "/jwks", Audiences: em.ClientIDs()})
	log.Warn("DEVELOPMENT MODE (--dev): the authex emulator is mounted at " + em.Issuer() +
		" and registered as provider \"dev\"; anyone who reaches this server can sign in as anyone. Never use --dev in production.")
	return em, nil
}
