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
}

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

type ProviderConfig struct {
	Type           string        `yaml:"type"`
	Issuer         string        `yaml:"issuer"`
	ClientIDs      []string      `yaml:"client_ids"`
	AllowedDomains []string      `yaml:"allowed_domains"`
	LinkByEmail    string        `yaml:"link_by_email"`
	AllowSignup    *bool         `yaml:"allow_signup"`
	Leeway         time.Duration `yaml:"leeway"`

	// TrustEmail: this provider's verified email proves ownership, so an
	// auto provider may join the accounts whose email it verified. Always
	// true for link_by_email auto (false there is refused); default false
	// otherwise.
	TrustEmail *bool `yaml:"trust_email"`
	// Code exchange: the redirect_uris a code may come with (exact match;
	// a PKCE code_verifier is required too). Required with client_secret
	// on the id_token types; optional on github (without it, no codes).
	RedirectURIs []string `yaml:"redirect_uris"`
	// id_token policy: max_age bounds now - iat (too_old); require_nonce
	// refuses tokens and requests without nonce.
	MaxAge       time.Duration `yaml:"max_age"`
	RequireNonce bool          `yaml:"require_nonce"`
	// JWKSRefreshMax caps how long a fetched key set is trusted (default
	// 1h; the provider's Cache-Control max-age, clamped to [5m, this],
	// decides below it).
	JWKSRefreshMax time.Duration `yaml:"jwks_refresh_max"`

	// The secret of client_ids[0]: inline (use ${ENV}) or read from a
	// file. Enables code exchange; github and oauth2 introspection need it.
	ClientSecret     Secret `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`

	// microsoft
	Authority      string   `yaml:"authority"`
	Tenant         string   `yaml:"tenant"`
	AllowedTenants []string `yaml:"allowed_tenants"`

	// github, google, oauth2 endpoints (defaults per type; see
	// config.example.yaml).
	APIURL           string `yaml:"api_url"`
	TokenURL         string `yaml:"token_url"`
	TokenInfoURL     string `yaml:"tokeninfo_url"`
	UserInfoURL      string `yaml:"userinfo_url"`
	IntrospectionURL string `yaml:"introspection_url"`

	// type password only (argon2id cost, policy, throttle).
	Memory      uint32         `yaml:"memory"` // KiB
	Iterations  uint32         `yaml:"iterations"`
	Parallelism uint8          `yaml:"parallelism"`
	MinLength   int            `yaml:"min_length"`
	Throttle    ThrottleConfig `yaml:"throttle"`
	// ReauthWindow: setting a first password needs a session created this
	// recently (a sign-in, not a refresh).
	ReauthWindow time.Duration `yaml:"reauth_window"`
	// HashConcurrency bounds the argon2 hashes in flight (each holds
	// memory KiB); 0 means twice GOMAXPROCS. A request waits HashWait for
	// a slot, then gets 503 busy.
	HashConcurrency int           `yaml:"hash_concurrency"`
	HashWait        time.Duration `yaml:"hash_wait"`
}

// ThrottleConfig bounds failed password logins: per_account failures per
// account (email) and per_ip per client IP, each refilled over window.
type ThrottleConfig struct {
	PerAccount int `yaml:"per_account"`
	PerIP      int `yaml:"per_ip"`
	// RegisterPerIP bounds registrations (every attempt) per client IP.
	RegisterPerIP int           `yaml:"register_per_ip"`
	Window        time.Duration `yaml:"window"`
}

// Defaults of the password provider.
var defaultPassword = ProviderConfig{
	Type: "password", Memory: exchange.DefaultArgon2.Memory, Iterations: exchange.DefaultArgon2.Iterations,
	Parallelism: exchange.DefaultArgon2.Parallelism, MinLength: exchange.DefaultMinPasswordLength,
	Throttle:     ThrottleConfig{PerAccount: 5, PerIP: 50, RegisterPerIP: 10, Window: 15 * time.Minute},
	ReauthWindow: exchange.DefaultReauthWindow, HashWait: exchange.DefaultHashWait,
}

