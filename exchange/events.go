package exchange

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/authex/authex/storage"
)

// Webhook events out (docs/events.md). An event is written to the outbox
// (storage.Outbox) in the same store transaction as the change it
// describes, one record per configured endpoint that wants its type; the
// delivery worker (package webhook) sends it afterwards. Nothing here does
// network I/O, so a sign-in is slowed by one more row in a transaction it
// writes anyway, and only when an endpoint wants the event.

// WebhookTarget is one configured endpoint as exchange sees it: its name
// and the event types it wants (empty: all).
type WebhookTarget struct {
	Name   string
	Events []string
}

func (t WebhookTarget) wants(typ string) bool {
	return len(t.Events) == 0 || slices.Contains(t.Events, typ)
}

// Emit is the function a write passes its events to: "emit event typ for
// user userID in this write". data becomes the event's `data` object.
type Emit func(typ, userID string, data any) error

// WriteWithEvents runs fn in one store transaction (storage.Transactor)
// with an Emit that writes into the outbox through the same transaction,
// so the change and its events commit together or not at all. After a
// commit that emitted anything it wakes the delivery worker. fn must make
// its writes through tx and do no network I/O (on bbolt it holds the one
// writer lock); it must return the error a store method gave it.
//
// With no endpoint configured fn runs on the store itself, outside a
// transaction, and emit does nothing: the write path is what it was.
//
// This is the API other features emit through, e.g.:
//
//	err := s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
//		n, err := tx.RevokeUserSessions(ctx, userID, "", now, reason)
//		if err != nil || n == 0 {
//			return err
//		}
//		return emit(WebhookSessionRevoked, userID, SessionRevokedData{UserID: userID, Reason: reason, Count: n})
//	})
func (s *Service) WriteWithEvents(ctx context.Context, fn func(tx storage.Store, emit Emit) error) error {
	if len(s.webhooks) == 0 {
		return fn(s.store, noEmit)
	}
	return s.inTxWithEvents(ctx, fn)
}

func noEmit(string, string, any) error { return nil }

// inTxWithEvents is WriteWithEvents for a write that is one transaction
// with or without endpoints (s.inTx).
func (s *Service) inTxWithEvents(ctx context.Context, fn func(tx storage.Store, emit Emit) error) error {
	if len(s.webhooks) == 0 {
		return s.inTx(ctx, func(tx storage.Store) error { return fn(tx, noEmit) })
	}
	emitted := false
	err := s.inTx(ctx, func(tx storage.Store) error {
		emitted = false
		return fn(tx, func(typ, userID string, data any) error {
			n, err := s.emit(ctx, tx, typ, userID, data)
			emitted = emitted || n > 0
			return err
		})
	})
	if err == nil && emitted && s.webhookNotify != nil {
		s.webhookNotify()
	}
	return err
}

