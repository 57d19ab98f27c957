package keyring

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"time"
)

// Keeping several instances' keyrings in step. Every instance reads the
// keys from the shared store: at start, every ReloadInterval (Watch),
// and when a token names a kid it does not know (another instance created
// a key since the last reload). The key that signs is chosen from the
// records and the clock alone, so instances that have read the same
// records sign with the same key; a rotated key is published at once and
// signs only from its NotBefore, which should exceed ReloadInterval so
// that every instance's JWKS shows it before any token carries it.

// ReloadInterval is how often key maintenance runs (cmd/authex serve.go).
const ReloadInterval = 30 * time.Second

// PollInterval is how often Watch rereads the keys and MAC secrets by
// default: an emergency revocation (RevokeKey) made on one instance stops
// every other from accepting the key within about this long. A reload is
// one or two small queries; keys whose stored bytes did not change are not
// opened or parsed again.
const PollInterval = time.Second

const (
	// unknownKidCooldown bounds the reloads that tokens with unknown kids
	// can cause (anyone can send one) to one per second per instance.
	unknownKidCooldown = time.Second
	// bootstrapSecret records which instance's key is the first one.
	bootstrapSecret = "signing-key-bootstrap"
	// bootstrapWait is how long an instance that lost the first-key claim
	// waits for the winner's key before it makes its own.
	bootstrapWait = 5 * time.Second
)

// Watch reloads the keys every interval until ctx ends. A failed reload
// (the store is away) keeps the keys already loaded.
func (k *Ring) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = PollInterval
	}
	if log == nil {
		log = slog.Default()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, interval)
		err := k.Reload(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("signing keys: reload failed; keeping the loaded keys", "err", err)
		}
	}
}

// reloadForUnknown rereads the keys when a token names a kid we do not
// know, at most once per unknownKidCooldown, and reports whether it did.
func (k *Ring) reloadForUnknown(kid string) bool {
	if kid == "" {
		return false
	}
	k.unknownMu.Lock()
	defer k.unknownMu.Unlock()
	if _, ok := k.lookup(kid, typLink); ok { // known at all: no reload helps
		return true // a concurrent reload found it
	}
	return k.reloadLimited()
}

// ReloadForUnknownSecret is reloadForUnknown for a refresh token's MAC
// secret id (another instance rotated the secret since our last reload).
func (k *Ring) ReloadForUnknownSecret(id string) bool {
	if id == "" || len(id) > 16 {
		return false
	}
	k.unknownMu.Lock()
	defer k.unknownMu.Unlock()
	if _, ok := k.MACs().ByID[id]; ok {
		return true
	}
	return k.reloadLimited()
}

// reloadLimited reloads unless one ran within unknownKidCooldown.
// k.unknownMu must be held.
func (k *Ring) reloadLimited() bool {
	now := time.Now()
	if now.Sub(k.lastUnknown) < unknownKidCooldown {
		return false
	}
	k.lastUnknown = now
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return k.Reload(ctx) == nil
}

// bootstrap makes the first key of an empty store. Instances starting
// together on one store must not each sign with a key of their own, so the
// first to claim bootstrapSecret (first writer wins, in the store) creates
// its key and the others wait until they can load it.
func (k *Ring) bootstrap(ctx context.Context) error {
	rec, err := k.newRecord(0)
	if err != nil {
		return err
	}
	claim, err := k.store.EnsureSecret(ctx, bootstrapSecret, []byte(rec.ID))
	if err != nil {
		return err
	}
	if bytes.Equal(claim, []byte(rec.ID)) {
		if err := k.store.CreateSigningKey(ctx, rec); err != nil {
			return err
		}
		return k.Reload(ctx)
	}
	deadline := time.Now().Add(bootstrapWait)
wait:
	for time.Now().Before(deadline) {
		recs, err := k.store.ListSigningKeys(ctx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.ID != string(claim) {
				continue
			}
			if err := k.Reload(ctx); err != nil {
				return err
			}
			if _, err := k.signer(); err == nil {
				return nil
			}
			break wait // the claimed key exists but no longer signs
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The claim is stale (its instance died before storing the key, or the
	// keys were deleted since): make a key of our own.
	if _, err := k.Create(ctx, 0); err != nil {
		return err
	}
	if err := k.Reload(ctx); err != nil {
		return err
	}
	if _, err := k.signer(); err != nil {
		return errors.New("no signing key after bootstrap")
	}
	return nil
}
