package exchange

import (
	"context"
)

// Readiness is what /readyz reports: nil errors mean ready.
type Readiness struct {
	Store     error
	Providers map[string]error // only the providers that are not ready
}

// Ready reports the store's health and each provider's readiness.
func (s *Service) Ready(ctx context.Context) Readiness {
	r := Readiness{Store: s.store.Ping(ctx), Providers: map[string]error{}}
	for name, p := range s.providers {
		if err := p.Verifier.Ready(); err != nil {
			r.Providers[name] = err
		}
	}
	return r
}
