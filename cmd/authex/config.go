package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage/postgres"
	"github.com/authex/authex/web"
)

// Config is the whole YAML file. config.example.yaml documents every key;
// keep the two in step.
type Config struct {
	Server    ServerConfig              `yaml:"server"`
	Storage   StorageConfig             `yaml:"storage"`
	Tokens    TokensConfig              `yaml:"tokens"`
	Providers map[string]ProviderConfig `yaml:"providers"`
	Clients   []ClientConfig            `yaml:"clients"`
	Log       LogConfig                 `yaml:"log"`
	// Compat names the compatibility profiles to serve (docs/compat.md).
	Compat []string `yaml:"compat"`
	// CompatClient names the public client the compat routes act as when
	// clients are configured: the tutorials' frontends send no client
	// credentials, so its provider list applies and its id goes into the
	// tokens' client_id.
	CompatClient string      `yaml:"compat_client"`
	Admin        AdminConfig `yaml:"admin"`
	// Secrets holds the key-encryption key that seals the key material in
	// the store (kek.go).
	Secrets SecretsConfig `yaml:"secrets"`
	// Webhooks are the endpoints events are delivered to (webhooks.go,
	// docs/events.md).
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// Email is how authex sends mail (email.go); nil: it sends none.
	Email *EmailConfig `yaml:"email"`
	// Signals are the upstream security event transmitters (signals.go).
	Signals []SignalConfig `yaml:"signals"`
	// Hooks are calls to the app (hooks.go).
	Hooks HooksConfig `yaml:"hooks"`
	// Anonymous turns POST /v1/anonymous on (anonymous.go).
	Anonymous AnonymousConfig `yaml:"anonymous"`
}

// SecretsConfig is the key-encryption key (KEK): 32 random bytes, base64,
// from the environment ("${AUTHEX_KEK}") or a file. Without one, bbolt
// keeps a generated KEK in a file beside the database (a loud warning);
// PostgreSQL refuses to start.
type SecretsConfig struct {
	KEK     Secret `yaml:"kek"`
	KEKFile string `yaml:"kek_file"`
	// PreviousKEKs open records sealed before a KEK rotation; at start
	// every record is resealed under kek, after which they can go.
	PreviousKEKs []Secret `yaml:"previous_keks"`

	kek      []byte   // parsed by Validate; nil: none configured
	previous [][]byte // parsed by Validate
}

// AdminConfig guards the operator API (/admin/v1, docs/admin.md).
type AdminConfig struct {
	// Tokens are accepted as Bearer admin tokens; use "${VAR}".
	Tokens []string `yaml:"tokens"`
	// TokensFile holds more tokens, one a line ('#' starts a comment).
	TokensFile string `yaml:"tokens_file"`
}

// ClientConfig registers one client application. When any client is
// configured, confidential clients must authenticate on /v1/exchange and
// /oauth/*, and public ones must name themselves.
type ClientConfig struct {
	ID         string   `yaml:"id"`
	Secret     Secret   `yaml:"secret"`      // usually "${ENV_VAR}"
	SecretFile string   `yaml:"secret_file"` // or a file holding it (trailing newline ignored)
	Public     bool     `yaml:"public"`      // a mobile app or SPA: no secret
	Providers  []string `yaml:"providers"`   // when set, the only providers it may use
	// VerifiesNonce: this confidential client checks the nonce of its own
	// sign-in flows (Auth.js), so its authenticated requests may send a
	// nonce-bearing id_token without the nonce (docs/security.md).
	VerifiesNonce bool `yaml:"verifies_nonce"`
}

// Secret is a string that never prints: a config dumped to a log or an
// error shows "[redacted]".
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return "[redacted]" }

// LogValue keeps the secret out of slog output.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// minClientSecret is the shortest client secret accepted: anything shorter
// can be guessed online.
const minClientSecret = 16

