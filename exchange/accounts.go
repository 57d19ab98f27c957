package exchange

import (
	"context"
	"errors"
	"time"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// findOrCreateUser resolves the identity to a user. A conflict with a
// concurrent sign-in (the same identity, or the same verified email, created
// between our read and our write) is settled by reading again, so
// concurrent first sign-ins create exactly one user.
func (s *Service) findOrCreateUser(ctx context.Context, p Provider, id providers.Identity, profileName string) (storage.User, bool, error) {
	for attempt := 0; attempt < 3; attempt++ {
		user, found, err := s.userForIdentity(ctx, id)
		if err != nil || found {
			return user, false, err
		}
		user, created, err := s.newIdentity(ctx, p, id, profileName)
		if errors.Is(err, storage.ErrConflict) {
			continue // someone else won the race; their record decides
		}
		return user, created, err
	}
	return storage.User{}, false, newError(KindServer, "", "internal error", errors.New("identity conflict did not settle"))
}

func (s *Service) userForIdentity(ctx context.Context, id providers.Identity) (storage.User, bool, error) {
	ident, err := s.store.GetIdentity(ctx, id.Issuer, id.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, false, nil
	}
	if err != nil {
		return storage.User{}, false, storeError(err)
	}
	user, err := s.store.GetUser(ctx, ident.UserID)
	if err != nil {
		return storage.User{}, false, storeError(err)
	}
	if user.Disabled {
		return storage.User{}, false, disabledError()
	}
	s.touchIdentity(ctx, ident)
	return user, true, nil
}

// touchIdentity records a sign-in's time on its identity. A login time per
// sign-in would double the writes of the hot path; an hourly resolution is
// what an operator needs.
func (s *Service) touchIdentity(ctx context.Context, ident storage.Identity) {
	if now := s.now(); now.Sub(ident.LastLoginAt) > time.Hour {
		if err := s.store.TouchIdentity(ctx, ident.ID, now); err != nil {
			s.log.WarnContext(ctx, "touch identity", "err", err)
		}
	}
}

// newIdentity handles the first sign-in of an identity: link it by verified
// email, ask for confirmation, or create a user.
func (s *Service) newIdentity(ctx context.Context, p Provider, id providers.Identity, profileName string) (storage.User, bool, error) {
	now := s.now().UTC()
	ident := identityRecord(id, "", now) // its user is settled below
	if id.EmailVerified && id.Email != "" && p.LinkByEmail != LinkNever {
		owner, err := s.store.GetUserByVerifiedEmail(ctx, id.Email)
		switch {
		case err == nil:
			// A concurrent first sign-in of this same identity may have
			// created the owner between our identity lookup and this one;
			// that is not someone else's account.
			if _, err := s.store.GetIdentity(ctx, id.Issuer, id.Subject); err == nil {
				return storage.User{}, false, storage.ErrConflict
			}
			return s.linkByEmail(ctx, p, id, ident, owner)
		case !errors.Is(err, storage.ErrNotFound):
			return storage.User{}, false, storeError(err)
		}
		// An unverified password account holding the address does not own
		// it: the verified identity takes it over (password.go), when its
		// provider may link without asking.
		if p.autoLinks(id.Email) {
			if user, ok, err := s.claimPasswordAccount(ctx, id, ident); ok || err != nil {
				return user, false, err
			}
		}
	}
	if !p.AllowSignup {
		return storage.User{}, false, newError(KindAccessDenied, ReasonSignupDisabled, "this provider does not allow new accounts", nil)
	}
	name := id.Name
	if name == "" {
		name = profileName
	}
	user := storage.User{
		ID: newID(), Email: id.Email, EmailVerified: id.EmailVerified,
		Name: name, Picture: id.Picture, Roles: []string{}, CreatedAt: now, UpdatedAt: now,
	}
	if user.EmailVerified && user.Email != "" {
		user.EmailVerifiedBy = id.Provider // who vouched, for later links by email
	}
	if p.LinkByEmail == LinkNever && id.EmailVerified && id.Email != "" {
		// A separate user must not take the verified-email index from the
		// user who already owns that address; it keeps the address
		// unindexed (the identity still records that it was verified).
		if _, err := s.store.GetUserByVerifiedEmail(ctx, id.Email); err == nil {
			user.EmailVerified, user.EmailVerifiedBy = false, ""
		}
	}
	ident.UserID = user.ID
	err := s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		if err := tx.CreateUser(ctx, user, ident); err != nil {
			return err
		}
		first := eventIdentity(ident)
		return emit(WebhookUserCreated, user.ID, UserData{User: eventUser(user), Identity: &first})
	})
	if err != nil {
		return storage.User{}, false, conflictOrStoreError(err)
	}
	// Exchange has startSession write the user.created audit record, in
	// the same group commit as the session.
	return user, true, nil
}

// identityRecord is the stored record of a verified identity, new at now.
func identityRecord(id providers.Identity, userID string, now time.Time) storage.Identity {
	return storage.Identity{
		ID: newID(), UserID: userID, Provider: id.Provider, Issuer: id.Issuer, Subject: id.Subject,
		Email: id.Email, EmailVerified: id.EmailVerified, CreatedAt: now, LastLoginAt: now,
	}
}

// linkByEmail settles a first sign-in whose verified email a user already
// owns. It links automatically only when the incoming provider may
// (autoLinks) and the owner's email was verified by a provider trusted for
// email now: otherwise whoever controlled a weaker identity with that
// address (a confirm provider's, or one that no longer vouches) would own
// the account the stronger one signs in to. Anything else answers
// account_exists with a link_token: the client signs in to the account and
// links the identity itself.
func (s *Service) linkByEmail(ctx context.Context, p Provider, id providers.Identity, ident storage.Identity, owner storage.User) (storage.User, bool, error) {
	if !p.autoLinks(id.Email) || !s.trustedForEmail(owner.EmailVerifiedBy) || !storage.SameEmail(owner.Email, id.Email) {
		token, err := s.linkToken(id, owner.ID)
		if err != nil {
			return storage.User{}, false, newError(KindServer, "", "internal error", err)
		}
		e := newError(KindAccountExists, ReasonAccountExists,
			"an account with this email already exists: sign in to it and link this identity with the link_token", nil)
		e.LinkToken = token
		return storage.User{}, false, e
	}
	if owner.Disabled {
		return storage.User{}, false, disabledError()
	}
	ident.UserID = owner.ID
	err := s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		if err := tx.AddIdentity(ctx, ident); err != nil {
			return err
		}
		return emit(WebhookIdentityLinked, owner.ID, IdentityData{UserID: owner.ID, Identity: eventIdentity(ident)})
	})
	if err != nil {
		return storage.User{}, false, conflictOrStoreError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventIdentityLinked, UserID: owner.ID, Provider: id.Provider, Detail: "by verified email"})
	return owner, false, nil
}

// Identities returns a user's identities, for callers that already hold
// the user (an authenticated principal) and need not read it again.
func (s *Service) Identities(ctx context.Context, userID string) ([]storage.Identity, error) {
	idents, err := s.store.ListIdentities(ctx, userID)
	if err != nil {
		return nil, storeError(err)
	}
	if idents == nil {
		idents = []storage.Identity{}
	}
	return idents, nil
}

// UserWithIdentities returns a user and its identities (never nil).
func (s *Service) UserWithIdentities(ctx context.Context, userID string) (storage.User, []storage.Identity, error) {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return u, nil, storeError(err)
	}
	idents, err := s.Identities(ctx, userID)
	return u, idents, err
}
