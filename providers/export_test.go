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
