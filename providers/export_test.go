package providers

import "time"

// WithTiming returns cfg with the discovery backoff and the unknown-kid
// refetch cooldown shortened (or lengthened) for tests.
func WithTiming(cfg Config, backoffMin, backoffMax, keyCooldown time.Duration) Config {
	cfg.backoffMin = backoffMin
	cfg.backoffMax = backoffMax
	cfg.keyCooldown = keyCooldown
	return cfg
}

// WithJWKSRefresh returns cfg with the scheduled key refresh bounded by
// [min, max] (below the 5m floor New otherwise enforces), for tests.
func WithJWKSRefresh(cfg Config, min, max time.Duration) Config {
	cfg.jwksRefreshMin = min
	cfg.JWKSRefreshMax = max
	return cfg
}
