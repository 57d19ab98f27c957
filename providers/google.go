package providers

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// googleIssuer is Google's issuer. Google's id_tokens carry it either as is
// or without its scheme ("accounts.google.com"); both are accepted.
const googleIssuer = "https://accounts.google.com"

// newGoogle is the oidc verifier with Google's preset: the default issuer,
// its scheme-less spelling, and the Workspace domain (hd) check.
func newGoogle(ctx context.Context, cfg Config) (Verifier, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = googleIssuer
	}
	if err := checkIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	var domains []string
	for i, d := range cfg.AllowedDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" {
			return nil, fmt.Errorf("allowed_domains[%d] is empty", i)
		}
		if strings.ContainsAny(d, "/@ ") {
			return nil, errors.New("allowed_domains entries are bare domains, like example.com")
		}
		domains = append(domains, d)
	}

	issuers := []string{cfg.Issuer}
	if bare := strings.TrimPrefix(strings.TrimPrefix(cfg.Issuer, "https://"), "http://"); bare != cfg.Issuer {
		issuers = append(issuers, bare)
	}
	v := newOIDCVerifier(cfg, issuers)
	v.domains = domains
	v.needDomain = len(domains) > 0
	v.start(ctx)
	return v, nil
}
