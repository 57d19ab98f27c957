package exchange

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authex/authex/storage"
)

// Anonymous users (docs/events.md, "Anonymous users"): POST /v1/anonymous
// creates a user with no provider identity and answers our tokens. The
// user holds one placeholder identity (provider "anonymous", issuer
// anonIssuer, subject the user id), which is what marks it anonymous and
// what no provider token can ever match. Linking the first real identity
// (POST /v1/me/identities) keeps the user id and removes the placeholder;
// an anonymous user that never links and stays idle for SweepAfter is
// deleted by SweepAnonymous.

// AnonymousProvider is the placeholder identity's provider name and the
// sessions' idp.
const AnonymousProvider = "anonymous"

// AnonymousConfig turns anonymous users on.
type AnonymousConfig struct {
	// PerIP and Window: at most PerIP anonymous users per client address
	// (an IPv6 /64) per Window.
	PerIP  int
	Window time.Duration
	// SweepAfter: an anonymous user whose last activity (creation or a
	// refresh) is older than this is deleted by SweepAnonymous.
	SweepAfter time.Duration
}

type anonymous struct {
	cfg     AnonymousConfig
	limiter limiter
}

// anonIssuer is the placeholder identities' issuer: under our own URL, so
// that no provider's issuer equals it.
func (s *Service) anonIssuer() string { return s.cfg.Issuer + "#anonymous" }

// CreateAnonymous creates an anonymous user and its first session.
func (s *Service) CreateAnonymous(ctx context.Context, c Client) (*Result, error) {
	if s.anon == nil {
		return nil, newError(KindAccessDenied, ReasonAnonymousDisabled, "anonymous users are not enabled here", nil)
	}
	now := s.now().UTC()
	wait, err := s.anon.limiter.take(ctx, clientKey(c.IP), now)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		return nil, &Error{Kind: KindRateLimited, Reason: ReasonRateLimited,
			Description: "too many anonymous users from this address; try again later", RetryAfter: wait}
	}
	u := storage.User{ID: newID(), CreatedAt: now, UpdatedAt: now}
	ident := storage.Identity{ID: newID(), UserID: u.ID, Provider: AnonymousProvider, Issuer: s.anonIssuer(),
		Subject: u.ID, CreatedAt: now, LastLoginAt: now}
	err = s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		if err := tx.CreateUser(ctx, u, ident); err != nil {
			return err
		}
		ei := eventIdentity(ident)
		return emit(WebhookUserCreated, u.ID, UserData{User: eventUser(u), Identity: &ei})
	})
	if err != nil {
		return nil, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventUserCreated, UserID: u.ID, Provider: AnonymousProvider, Detail: "anonymous"})
	res, err := s.startSession(ctx, u, true, AnonymousProvider, c)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// upgradeAnonymous runs after an identity was linked to userID: when the
// user was anonymous, the placeholder goes and the user takes the linked
// identity's email (when it has none and the address is free) and
// profile. The user id, its roles and its sessions stay.
func (s *Service) upgradeAnonymous(ctx context.Context, userID string, linked storage.Identity) {
	placeholder, err := s.store.GetIdentity(ctx, s.anonIssuer(), userID)
	if errors.Is(err, storage.ErrNotFound) {
		return
	}
	if err != nil {
		s.log.WarnContext(ctx, "anonymous upgrade: read placeholder", "user_id", userID, "err", err)
		return
	}
	if err := s.store.DeleteIdentity(ctx, userID, placeholder.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.WarnContext(ctx, "anonymous upgrade: remove placeholder", "user_id", userID, "err", err)
		return
	}
	now := s.now().UTC()
	_, err = s.store.ModifyUser(ctx, userID, func(u *storage.User) error {
		if u.Email != "" || linked.Email == "" {
			return errSkip
		}
		u.Email, u.EmailVerified, u.UpdatedAt = linked.Email, linked.EmailVerified, now
		if linked.EmailVerified {
			u.EmailVerifiedBy = linked.Provider
		}
		return nil
	})
	if err != nil && !errors.Is(err, errSkip) {
		// The address is taken (another user owns it verified): the
		// upgraded user keeps no email rather than failing the link.
		s.log.InfoContext(ctx, "anonymous upgrade: email not taken over", "user_id", userID, "err", err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventUserUpgraded, UserID: userID, Provider: linked.Provider,
		Detail: "anonymous user linked its first identity " + linked.ID})
}

// SweepAnonymous deletes the anonymous users (never linked) whose last
// activity, creation or the latest refresh of any session, is older than
// SweepAfter, and returns how many. Without anonymous users it does
// nothing.
func (s *Service) SweepAnonymous(ctx context.Context) (int, error) {
	if s.anon == nil || s.anon.cfg.SweepAfter <= 0 {
		return 0, nil
	}
	cutoff := s.now().Add(-s.anon.cfg.SweepAfter)
	swept, after := 0, ""
	for {
		users, err := s.store.ListUsers(ctx, storage.UserFilter{Provider: AnonymousProvider, After: after, Limit: 500})
		if err != nil {
			return swept, storeError(err)
		}
		if len(users) == 0 {
			return swept, nil
		}
		after = users[len(users)-1].ID
		for _, u := range users {
			idents, err := s.store.ListIdentities(ctx, u.ID)
			if err != nil {
				return swept, storeError(err)
			}
			if len(idents) != 1 || idents[0].Issuer != s.anonIssuer() {
				continue // linked meanwhile
			}
			last := u.CreatedAt
			sess, err := s.store.ListSessions(ctx, u.ID)
			if err != nil {
				return swept, storeError(err)
			}
			for _, x := range sess {
				if x.RotatedAt.After(last) {
					last = x.RotatedAt
				}
			}
			if !last.Before(cutoff) {
				continue
			}
			err = s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
				if err := tx.DeleteUser(ctx, u.ID); err != nil {
					return err
				}
				return emit(WebhookUserDeleted, u.ID, UserDeletedData{UserID: u.ID})
			})
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return swept, storeError(err)
			}
			swept++
			s.audit(ctx, storage.AuditEvent{Type: EventUserDeleted, UserID: u.ID, Provider: AnonymousProvider,
				Detail: fmt.Sprintf("anonymous user never linked, idle since %s: swept", last.UTC().Format(time.RFC3339))})
		}
	}
}

// cmpDuration is d, or def when d is not positive.
func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