type ServerConfig struct {
	Listen    string `yaml:"listen"`
	PublicURL string `yaml:"public_url"`
	// AdminListen, when set, serves /admin/v1 and /metrics there and not on Listen.
	AdminListen string `yaml:"admin_listen"`
	// TrustedProxies: CIDRs (or addresses) whose X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`

	trustedNets []*net.IPNet // parsed by Validate
	// publicURLSet: public_url came from the file or AUTHEX_PUBLIC_URL, not
	// the default; otherwise `serve --dev` derives it from the address it
	// listens on.
	publicURLSet bool
}

// defaultPublicURL is server.public_url when neither the file nor the
// environment sets it (and --dev does not derive it).
const defaultPublicURL = "http://localhost:8080"

type StorageConfig struct {
	Driver   string         `yaml:"driver"`
	Bolt     BoltConfig     `yaml:"bolt"`
	Postgres PostgresConfig `yaml:"postgres"`
}

// PostgresConfig is storage.postgres. The DSN holds the password: take it
// from the environment ("${AUTHEX_PG_DSN}"); it is never logged.
type PostgresConfig struct {
	DSN            string        `yaml:"dsn"`
	MaxConns       int           `yaml:"max_conns"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	Schema         string        `yaml:"schema"`
}

type BoltConfig struct {
	Path string `yaml:"path"`
}

type TokensConfig struct {
	Algorithm         string        `yaml:"algorithm"`
	AccessTTL         time.Duration `yaml:"access_ttl"`
	RefreshTTL        time.Duration `yaml:"refresh_ttl"`
	SessionMax        time.Duration `yaml:"session_max"`
	RefreshReuseGrace time.Duration `yaml:"refresh_reuse_grace"`
	Audience          []string      `yaml:"audience"`
	KeyPublishDelay   time.Duration `yaml:"key_publish_delay"`
	KeyRotation       time.Duration `yaml:"key_rotation"`
	// MaxSessionsPerUser caps a user's live sessions; a sign-in past it
	// revokes the oldest. 0: no cap.
	MaxSessionsPerUser int `yaml:"max_sessions_per_user"`
	// SigningKeyFiles are PEM private keys: the first signs, all are
	// published, none is stored; rotation through authex is then refused.
	SigningKeyFiles []string `yaml:"signing_key_files"`

	signingKeys []exchange.PEMKey // parsed by Validate
}

type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// defaultConfig holds every default; YAML then overrides it.
func defaultConfig() Config {
	return Config{
		// PublicURL stays empty until the file or the environment sets
		// it, to tell a chosen public_url from defaultPublicURL
		// (publicURLSet); loadConfig fills the default in after both.
		Server: ServerConfig{Listen: ":8080"},
		Storage: StorageConfig{
			Driver:   "bolt",
			Bolt:     BoltConfig{Path: "./data/authex.db"},
			Postgres: PostgresConfig{MaxConns: 10, ConnectTimeout: 5 * time.Second},
		},
		Tokens: TokensConfig{
			Algorithm:         exchange.AlgES256,
			AccessTTL:         15 * time.Minute,
			RefreshTTL:        14 * 24 * time.Hour,
			SessionMax:        90 * 24 * time.Hour,
			RefreshReuseGrace: 10 * time.Second,
			Audience:          []string{"api"},
			KeyPublishDelay:   10 * time.Minute,

			MaxSessionsPerUser: 100, // 0 in the YAML: no cap
		},
		Log: LogConfig{Level: "info", Format: "auto"},
	}
}

// Problems is every problem found in a config, each with its key path.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

func (p *Problems) add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

// loadConfig reads the file: defaults, then YAML (unknown keys are errors,
// ${VAR} expanded in values), then environment overrides, then Validate.
// It returns every problem at once.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	var probs Problems
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	lines := map[int]string{}
	if len(root.Content) > 0 {
		walkConfig(root.Content[0], reflect.TypeOf(cfg), "", getenv, lines, &probs)
		if err := root.Content[0].Decode(&cfg); err != nil {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				return cfg, err
			}
			for _, msg := range te.Errors {
				probs = append(probs, keyPathOf(msg, lines))
			}
		}
		for _, name := range sortedKeys(cfg.Providers) {
			for _, msg := range cfg.Providers[name].decodeErrs {
				probs = append(probs, keyPathOf(msg, lines))
			}
		}
	}
	applyEnv(&cfg, getenv)
	cfg.Server.publicURLSet = cfg.Server.PublicURL != ""
	if !cfg.Server.publicURLSet {
		cfg.Server.PublicURL = defaultPublicURL
	}
	probs = append(probs, cfg.Validate()...)
	if len(probs) > 0 {
		return cfg, probs
	}
	return cfg, nil
}

var lineRe = regexp.MustCompile(`^line (\d+): (.*)$`)

// keyPathOf turns yaml's "line N: ..." into "key.path: ...".
func keyPathOf(msg string, lines map[int]string) string {
	m := lineRe.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	n, _ := strconv.Atoi(m[1])
	if p, ok := lines[n]; ok {
		return p + ": " + m[2]
	}
	return msg
}

var envRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// walkConfig checks every mapping key against the struct it fills,
// expands ${VAR} in scalar values, and records which key path each line
// holds so decode errors can name it.
func walkConfig(n *yaml.Node, t reflect.Type, path string, getenv func(string) string, lines map[int]string, probs *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		lines[n.Line] = path
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!str" || strings.Contains(n.Value, "${") {
			n.Value = envRe.ReplaceAllStringFunc(n.Value, func(ref string) string {
				name := ref[2 : len(ref)-1]
				v := getenv(name)
				if v == "" {
					probs.add(path, "environment variable %s is not set", name)
				}
				return v
			})
		}
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Struct:
			unknown := func(_ string, known []string) string {
				return "unknown key (known: " + strings.Join(known, ", ") + ")"
			}
			skip := -1
			if t == providerConfigType {
				// The provider's type (expanded first, once) picks its
				// struct (providers.go).
				if skip = typeKey(n); skip >= 0 {
					walkConfig(n.Content[skip+1], reflect.TypeOf(""), join(path, "type"), getenv, lines, probs)
				}
				if t = providerStruct(n, skip); t == nil {
					return // an unknown type: Validate reports it
				}
				unknown = providerKeyProblem
			}
			fields := yamlFields(t)
			for i := 0; i+1 < len(n.Content); i += 2 {
				if i == skip {
					continue
				}
				key := n.Content[i].Value
				child := join(path, key)
				ft, ok := fields[key]
				if !ok {
					lines[n.Content[i].Line] = child
					probs.add(child, "%s", unknown(key, sortedKeys(fields)))
					continue
				}
				walkConfig(n.Content[i+1], ft, child, getenv, lines, probs)
			}
		case reflect.Map:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walkConfig(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), getenv, lines, probs)
			}
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice {
			for i, c := range n.Content {
				walkConfig(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), getenv, lines, probs)
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// applyEnv lets a deployment override the few keys that differ per machine
// without editing the file.
func applyEnv(cfg *Config, getenv func(string) string) {
	if v := getenv("AUTHEX_LISTEN"); v != "" {
		cfg.Server.Listen = v
	}
	if v := getenv("AUTHEX_PUBLIC_URL"); v != "" {
		cfg.Server.PublicURL = v
	}
	if v := getenv("AUTHEX_BOLT_PATH"); v != "" {
		cfg.Storage.Bolt.Path = v
	}
	if v := getenv("AUTHEX_LOG_LEVEL"); v != "" {
		cfg.Log.Level = v
	}
	if v := getenv("AUTHEX_KEK"); v != "" {
		cfg.Secrets.KEK = Secret(v)
	}
	if v := getenv("AUTHEX_KEK_FILE"); v != "" {
		cfg.Secrets.KEKFile = v
	}
}

// Validate reports every semantic problem, each with its key path.
func (c *Config) Validate() Problems {
	var p Problems
	if c.Server.Listen == "" {
		p.add("server.listen", "is required")
	}
	c.Server.PublicURL = strings.TrimSuffix(c.Server.PublicURL, "/")
	if u, err := url.Parse(c.Server.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add("server.public_url", "must be an absolute http(s) URL, got %q", c.Server.PublicURL)
	}
	switch c.Storage.Driver {
	case "bolt":
		if c.Storage.Bolt.Path == "" {
			p.add("storage.bolt.path", "is required with driver bolt")
		}
	case "postgres":
		pg := c.Storage.Postgres
		if pg.DSN == "" {
			p.add("storage.postgres.dsn", "is required with driver postgres (e.g. \"${AUTHEX_PG_DSN}\")")
		}
		if pg.MaxConns < 1 || pg.MaxConns > 1000 {
			p.add("storage.postgres.max_conns", "must be between 1 and 1000, got %d", pg.MaxConns)
		}
		if pg.ConnectTimeout < 100*time.Millisecond || pg.ConnectTimeout > 5*time.Minute {
			p.add("storage.postgres.connect_timeout", "must be between 100ms and 5m, got %s", pg.ConnectTimeout)
		}
		if pg.Schema != "" && !postgres.ValidSchema(pg.Schema) {
			p.add("storage.postgres.schema", "must be a plain identifier (letters, digits, _), got %q", pg.Schema)
		}
	default:
		p.add("storage.driver", "must be bolt or postgres, got %q", c.Storage.Driver)
	}
	t := c.Tokens
	if !exchange.ValidAlgorithm(t.Algorithm) {
		p.add("tokens.algorithm", "must be ES256, EdDSA or RS256, got %q", t.Algorithm)
	}
	if t.AccessTTL <= 0 || t.AccessTTL > 24*time.Hour {
		p.add("tokens.access_ttl", "must be between 1s and 24h, got %s", t.AccessTTL)
	}
	if t.RefreshTTL <= 0 {
		p.add("tokens.refresh_ttl", "must be positive, got %s", t.RefreshTTL)
	}
	if t.SessionMax < t.RefreshTTL {
		p.add("tokens.session_max", "must be at least tokens.refresh_ttl (%s), got %s", t.RefreshTTL, t.SessionMax)
	}
	if t.RefreshReuseGrace < 0 || t.RefreshReuseGrace > 5*time.Minute {
		p.add("tokens.refresh_reuse_grace", "must be between 0 and 5m, got %s", t.RefreshReuseGrace)
	}
	if t.KeyPublishDelay < 0 || t.KeyPublishDelay > 24*time.Hour {
		p.add("tokens.key_publish_delay", "must be between 0 and 24h, got %s", t.KeyPublishDelay)
	}
	if t.KeyRotation != 0 && t.KeyRotation < t.KeyPublishDelay+t.AccessTTL {
		p.add("tokens.key_rotation", "must be 0 (off) or at least key_publish_delay + access_ttl (%s), got %s",
			t.KeyPublishDelay+t.AccessTTL, t.KeyRotation)
	}
	if t.MaxSessionsPerUser < 0 {
		p.add("tokens.max_sessions_per_user", "must be 0 (no cap) or positive, got %d", t.MaxSessionsPerUser)
	}
	if len(t.Audience) == 0 {
		// An access token without aud is taken by any API that trusts our
		// JWKS, and by careless ones that skip the aud check anyway.
		p.add("tokens.audience", "must name at least one API (an access token without aud is accepted too widely)")
	}
	for i, a := range t.Audience {
		if a == "" {
			p.add(fmt.Sprintf("tokens.audience[%d]", i), "must not be empty")
		}
	}
	c.validateProviders(&p)
	c.Server.trustedNets = nil
	for i, s := range c.Server.TrustedProxies {
		n, err := parseNet(s)
		if err != nil {
			p.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "must be a CIDR or an IP address, got %q", s)
			continue
		}
		c.Server.trustedNets = append(c.Server.trustedNets, n)
	}
	if c.Server.AdminListen != "" && c.Server.AdminListen == c.Server.Listen {
		p.add("server.admin_listen", "must differ from server.listen")
	}
	c.validateAdmin(&p)
	c.validateClients(&p)
	c.validateCompat(&p)
	c.validateSecrets(&p)
	c.validateSigningKeyFiles(&p)
	c.validateWebhooks(&p)
	c.validateEmail(&p)
	c.validateSignals(&p)
	c.validateHooks(&p)
	c.validateAnonymous(&p)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "text":
	default:
		p.add("log.format", "must be auto, json or text, got %q", c.Log.Format)
	}
	return p
}

// minAdminToken is the shortest admin token accepted, and
// minAdminTokenBits the least strength by adminTokenBits: an admin token
// opens every account, backups included.
const (
	minAdminToken     = 32
	minAdminTokenBits = 128
)

// adminTokenPlaceholders are fragments of the values people paste from
// examples; a token containing one is refused whatever its length.
var adminTokenPlaceholders = []string{"changeme", "change-me", "change_me", "replaceme", "replace-me", "replace_me",
	"placeholder", "example", "your-token", "your_token", "yourtoken", "xxxxxxxx", "...", "<", ">"}

// adminTokenBits is a simple upper estimate of a token's strength: its
// length times log2 of the character classes it draws from (lower case,
// upper case, digits, others). Repetition is caught by counting distinct
// characters: fewer than 8 scores 0.
func adminTokenBits(t string) float64 {
	var lower, upper, digit, other bool
	distinct := map[rune]bool{}
	for _, r := range t {
		distinct[r] = true
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		default:
			other = true
		}
	}
	if len(distinct) < 8 {
		return 0
	}
	pool := 0
	for _, c := range []struct {
		on   bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 32}} {
		if c.on {
			pool += c.size
		}
	}
	return float64(len([]rune(t))) * math.Log2(float64(pool))
}

// adminTokenProblem says why an admin token is too weak, or "".
func adminTokenProblem(t string) string {
	low := strings.ToLower(t)
	for _, ph := range adminTokenPlaceholders {
		if strings.Contains(low, ph) {
			return "looks like a placeholder; generate one: openssl rand -hex 32"
		}
	}
	if len(t) < minAdminToken {
		return fmt.Sprintf("must be at least %d characters (e.g. openssl rand -hex 32)", minAdminToken)
	}
	if adminTokenBits(t) < minAdminTokenBits {
		return fmt.Sprintf("is too predictable (under %d bits by a simple estimate: repeated or few kinds of characters); generate one: openssl rand -hex 32", minAdminTokenBits)
	}
	return ""
}

// Warnings are what config check and serve report without refusing the
// configuration, each with its key path.
func (c *Config) Warnings() []string {
	var w []string
	if u, err := url.Parse(c.Server.PublicURL); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		w = append(w, "server.public_url: is http on a non-loopback host: tokens and client secrets would cross the network in clear; use https")
	}
	w = append(w, c.emailWarnings()...)
	return w
}

// validateAdmin reads admin.tokens_file into admin.tokens and checks them.
func (c *Config) validateAdmin(p *Problems) {
	if f := c.Admin.TokensFile; f != "" {
		raw, err := os.ReadFile(f)
		if err != nil {
			p.add("admin.tokens_file", "cannot read: %v", err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			c.Admin.Tokens = append(c.Admin.Tokens, line)
		}
	}
	for i, t := range c.Admin.Tokens {
		// Never print the token itself.
		if why := adminTokenProblem(t); why != "" {
			p.add(fmt.Sprintf("admin.tokens[%d]", i), "%s", why)
		}
	}
}

// parseNet accepts "10.0.0.0/8", "2001:db8::/32" or a single address.
func parseNet(s string) (*net.IPNet, error) {
	if _, n, err := net.ParseCIDR(s); err == nil {
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("not an address")
	}
	bits := 128
	if ip4 := ip.To4(); ip4 != nil {
		ip, bits = ip4, 32
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

// validateClients checks the clients list and reads secret_file secrets
// into Secret. Messages name the key, never the value.
func (c *Config) validateClients(p *Problems) {
	seen := map[string]bool{}
	for i := range c.Clients {
		cl := &c.Clients[i]
		path := fmt.Sprintf("clients[%d]", i)
		switch {
		case cl.ID == "":
			p.add(path+".id", "is required")
		case seen[cl.ID]:
			p.add(path+".id", "%q is listed twice", cl.ID)
		}
		seen[cl.ID] = true
		if cl.SecretFile != "" {
			if cl.Secret != "" {
				p.add(path+".secret_file", "set secret or secret_file, not both")
			} else if raw, err := os.ReadFile(cl.SecretFile); err != nil {
				p.add(path+".secret_file", "cannot be read: %v", errors.Unwrap(err))
			} else {
				cl.Secret = Secret(strings.TrimRight(string(raw), "\r\n"))
			}
		}
		switch {
		case cl.Public && (cl.Secret != "" || cl.SecretFile != ""):
			p.add(path+".public", "a public client has no secret; remove secret/secret_file or public")
		case !cl.Public && cl.Secret == "" && cl.SecretFile == "":
			p.add(path+".secret", "is required for a confidential client (or set public: true)")
		case !cl.Public && cl.Secret != "" && len(cl.Secret) < minClientSecret:
			p.add(path+".secret", "must be at least %d characters", minClientSecret)
		}
		if cl.Public && cl.VerifiesNonce {
			p.add(path+".verifies_nonce", "only a confidential client may attest the nonce: a public client has no secret to prove the request is its own (send the nonce instead)")
		}
		for j, name := range cl.Providers {
			if _, ok := c.Providers[name]; !ok {
				p.add(fmt.Sprintf("%s.providers[%d]", path, j), "names no configured provider: %q", name)
			}
		}
	}
}

// exchangeClients turns the clients list into the service's form.
func (c *Config) exchangeClients() []exchange.ClientConfig {
	out := make([]exchange.ClientConfig, 0, len(c.Clients))
	for _, cl := range c.Clients {
		out = append(out, exchange.ClientConfig{ID: cl.ID, Secret: string(cl.Secret), Public: cl.Public,
			Providers: cl.Providers, VerifiesNonce: cl.VerifiesNonce})
	}
	return out
}

// validateCompat checks the compatibility profiles: known, not repeated,
// not claiming the same route, and the password provider configured for
// those that sign in with a password.
func (c *Config) validateCompat(p *Problems) {
	known := web.CompatProfiles()
	seen := map[string]bool{}
	var valid []string
	for i, name := range c.Compat {
		switch {
		case !slices.Contains(known, name):
			p.add(fmt.Sprintf("compat[%d]", i), "must be one of %s, got %q", strings.Join(known, ", "), name)
		case seen[name]:
			p.add(fmt.Sprintf("compat[%d]", i), "%s is listed twice", name)
		default:
			seen[name] = true
			valid = append(valid, name)
			if _, ok := c.Providers[exchange.PasswordProvider]; web.CompatNeedsPassword(name) && !ok {
				p.add(fmt.Sprintf("compat[%d]", i), "%s signs users in with a password: configure providers.password (type: password)", name)
			}
		}
	}
	for _, conflict := range web.CompatConflicts(valid) {
		p.add("compat", "%s: enable only one of them", conflict)
	}
	c.validateCompatClient(p)
}

// validateCompatClient: with clients configured every caller is a client,
// and the compat routes, whose frontends send no credentials, must be one
// too. Only a public client fits: a confidential one would be "authenticated"
// without its secret by anyone calling the compat routes.
func (c *Config) validateCompatClient(p *Problems) {
	if c.CompatClient == "" {
		if len(c.Compat) > 0 && len(c.Clients) > 0 {
			p.add("compat_client", "is required with compat and clients: name the public client (public: true) the compat routes act as")
		}
		return
	}
	if len(c.Compat) == 0 {
		p.add("compat_client", "is set but compat lists no profile")
	}
	i := slices.IndexFunc(c.Clients, func(cl ClientConfig) bool { return cl.ID == c.CompatClient })
	switch {
	case i < 0:
		p.add("compat_client", "names no configured client: %q", c.CompatClient)
	case !c.Clients[i].Public:
		p.add("compat_client", "client %q (clients[%d]) is confidential: the compat routes send no secret, name a client with public: true", c.CompatClient, i)
	}
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
