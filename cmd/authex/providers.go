package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/providers"
)

// ProviderConfig is one entry under providers. Its type picks the struct
// its other keys decode into: the provider type's own providers.TypeConfig
// (keys, defaults, Validate), or PasswordProviderConfig for type password.
// walkConfig checks the keys against that struct, so a key of another type
// is refused with its key path, like any unknown key.
type ProviderConfig struct {
	Type     string
	Spec     providers.TypeConfig    // nil for type password or an unknown type
	Password *PasswordProviderConfig // type password only

	decodeErrs []string // yaml's "line N: ..." type errors, for loadConfig
}

// providerSpec returns a new config struct of type typ (a pointer), or
// nil for an unknown type.
func providerSpec(typ string) any {
	if typ == "password" {
		return &PasswordProviderConfig{}
	}
	if c, ok := providers.NewTypeConfig(typ); ok {
		return c
	}
	return nil
}

// providerTypeNames lists the types a provider may have.
func providerTypeNames() []string {
	names := append(providers.Types(), "password")
	slices.Sort(names)
	return names
}

// UnmarshalYAML decodes type, then the rest into that type's struct. Type
// errors are kept for loadConfig (returned, they would drop the entry).
func (pc *ProviderConfig) UnmarshalYAML(n *yaml.Node) error {
	var head struct {
		Type string `yaml:"type"`
	}
	if err := pc.keep(n.Decode(&head)); err != nil {
		return err
	}
	pc.Type = head.Type
	spec := providerSpec(head.Type)
	if spec == nil {
		return nil
	}
	if err := pc.keep(n.Decode(spec)); err != nil {
		return err
	}
	switch s := spec.(type) {
	case *PasswordProviderConfig:
		pc.Password = s
	case providers.TypeConfig:
		pc.Spec = s
	}
	return nil
}

func (pc *ProviderConfig) keep(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		pc.decodeErrs = append(pc.decodeErrs, te.Errors...)
		return nil
	}
	return err
}

var providerConfigType = reflect.TypeOf(ProviderConfig{})

// typeKey is the index of the type key in a provider's mapping, or -1.
func typeKey(n *yaml.Node) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" {
			return i
		}
	}
	return -1
}

// providerStruct is the struct type a provider's mapping decodes into,
// from its type key (at index i); nil for an unknown or missing type.
func providerStruct(n *yaml.Node, i int) reflect.Type {
	if i < 0 {
		return nil
	}
	if spec := providerSpec(n.Content[i+1].Value); spec != nil {
		return reflect.TypeOf(spec).Elem()
	}
	return nil
}

// providerKeyProblem says why key is not a key of a provider's type: the
// types it belongs to, or that no type has it.
func providerKeyProblem(key string, known []string) string {
	var owners []string
	for _, typ := range providerTypeNames() {
		if _, ok := yamlFields(reflect.TypeOf(providerSpec(typ)).Elem())[key]; ok {
			owners = append(owners, typ)
		}
	}
	if len(owners) > 0 {
		return fmt.Sprintf("applies to type %s only", strings.Join(owners, ", "))
	}
	return fmt.Sprintf("unknown key (known: %s)", strings.Join(known, ", "))
}

// yamlFields maps a struct's yaml keys to their field types, with the
// fields of ",inline" embedded structs as its own.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		fields[name] = f.Type
	}
	return fields
}

// validateProviders checks every provider with its type's Validate, reads
// client_secret_file, and fills the defaults.
func (c *Config) validateProviders(p *Problems) {
	for _, name := range sortedKeys(c.Providers) {
		pc := c.Providers[name]
		path := "providers." + name
		switch {
		case pc.Spec == nil && pc.Password == nil:
			p.add(path+".type", "must be one of %s, got %q", strings.Join(providerTypeNames(), ", "), pc.Type)
		case pc.Password != nil:
			pc.Password.validate(p, name)
		case name == exchange.PasswordProvider:
			p.add(path+".type", "the key %q is reserved for type password, got %q", exchange.PasswordProvider, pc.Type)
		default:
			validateProviderSpec(p, path, pc.Spec)
		}
	}
}