// eventBody is the delivered JSON, the shape the Standard Webhooks
// specification recommends.
type eventBody struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// emit writes the event for every endpoint that wants it and returns how
// many records it wrote.
func (s *Service) emit(ctx context.Context, tx storage.Store, typ, userID string, data any) (int, error) {
	if !slices.Contains(WebhookEvents, typ) {
		return 0, fmt.Errorf("webhook: unknown event type %q", typ)
	}
	ob, ok := storage.As[storage.Outbox](tx)
	if !ok {
		return 0, fmt.Errorf("webhook: the store keeps no outbox")
	}
	now := s.now().UTC()
	var body []byte
	id := newID()
	n := 0
	for _, t := range s.webhooks {
		if !t.wants(typ) {
			continue
		}
		if body == nil {
			var err error
			body, err = json.Marshal(eventBody{Type: typ, Timestamp: now.Format(time.RFC3339Nano), Data: data})
			if err != nil {
				return 0, fmt.Errorf("webhook: encode %s: %w", typ, err)
			}
		}
		err := ob.AppendOutbox(ctx, storage.OutboxRecord{ID: "msg_" + id, Endpoint: t.Name, UserID: userID, Type: typ,
			Payload: body, CreatedAt: now, NextAttemptAt: now})
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// The `data` of each event type (docs/events.md).

// UserData is the data of user.created, user.updated and user.disabled.
type UserData struct {
	User EventUser `json:"user"`
	// Identity: the first identity, in user.created.
	Identity *EventIdentity `json:"identity,omitempty"`
}

// EventUser is a user in an event: never its password hash.
type EventUser struct {
	ID            string    `json:"id"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name,omitempty"`
	Picture       string    `json:"picture,omitempty"`
	Roles         []string  `json:"roles"`
	Disabled      bool      `json:"disabled"`
	HasPassword   bool      `json:"has_password"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// EventIdentity is an identity in an event.
type EventIdentity struct {
	ID            string `json:"id"`
	Provider      string `json:"provider"`
	Issuer        string `json:"issuer"`
	Subject       string `json:"subject"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
}

// IdentityData is the data of identity.linked and identity.unlinked.
type IdentityData struct {
	UserID   string        `json:"user_id"`
	Identity EventIdentity `json:"identity"`
}

// UserDeletedData is the data of user.deleted.
type UserDeletedData struct {
	UserID string `json:"user_id"`
}

// SessionRevokedData is the data of session.revoked: one session
// (SessionID set, Count 1) or several of a user at once (SessionID empty).
type SessionRevokedData struct {
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id,omitempty"`
	Reason    string `json:"reason"`
	Count     int    `json:"count"`
}

func eventUser(u storage.User) EventUser {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return EventUser{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name, Picture: u.Picture,
		Roles: roles, Disabled: u.Disabled, HasPassword: u.PasswordHash != "", CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
}

func eventIdentity(i storage.Identity) EventIdentity {
	return EventIdentity{ID: i.ID, Provider: i.Provider, Issuer: i.Issuer, Subject: i.Subject, Email: i.Email, EmailVerified: i.EmailVerified}
}

// revokeSessionIn revokes one session through tx and emits session.revoked
// when it was live before (a session already revoked keeps its first
// reason and emits nothing).
func revokeSessionIn(ctx context.Context, tx storage.Store, emit Emit, sessionID string, at time.Time, reason string) error {
	if rv, ok := storage.As[storage.SessionRevoker](tx); ok {
		// One write that reads, revokes and tells whether it did.
		before, revoked, err := rv.RevokeSessionOnce(ctx, sessionID, at, reason)
		if err != nil || !revoked {
			return err
		}
		return emit(WebhookSessionRevoked, before.UserID, SessionRevokedData{UserID: before.UserID, SessionID: sessionID, Reason: reason, Count: 1})
	}
	before, err := tx.GetSession(ctx, sessionID)
	if err != nil {
		return err
	}
	if err := tx.RevokeSession(ctx, sessionID, at, reason); err != nil {
		return err
	}
	if before.Revoked() {
		return nil
	}
	return emit(WebhookSessionRevoked, before.UserID, SessionRevokedData{UserID: before.UserID, SessionID: sessionID, Reason: reason, Count: 1})
}

// revokeUserSessionsIn revokes a user's sessions through tx and emits one
// session.revoked when any was live.
func revokeUserSessionsIn(ctx context.Context, tx storage.Store, emit Emit, userID, except string, at time.Time, reason string) (int, error) {
	n, err := tx.RevokeUserSessions(ctx, userID, except, at, reason)
	if err != nil || n == 0 {
		return n, err
	}
	return n, emit(WebhookSessionRevoked, userID, SessionRevokedData{UserID: userID, Reason: reason, Count: n})
}

// revokeSession is the store's RevokeSession with its session.revoked
// event, in one transaction.
func (s *Service) revokeSession(ctx context.Context, sessionID string, at time.Time, reason string) error {
	return s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		return revokeSessionIn(ctx, tx, emit, sessionID, at, reason)
	})
}

// revokeUserSessions is the store's RevokeUserSessions with its
// session.revoked event, in one transaction.
func (s *Service) revokeUserSessions(ctx context.Context, userID, except string, at time.Time, reason string) (int, error) {
	var n int
	err := s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		var err error
		n, err = revokeUserSessionsIn(ctx, tx, emit, userID, except, at, reason)
		return err
	})
	return n, err
}
