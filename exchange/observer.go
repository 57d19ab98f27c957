package exchange

// Observer receives the outcome of every exchange and refresh, for metrics.
// The domain knows nothing of Prometheus: web implements this. Methods are
// called on the request path and must not block.
type Observer interface {
	// Exchanged reports one exchange: provider is a configured provider's
	// name ("unknown" for any other, so clients cannot grow the label set);
	// outcome is "ok", "created" or the refusal's reason.
	Exchanged(provider, outcome string)
	// Refreshed reports one refresh: "rotated", "grace" (the previous
	// generation within the reuse grace) or the refusal's reason
	// ("reused", "expired", "revoked", "malformed", "user_disabled", ...).
	Refreshed(outcome string)
}

type nopObserver struct{}

func (nopObserver) Exchanged(string, string) {}
func (nopObserver) Refreshed(string)         {}

// Outcomes reported to the Observer besides refusal reasons.
const (
	OutcomeOK      = "ok"
	OutcomeCreated = "created"
	OutcomeRotated = "rotated"
	OutcomeGrace   = "grace"
	OutcomeError   = "error"
)

func errorOutcome(err error) string {
	if r := AsError(err).Reason; r != "" {
		return r
	}
	return OutcomeError
}

// observeSignIn reports a password registration or login as an exchange
// of the password provider.
func (s *Service) observeSignIn(provider string, res *Result, err error) {
	switch {
	case err != nil:
		s.observe.Exchanged(provider, errorOutcome(err))
	case res != nil && res.Created:
		s.observe.Exchanged(provider, OutcomeCreated)
	default:
		s.observe.Exchanged(provider, OutcomeOK)
	}
}