// validateProviderSpec runs the type's Validate under path, reads
// client_secret_file, and checks and defaults the account policy keys.
func validateProviderSpec(p *Problems, path string, spec providers.TypeConfig) {
	for _, prob := range spec.Validate() {
		p.add(path+"."+prob.Key, "%s", prob.Message)
	}
	sh := spec.Shared()
	if sh.ClientSecretFile != "" && sh.ClientSecret == "" {
		b, err := os.ReadFile(sh.ClientSecretFile)
		switch {
		case err != nil:
			p.add(path+".client_secret_file", "cannot be read: %v", errors.Unwrap(err))
		case strings.TrimSpace(string(b)) == "":
			p.add(path+".client_secret_file", "is empty")
		default:
			sh.ClientSecret = providers.Secret(strings.TrimSpace(string(b)))
		}
	}
	switch sh.LinkByEmail {
	case "":
		// auto only where the provider's email_verified is proof of
		// ownership; docs/providers.md gives the reasons for each type.
		sh.LinkByEmail = exchange.LinkConfirm
		if spec.EmailProvesOwnership() {
			sh.LinkByEmail = exchange.LinkAuto
		}
	case exchange.LinkAuto, exchange.LinkConfirm, exchange.LinkNever:
	default:
		p.add(path+".link_by_email", "must be auto, confirm or never, got %q", sh.LinkByEmail)
	}
	if sh.TrustEmail != nil && !*sh.TrustEmail && sh.LinkByEmail == exchange.LinkAuto {
		p.add(path+".trust_email", "a link_by_email auto provider is trusted for email; to stop trusting it, set link_by_email: confirm")
	}
}

// oidcProvider is an oidc provider configured in code (--dev).
func oidcProvider(issuer string, clientIDs []string, link string) ProviderConfig {
	return ProviderConfig{Type: "oidc", Spec: &providers.OIDCConfig{
		Common: providers.Common{Type: "oidc", ClientIDs: clientIDs, LinkByEmail: link}, Issuer: issuer,
	}}
}

// buildProviders turns the validated providers section into the
// exchange's providers (verifiers discover in the background, as long as
// ctx lives) and the password provider's settings (nil: none).
func buildProviders(ctx context.Context, cfgs map[string]ProviderConfig, log *slog.Logger, keyFetched func(provider string) func(error)) (map[string]exchange.Provider, *exchange.PasswordConfig, error) {
	provs := map[string]exchange.Provider{}
	var password *exchange.PasswordConfig
	for name, pc := range cfgs {
		if pc.Password != nil {
			pw := pc.PasswordConfig()
			password = &pw
			continue
		}
		if pc.Spec == nil {
			return nil, nil, fmt.Errorf("providers.%s: unknown type %q", name, pc.Type)
		}
		vc := pc.Spec.Config(name)
		vc.Logger, vc.KeyFetched = log, keyFetched(name)
		v, err := providers.New(ctx, vc)
		if err != nil {
			return nil, nil, fmt.Errorf("providers.%s: %w", name, err)
		}
		sh := pc.Spec.Shared()
		provs[name] = exchange.Provider{Verifier: v, LinkByEmail: sh.LinkByEmail, AllowSignup: sh.AllowSignup == nil || *sh.AllowSignup,
			Issuer: pc.Spec.IdentityIssuer(), TrustEmail: sh.TrustEmail != nil && *sh.TrustEmail}
	}
	return provs, password, nil
}