// PasswordConfig is the exchange's view of a password provider.
func (pc ProviderConfig) PasswordConfig() exchange.PasswordConfig {
	return exchange.PasswordConfig{
		Argon2:    exchange.Argon2Params{Memory: pc.Memory, Iterations: pc.Iterations, Parallelism: pc.Parallelism},
		MinLength: pc.MinLength, AllowSignup: pc.AllowSignup == nil || *pc.AllowSignup,
		AccountBurst: pc.Throttle.PerAccount, IPBurst: pc.Throttle.PerIP, RegisterBurst: pc.Throttle.RegisterPerIP,
		Window: pc.Throttle.Window, ReauthWindow: pc.ReauthWindow, HashConcurrency: pc.HashConcurrency, HashWait: pc.HashWait,
	}
}

type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// defaultConfig holds every default; YAML then overrides it.
func defaultConfig() Config {
	return Config{
		Server: ServerConfig{Listen: ":8080", PublicURL: "http://localhost:8080"},
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

// providerTypes lists the provider types this build knows, with the
// link_by_email each defaults to: auto only where the provider's
// email_verified is proof of ownership.
// docs/providers.md gives the reasons for each.
var providerTypes = map[string]string{
	"google":    exchange.LinkAuto,
	"apple":     exchange.LinkAuto,
	"oidc":      exchange.LinkConfirm,
	"microsoft": exchange.LinkConfirm, // nOAuth: a tenant admin sets any email
	"github":    exchange.LinkConfirm,
	"oauth2":    exchange.LinkConfirm,
	"password":  "", // email + password accounts; no linking
}

// providerKeys lists, per type, the type-specific keys it accepts; a key
// set on another type is a mistake worth reporting (it would be ignored).
var providerKeys = map[string][]string{
	"allowed_domains":   {"google"},
	"issuer":            {"oidc", "google", "apple", "oauth2"},
	"authority":         {"microsoft"},
	"tenant":            {"microsoft"},
	"allowed_tenants":   {"microsoft"},
	"api_url":           {"github"},
	"token_url":         {"github", "oauth2"},
	"tokeninfo_url":     {"google", "oauth2"},
	"userinfo_url":      {"google", "oauth2"},
	"introspection_url": {"oauth2"},
	"max_age":           {"oidc", "google", "apple", "microsoft"},
	"require_nonce":     {"oidc", "google", "apple", "microsoft"},
	"jwks_refresh_max":  {"oidc", "google", "apple", "microsoft"},
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
	}
	applyEnv(&cfg, getenv)
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
			fields := map[string]reflect.Type{}
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				fields[name] = f.Type
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				child := join(path, key)
				ft, ok := fields[key]
				if !ok {
					lines[n.Content[i].Line] = child
					probs.add(child, "unknown key (known: %s)", strings.Join(sortedKeys(fields), ", "))
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
	for _, name := range sortedKeys(c.Providers) {
		pc := c.Providers[name]
		path := "providers." + name
		defaultLink, known := providerTypes[pc.Type]
		if !known {
			p.add(path+".type", "must be one of %s, got %q", strings.Join(sortedKeys(providerTypes), ", "), pc.Type)
		}
		if pc.Type == "password" || name == exchange.PasswordProvider {
			c.Providers[name] = validatePassword(&p, name, pc)
			continue
		}
		if pc.Memory != 0 || pc.Iterations != 0 || pc.Parallelism != 0 || pc.MinLength != 0 || pc.Throttle != (ThrottleConfig{}) ||
			pc.ReauthWindow != 0 || pc.HashConcurrency != 0 || pc.HashWait != 0 {
			p.add(path, "memory, iterations, parallelism, min_length, throttle, reauth_window, hash_concurrency and hash_wait apply to type password only")
		}
		if len(pc.ClientIDs) == 0 {
			p.add(path+".client_ids", "needs at least one client id")
		}
		for i, id := range pc.ClientIDs {
			if id == "" {
				p.add(fmt.Sprintf("%s.client_ids[%d]", path, i), "must not be empty")
			}
		}
		if pc.Type == "oidc" || pc.Type == "oauth2" {
			if u, err := url.Parse(pc.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
				p.add(path+".issuer", "must be the provider's issuer URL, got %q", pc.Issuer)
			}
		}
		if known {
			validateProviderType(&p, path, &pc)
		}
		switch pc.LinkByEmail {
		case "":
			pc.LinkByEmail = defaultLink
		case exchange.LinkAuto, exchange.LinkConfirm, exchange.LinkNever:
		default:
			p.add(path+".link_by_email", "must be auto, confirm or never, got %q", pc.LinkByEmail)
		}
		if pc.TrustEmail != nil && !*pc.TrustEmail && pc.LinkByEmail == exchange.LinkAuto {
			p.add(path+".trust_email", "a link_by_email auto provider is trusted for email; to stop trusting it, set link_by_email: confirm")
		}
		if pc.Leeway < 0 || pc.Leeway > 10*time.Minute {
			p.add(path+".leeway", "must be between 0 and 10m, got %s", pc.Leeway)
		}
		c.Providers[name] = pc
	}
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

// validateCodeExchange checks redirect_uris and the id_token policy keys.
// A provider that accepts codes (a client_secret on an id_token type, or
// token_url on oauth2) must list its redirect_uris: a code is exchanged
// only with one of them and a PKCE verifier. github needs client_secret
// for its app check alone, so there the list is optional (no list: no
// codes).
func validateCodeExchange(p *Problems, path string, pc *ProviderConfig) {
	hasSecret := pc.ClientSecret != "" || pc.ClientSecretFile != ""
	acceptsCodes := hasSecret && (pc.Type != "oauth2" || pc.TokenURL != "")
	if acceptsCodes && len(pc.RedirectURIs) == 0 && pc.Type != "github" {
		p.add(path+".redirect_uris", "is required with client_secret: the exact redirect_uris your app uses for the code flow (a code is accepted only with one of them and a PKCE code_verifier)")
	}
	if len(pc.RedirectURIs) > 0 && !acceptsCodes {
		p.add(path+".redirect_uris", "applies to providers that exchange codes (client_secret; oauth2 also token_url)")
	}
	for i, raw := range pc.RedirectURIs {
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == ""):
			p.add(fmt.Sprintf("%s.redirect_uris[%d]", path, i), "must be an absolute URL, got %q", raw)
		case strings.Contains(raw, "#"):
			p.add(fmt.Sprintf("%s.redirect_uris[%d]", path, i), "must not have a fragment, got %q", raw)
		}
	}
	if pc.MaxAge < 0 {
		p.add(path+".max_age", "must not be negative, got %s", pc.MaxAge)
	}
	if pc.JWKSRefreshMax != 0 && (pc.JWKSRefreshMax < 5*time.Minute || pc.JWKSRefreshMax > 24*time.Hour) {
		p.add(path+".jwks_refresh_max", "must be between 5m and 24h, got %s", pc.JWKSRefreshMax)
	}
}

// validateProviderType checks the keys that depend on the provider's type
// and reads client_secret_file.
func validateProviderType(p *Problems, path string, pc *ProviderConfig) {
	set := map[string]bool{
		"allowed_domains": len(pc.AllowedDomains) > 0, "issuer": pc.Issuer != "",
		"authority": pc.Authority != "", "tenant": pc.Tenant != "", "allowed_tenants": len(pc.AllowedTenants) > 0,
		"api_url": pc.APIURL != "", "token_url": pc.TokenURL != "", "tokeninfo_url": pc.TokenInfoURL != "",
		"userinfo_url": pc.UserInfoURL != "", "introspection_url": pc.IntrospectionURL != "",
		"max_age": pc.MaxAge != 0, "require_nonce": pc.RequireNonce, "jwks_refresh_max": pc.JWKSRefreshMax != 0,
	}
	for _, key := range sortedKeys(providerKeys) {
		if set[key] && !slices.Contains(providerKeys[key], pc.Type) {
			p.add(path+"."+key, "applies to type %s only", strings.Join(providerKeys[key], ", "))
		}
	}
	for key, v := range map[string]string{
		"issuer": pc.Issuer, "authority": pc.Authority, "api_url": pc.APIURL, "token_url": pc.TokenURL,
		"tokeninfo_url": pc.TokenInfoURL, "userinfo_url": pc.UserInfoURL, "introspection_url": pc.IntrospectionURL,
	} {
		u, err := url.Parse(v)
		switch {
		case v == "":
		case key != "issuer" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == ""):
			p.add(path+"."+key, "must be an absolute http(s) URL, got %q", v)
		case err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()):
			// Keys and userinfo fetched over plain http can be swapped by
			// anyone on the path, and every token would then verify.
			p.add(path+"."+key, "must use https (plain http only for a loopback host), got %q", v)
		}
	}

	switch {
	case pc.ClientSecret != "" && pc.ClientSecretFile != "":
		p.add(path+".client_secret_file", "set client_secret or client_secret_file, not both")
	case pc.ClientSecretFile != "":
		b, err := os.ReadFile(pc.ClientSecretFile)
		switch {
		case err != nil:
			p.add(path+".client_secret_file", "cannot be read: %v", errors.Unwrap(err))
		case strings.TrimSpace(string(b)) == "":
			p.add(path+".client_secret_file", "is empty")
		default:
			pc.ClientSecret = Secret(strings.TrimSpace(string(b)))
		}
	}

	validateCodeExchange(p, path, pc)

	switch pc.Type {
	case "microsoft":
		if len(pc.AllowedTenants) == 0 {
			p.add(path+".allowed_tenants", `is required with type microsoft: the tenant ids allowed to sign in, or [ "*" ] for any`)
		}
		for i, t := range pc.AllowedTenants {
			if strings.TrimSpace(t) == "" || strings.ContainsAny(t, "/?#{} ") {
				p.add(fmt.Sprintf("%s.allowed_tenants[%d]", path, i), `must be a tenant id or "*", got %q`, t)
			}
		}
		if strings.ContainsAny(pc.Tenant, "/?#{} ") {
			p.add(path+".tenant", "must be common, organizations, consumers or a tenant id, got %q", pc.Tenant)
		}
	case "github":
		if len(pc.ClientIDs) > 1 {
			p.add(path+".client_ids", "github takes exactly one client id: the OAuth app whose secret is client_secret")
		}
		if pc.ClientSecret == "" && pc.ClientSecretFile == "" {
			p.add(path+".client_secret", "is required with type github: it proves a token was issued to our app")
		}
	case "oauth2":
		if pc.UserInfoURL == "" {
			p.add(path+".userinfo_url", "is required with type oauth2")
		}
		switch {
		case pc.IntrospectionURL == "" && pc.TokenInfoURL == "":
			p.add(path+".introspection_url", "type oauth2 needs a way to bind access tokens to our client: introspection_url or tokeninfo_url (without one, any app's token would sign its holder in)")
		case pc.IntrospectionURL != "" && pc.TokenInfoURL != "":
			p.add(path+".tokeninfo_url", "set introspection_url or tokeninfo_url, not both")
		case pc.IntrospectionURL != "" && pc.ClientSecret == "" && pc.ClientSecretFile == "":
			p.add(path+".client_secret", "is required with introspection_url (RFC 7662 introspection is client-authenticated)")
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
		out = append(out, exchange.ClientConfig{ID: cl.ID, Secret: string(cl.Secret), Public: cl.Public, Providers: cl.Providers})
	}
	return out
}

