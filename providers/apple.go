package providers

import "context"

// appleIssuer is Sign in with Apple's issuer; its discovery document is at
// the usual place.
const appleIssuer = "https://appleid.apple.com"

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
