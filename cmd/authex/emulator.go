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
	"strconv"
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
	fmt.Fprintf(stdout, "  try a sign-in: open %s/\n", issuer)
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

// checkDevListen refuses, before anything listens, a --dev listen address
// that is not loopback.
func checkDevListen(cfg Config) error {
	if !emulator.IsLoopback(cfg.Server.Listen) {
		return fmt.Errorf("--dev: server.listen %q is not a loopback address; listen on 127.0.0.1:PORT (env AUTHEX_LISTEN) so the development emulator is not reachable from the network", cfg.Server.Listen)
	}
	return nil
}

// devMode checks that `serve --dev` runs on a developer's machine (public
// URL on loopback; checkDevListen checked the listen address), adds
// provider "dev" for the emulator to cfg and returns the emulator to
// mount under /emulator. bound is the address actually listened on: a
// public_url that neither the file nor AUTHEX_PUBLIC_URL sets follows it,
// so `AUTHEX_LISTEN=127.0.0.1:9801 make run` (or port 0) gets an emulator
// whose issuer is this very server.
func devMode(cfg *Config, bound net.Addr, log *slog.Logger) (*emulator.Emulator, error) {
	if !cfg.Server.publicURLSet {
		cfg.Server.PublicURL = devPublicURL(bound)
	}
	u, err := url.Parse(cfg.Server.PublicURL)
	if err != nil || !emulator.IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("--dev: server.public_url %q is not a loopback URL (localhost, 127.0.0.1, [::1]); the development emulator lets anyone sign in as anyone and is refused anywhere else", cfg.Server.PublicURL)
	}
	if tcp, ok := bound.(*net.TCPAddr); ok && u.Port() != "" && u.Port() != strconv.Itoa(tcp.Port) {
		log.Warn("--dev: server.public_url names another port than the one authex listens on: provider dev discovers at public_url and will not become ready unless a proxy forwards it here; leave public_url unset to follow the listen address",
			"public_url", cfg.Server.PublicURL, "listening", bound.String())
	}
	if _, taken := cfg.Providers[devProvider]; taken {
		return nil, fmt.Errorf("--dev: the config already has a provider named %q, which --dev would replace", devProvider)
	}
	keyFile := ""
	if cfg.Storage.Driver == "bolt" {
		keyFile = filepath.Join(filepath.Dir(cfg.Storage.Bolt.Path), "emulator-key.pem")
	}
	em, err := emulator.New(emulator.Config{Issuer: cfg.Server.PublicURL + "/emulator", KeyFile: keyFile, Logger: log.With("component", "emulator"),
		SignalReceiver: strings.TrimSuffix(cfg.Server.PublicURL, "/") + "/v1/signals",
		ExchangeURL:    strings.TrimSuffix(cfg.Server.PublicURL, "/") + "/v1/exchange", Provider: devProvider})
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

// devPublicURL is the URL a browser on this machine reaches bound at:
// localhost for 127.0.0.1, as the default public_url says, so cookies and
// the Next.js example's AUTHEX_URL keep one host; any other loopback
// address as it is.
func devPublicURL(bound net.Addr) string {
	tcp, ok := bound.(*net.TCPAddr)
	if !ok {
		return defaultPublicURL
	}
	host := tcp.IP.String()
	if tcp.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// printDevStart tells the developer, on stdout, where the dev server is
// and how to try it: the page to open and a curl that mints an id_token at
// the emulator and exchanges it, both at the address actually served.
func printDevStart(w io.Writer, publicURL string, em *emulator.Emulator) {
	fmt.Fprintf(w, `
authex --dev is serving at %[1]s (provider "dev" is the emulator, client id %[2]s)

  Open %[3]s/ to sign in through the emulator (any email works).

  Or try it with curl:

    ID_TOKEN=$(curl -s %[3]s/mint -d '{"email":"ada@example.com","name":"Ada"}' \
      | sed 's/.*"id_token":"\([^"]*\)".*/\1/')
    curl -s %[1]s/v1/exchange -H 'Content-Type: application/json' \
      -d "{\"provider\":\"dev\",\"id_token\":\"$ID_TOKEN\"}"

`, publicURL, em.ClientIDs()[0], em.Issuer())
}