// validatePassword checks the password provider and fills its defaults.
func validatePassword(p *Problems, name string, pc ProviderConfig) ProviderConfig {
	path := "providers." + name
	if name != exchange.PasswordProvider {
		p.add(path+".type", "type password must be configured under the key %q", exchange.PasswordProvider)
	}
	if pc.Type != "password" {
		p.add(path+".type", "the key %q is reserved for type password, got %q", exchange.PasswordProvider, pc.Type)
	}
	if pc.Issuer != "" || len(pc.ClientIDs) > 0 || len(pc.AllowedDomains) > 0 || pc.LinkByEmail != "" || pc.TrustEmail != nil || pc.Leeway != 0 ||
		pc.ClientSecret != "" || pc.ClientSecretFile != "" || pc.Authority != "" || pc.Tenant != "" || len(pc.AllowedTenants) > 0 ||
		pc.APIURL != "" || pc.TokenURL != "" || pc.TokenInfoURL != "" || pc.UserInfoURL != "" || pc.IntrospectionURL != "" ||
		len(pc.RedirectURIs) > 0 || pc.MaxAge != 0 || pc.RequireNonce || pc.JWKSRefreshMax != 0 {
		p.add(path, "only memory, iterations, parallelism, min_length, allow_signup, throttle, reauth_window, hash_concurrency and hash_wait apply to type password")
	}
	d := defaultPassword
	if pc.Memory == 0 {
		pc.Memory = d.Memory
	}
	if pc.Iterations == 0 {
		pc.Iterations = d.Iterations
	}
	if pc.Parallelism == 0 {
		pc.Parallelism = d.Parallelism
	}
	if pc.MinLength == 0 {
		pc.MinLength = d.MinLength
	}
	if pc.Throttle.PerAccount == 0 {
		pc.Throttle.PerAccount = d.Throttle.PerAccount
	}
	if pc.Throttle.PerIP == 0 {
		pc.Throttle.PerIP = d.Throttle.PerIP
	}
	if pc.Throttle.Window == 0 {
		pc.Throttle.Window = d.Throttle.Window
	}
	if pc.Throttle.RegisterPerIP == 0 {
		pc.Throttle.RegisterPerIP = d.Throttle.RegisterPerIP
	}
	if pc.ReauthWindow == 0 {
		pc.ReauthWindow = d.ReauthWindow
	}
	if pc.HashWait == 0 {
		pc.HashWait = d.HashWait
	}
	// Each login holds memory KiB while it hashes: bound what a burst of
	// logins can take.
	if pc.Memory < 1024 || pc.Memory > 1<<20 {
		p.add(path+".memory", "must be between 1024 and 1048576 (KiB), got %d", pc.Memory)
	}
	if pc.Iterations > 20 {
		p.add(path+".iterations", "must be between 1 and 20, got %d", pc.Iterations)
	}
	if pc.Parallelism > 16 {
		p.add(path+".parallelism", "must be between 1 and 16, got %d", pc.Parallelism)
	}
	if pc.MinLength < 8 || pc.MinLength > 128 {
		p.add(path+".min_length", "must be between 8 and 128, got %d", pc.MinLength)
	}
	if pc.Throttle.PerAccount < 0 {
		p.add(path+".throttle.per_account", "must be positive, got %d", pc.Throttle.PerAccount)
	}
	if pc.Throttle.PerIP < 0 {
		p.add(path+".throttle.per_ip", "must be positive, got %d", pc.Throttle.PerIP)
	}
	if pc.Throttle.RegisterPerIP < 0 {
		p.add(path+".throttle.register_per_ip", "must be positive, got %d", pc.Throttle.RegisterPerIP)
	}
	if pc.ReauthWindow < 30*time.Second || pc.ReauthWindow > time.Hour {
		p.add(path+".reauth_window", "must be between 30s and 1h, got %s", pc.ReauthWindow)
	}
	if pc.HashConcurrency < 0 || pc.HashConcurrency > 1024 {
		p.add(path+".hash_concurrency", "must be between 0 (twice GOMAXPROCS) and 1024, got %d", pc.HashConcurrency)
	}
	// Below web.RequestTimeout (15s), so a wait ends as busy, not as a
	// cancelled request.
	if pc.HashWait < time.Millisecond || pc.HashWait > 10*time.Second {
		p.add(path+".hash_wait", "must be between 1ms and 10s, got %s", pc.HashWait)
	}
	if pc.Throttle.Window < time.Second || pc.Throttle.Window > 24*time.Hour {
		p.add(path+".throttle.window", "must be between 1s and 24h, got %s", pc.Throttle.Window)
	}
	return pc
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
