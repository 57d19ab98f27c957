package providers

import "context"

// appleIssuer is Sign in with Apple's issuer; its discovery document is at
// the usual place.
const appleIssuer = "https://appleid.apple.com"

// AppleConfig is type apple: Sign in with Apple. Issuer defaults to
// https://appleid.apple.com in the verifier (an unset issuer stays unset
// here, so callers that look providers up by issuer see only a configured one).
type AppleConfig struct {
	Common        `yaml:",inline"`
	IDTokenPolicy `yaml:",inline"`
	Issuer        string `yaml:"issuer"`
}

func (c *AppleConfig) Validate() []Problem {
	var ps problems
	validateURLs(&ps, c.URLs())
	c.Common.validate(&ps, c.hasSecret(), false)
	c.IDTokenPolicy.validate(&ps)
	return ps
}

func (c *AppleConfig) URLs() map[string]string { return map[string]string{"issuer": c.Issuer} }

func (c *AppleConfig) Config(name string) Config {
	cfg := c.config(name)
	cfg.Issuer = c.Issuer
	c.apply(&cfg)
	return cfg
}

// EmailProvesOwnership: Apple verifies the addresses it asserts (or
// relays them privately).
func (c *AppleConfig) EmailProvesOwnership() bool { return true }
func (c *AppleConfig) IdentityIssuer() string     { return c.Issuer }

// newApple is the oidc verifier with Apple's preset. Apple's quirks:
//   - email_verified and is_private_email arrive as booleans or as the
//     strings "true"/"false" (claims decodes both);
//   - the user's name is never in the id_token: the app receives it once, at
//     the first authorization, and forwards it as profile.name, which the
//     caller uses only when it creates the user;
//   - a private relay address (is_private_email) is reported in
//     Identity.PrivateEmail; it is per app, so it links to nothing else.
//
// For code exchange Apple's client_secret is a JWT the developer signs
// with their Apple key (valid up to six months); authex takes it as
// configured and does not mint it.
func newApple(ctx context.Context, cfg Config) (Verifier, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = appleIssuer
	}
	if err := checkIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	v := newOIDCVerifier(cfg, []string{cfg.Issuer})
	v.finish = func(cl *claims, id *Identity) {
		id.PrivateEmail = bool(cl.IsPrivateEmail)
	}
	v.start(ctx)
	return v, nil
}