// PasswordProviderConfig is type password: email + password accounts
// (argon2id cost, policy, throttle). It is always configured under the key
// "password"; a zero value takes its default (defaultPassword).
type PasswordProviderConfig struct {
	Type        string `yaml:"type"`
	AllowSignup *bool  `yaml:"allow_signup"`

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
var defaultPassword = PasswordProviderConfig{
	Type: "password", Memory: exchange.DefaultArgon2.Memory, Iterations: exchange.DefaultArgon2.Iterations,
	Parallelism: exchange.DefaultArgon2.Parallelism, MinLength: exchange.DefaultMinPasswordLength,
	Throttle:     ThrottleConfig{PerAccount: 5, PerIP: 50, RegisterPerIP: 10, Window: 15 * time.Minute},
	ReauthWindow: exchange.DefaultReauthWindow, HashWait: exchange.DefaultHashWait,
}

// PasswordConfig is the exchange's view of a password provider.
func (pc ProviderConfig) PasswordConfig() exchange.PasswordConfig {
	c := pc.Password
	return exchange.PasswordConfig{
		Argon2:    exchange.Argon2Params{Memory: c.Memory, Iterations: c.Iterations, Parallelism: c.Parallelism},
		MinLength: c.MinLength, AllowSignup: c.AllowSignup == nil || *c.AllowSignup,
		AccountBurst: c.Throttle.PerAccount, IPBurst: c.Throttle.PerIP, RegisterBurst: c.Throttle.RegisterPerIP,
		Window: c.Throttle.Window, ReauthWindow: c.ReauthWindow, HashConcurrency: c.HashConcurrency, HashWait: c.HashWait,
	}
}

// defaults fills the zero keys from defaultPassword.
func (c *PasswordProviderConfig) defaults() {
	d := defaultPassword
	c.Memory = cmp.Or(c.Memory, d.Memory)
	c.Iterations = cmp.Or(c.Iterations, d.Iterations)
	c.Parallelism = cmp.Or(c.Parallelism, d.Parallelism)
	c.MinLength = cmp.Or(c.MinLength, d.MinLength)
	c.Throttle.PerAccount = cmp.Or(c.Throttle.PerAccount, d.Throttle.PerAccount)
	c.Throttle.PerIP = cmp.Or(c.Throttle.PerIP, d.Throttle.PerIP)
	c.Throttle.Window = cmp.Or(c.Throttle.Window, d.Throttle.Window)
	c.Throttle.RegisterPerIP = cmp.Or(c.Throttle.RegisterPerIP, d.Throttle.RegisterPerIP)
	c.ReauthWindow = cmp.Or(c.ReauthWindow, d.ReauthWindow)
	c.HashWait = cmp.Or(c.HashWait, d.HashWait)
}

// validate checks the password provider, configured under name, and fills
// its defaults.
func (c *PasswordProviderConfig) validate(p *Problems, name string) {
	path := "providers." + name
	if name != exchange.PasswordProvider {
		p.add(path+".type", "type password must be configured under the key %q", exchange.PasswordProvider)
	}
	c.defaults()
	// Each login holds memory KiB while it hashes: bound what a burst of
	// logins can take.
	if c.Memory < 1024 || c.Memory > 1<<20 {
		p.add(path+".memory", "must be between 1024 and 1048576 (KiB), got %d", c.Memory)
	}
	if c.Iterations > 20 {
		p.add(path+".iterations", "must be between 1 and 20, got %d", c.Iterations)
	}
	if c.Parallelism > 16 {
		p.add(path+".parallelism", "must be between 1 and 16, got %d", c.Parallelism)
	}
	if c.MinLength < 8 || c.MinLength > 128 {
		p.add(path+".min_length", "must be between 8 and 128, got %d", c.MinLength)
	}
	for _, t := range []struct {
		key string
		v   int
	}{{"per_account", c.Throttle.PerAccount}, {"per_ip", c.Throttle.PerIP}, {"register_per_ip", c.Throttle.RegisterPerIP}} {
		if t.v < 0 {
			p.add(path+".throttle."+t.key, "must be positive, got %d", t.v)
		}
	}
	if c.ReauthWindow < 30*time.Second || c.ReauthWindow > time.Hour {
		p.add(path+".reauth_window", "must be between 30s and 1h, got %s", c.ReauthWindow)
	}
	if c.HashConcurrency < 0 || c.HashConcurrency > 1024 {
		p.add(path+".hash_concurrency", "must be between 0 (twice GOMAXPROCS) and 1024, got %d", c.HashConcurrency)
	}
	// Below web.RequestTimeout (15s), so a wait ends as busy, not as a
	// cancelled request.
	if c.HashWait < time.Millisecond || c.HashWait > 10*time.Second {
		p.add(path+".hash_wait", "must be between 1ms and 10s, got %s", c.HashWait)
	}
	if c.Throttle.Window < time.Second || c.Throttle.Window > 24*time.Hour {
		p.add(path+".throttle.window", "must be between 1s and 24h, got %s", c.Throttle.Window)
	}
}
