package exchange

import (
	"context"
	"errors"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// LinkRequest names the identity to link to a signed-in user: a link_token
// from a 409 account_exists answer, or a fresh provider credential.
type LinkRequest struct {
	LinkToken  string
	Provider   string
	Credential providers.Credential
	// ClientID is the client the request authenticated as, if any: one
	// registered with verifies_nonce may send a nonce-bearing id_token
	// without the nonce, as on Exchange.
	ClientID string
}

// LinkResult is the identity now linked and whether this call linked it
// (false: it already belonged to the user, and nothing was written).
type LinkResult struct {
	Identity storage.Identity
	Linked   bool
}

// LinkIdentity links an identity to the principal's user. An identity that
// belongs to another user is refused with identity_in_use; one that
// already belongs to this user is a no-op.
func (s *Service) LinkIdentity(ctx context.Context, p *Principal, req LinkRequest) (*LinkResult, error) {
	var (
		id  providers.Identity
		how string
	)
	switch {
	case req.LinkToken != "" && (req.Provider != "" || req.Credential != (providers.Credential{})):
		return nil, newError(KindInvalidRequest, ReasonConflictingCredentials,
			"send either a link_token or a provider credential, not both", nil)
	case req.LinkToken != "":
		claims, err := s.parseLinkToken(req.LinkToken)
		if err != nil {
			return nil, err
		}
		// Only the account whose email matched may take the identity:
		// otherwise anyone signed in who got hold of the token could
		// attach someone else's identity to their own account.
		if !s.isLinkOwner(claims.Owner, p.User.ID) {
			return nil, newError(KindAccessDenied, ReasonLinkWrongAccount,
				"this link_token was issued for another account; sign in to the account that owns the email", nil)
		}
		if _, ok := s.providers[claims.Provider]; !ok {
			return nil, newError(KindUnsupportedProvider, ReasonProviderMissing, "the link_token's provider is no longer configured", nil)
		}
		id = providers.Identity{
			Provider: claims.Provider, Issuer: claims.IDPIssuer, Subject: claims.IDPSubject,
			Email: claims.Email, EmailVerified: claims.EmailVerified,
		}
		how = "link_token"
	default:
		prov, ok := s.providers[req.Provider]
		if !ok {
			if req.Provider == "" {
				return nil, newError(KindInvalidRequest, ReasonMissingCredential,
					"a link_token, or a provider and its credential, is required", nil)
			}
			return nil, newError(KindUnsupportedProvider, ReasonProviderMissing, "no provider of that name is configured", nil)
		}
		c := s.attestNonce(req.Credential, req.ClientID)
		if c.IDToken == "" && c.AccessToken == "" && c.Code == "" {
			return nil, newError(KindInvalidRequest, ReasonMissingCredential, "one of id_token, access_token or code is required", nil)
		}
		var err error
		if id, err = s.verify(ctx, prov, req.Provider, c); err != nil {
			return nil, err
		}
		if err := s.spendCredential(ctx, id); err != nil {
			return nil, err
		}
		how = "credential"
	}
	res, err := s.link(ctx, p.User.ID, id, how)
	if err == nil && id.NonceAttested {
		s.audit(ctx, nonceAttested(id, req.ClientID, p.User.ID, "link"))
	}
	return res, err
}

func (s *Service) link(ctx context.Context, userID string, id providers.Identity, how string) (*LinkResult, error) {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		existing, err := s.store.GetIdentity(ctx, id.Issuer, id.Subject)
		switch {
		case err == nil && existing.UserID == userID:
			return &LinkResult{Identity: existing}, nil
		case err == nil:
			return nil, newError(KindIdentityInUse, ReasonIdentityInUse,
				"this identity already signs in to another account; unlink it there first", nil)
		case !errors.Is(err, storage.ErrNotFound):
			return nil, storeError(err)
		}
		ident := identityRecord(id, userID, s.now().UTC())
		err = s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
			if err := tx.AddIdentity(ctx, ident); err != nil {
				return err
			}
			return emit(WebhookIdentityLinked, userID, IdentityData{UserID: userID, Identity: eventIdentity(ident)})
		})
		if errors.Is(err, storage.ErrIdentityTaken) {
			continue // a concurrent sign-in or link took it; the stored owner decides
		}
		if err != nil {
			return nil, storeError(err)
		}
		s.audit(ctx, storage.AuditEvent{Type: EventIdentityLinked, UserID: userID, Provider: id.Provider,
			Detail: "by " + how + "; identity " + ident.ID})
		s.vouchForEmail(ctx, userID, id)
		s.upgradeAnonymous(ctx, userID, ident)
		return &LinkResult{Identity: ident, Linked: true}, nil
	}
	return nil, newError(KindIdentityInUse, ReasonIdentityInUse,
		"this identity already signs in to another account; unlink it there first", nil)
}

func (s *Service) parseLinkToken(raw string) (*linkClaims, error) {
	claims, err := s.openLinkTokenAnyKey(raw)
	switch {
	case err == nil:
		return claims, nil
	case errors.Is(err, errLinkExpired):
		return nil, newError(KindInvalidGrant, ReasonExpired, "the link_token has expired; sign in with the new identity again", err)
	case errors.Is(err, errLinkForged):
		return nil, newError(KindInvalidGrant, ReasonSignature, "the link_token was not issued here or was altered", err)
	case errors.Is(err, errLinkMalformed):
		return nil, newError(KindInvalidGrant, ReasonMalformed, "the link_token is not valid here", err)
	default:
		return nil, newError(KindServer, "", "internal error", err)
	}
}

// UnlinkIdentity removes one of the user's identities, unless it is the
// user's last way to sign in (a password counts as one).
func (s *Service) UnlinkIdentity(ctx context.Context, userID, identityID string) error {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	user, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return storeError(err)
	}
	idents, err := s.store.ListIdentities(ctx, userID)
	if err != nil {
		return storeError(err)
	}
	var target *storage.Identity
	for i := range idents {
		if idents[i].ID == identityID {
			target = &idents[i]
		}
	}
	if target == nil {
		return newError(KindNotFound, ReasonNotFound, "no identity of yours has that id", nil)
	}
	if target.Provider == PasswordProvider {
		return s.removePassword(ctx, user, idents, *target) // password.go
	}
	if signInMethods(user, len(idents)) <= 1 {
		return lastIdentityError()
	}
	err = s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
		if err := tx.DeleteIdentity(ctx, userID, identityID); err != nil {
			return err
		}
		return emit(WebhookIdentityUnlinked, userID, IdentityData{UserID: userID, Identity: eventIdentity(*target)})
	})
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return newError(KindNotFound, ReasonNotFound, "no identity of yours has that id", nil)
		}
		return storeError(err)
	}
	// Another instance may have unlinked a different identity at the same
	// moment; if that left the user with no way in, put this one back.
	if left, err := s.store.ListIdentities(ctx, userID); err == nil && signInMethods(user, len(left)) == 0 {
		err := s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
			if err := tx.AddIdentity(ctx, *target); err != nil {
				return err
			}
			return emit(WebhookIdentityLinked, userID, IdentityData{UserID: userID, Identity: eventIdentity(*target)})
		})
		if err != nil {
			s.log.ErrorContext(ctx, "unlink: could not restore the last identity", "user_id", userID, "err", err)
			return storeError(err)
		}
		return lastIdentityError()
	}
	s.audit(ctx, storage.AuditEvent{Type: EventIdentityUnlinked, UserID: userID, Provider: target.Provider,
		Detail: "identity " + target.ID})
	return nil
}

// signInMethods counts the ways a user can sign in: identities, plus a
// password when the account has one.
func signInMethods(u storage.User, identities int) int {
	n := identities
	if u.PasswordHash != "" {
		n++
	}
	return n
}

func lastIdentityError() error {
	return newError(KindConflict, ReasonLastIdentity,
		"this is the account's last way to sign in; link another identity first", nil)
}

// vouchForEmail records, after an identity was linked to a signed-in user,
// that a provider trusted for email verified the user's own address, when
// no provider trusted now had: the user proved control of both the account
// and that identity, so the address is now as good as the trusted
// provider's word, and a later sign-in of an auto provider may link to it.
// Only ever an upgrade: it never replaces a trusted provider, and a
// failure leaves the link in place (it is logged).
func (s *Service) vouchForEmail(ctx context.Context, userID string, id providers.Identity) {
	if !id.EmailVerified || !s.trustedForEmail(id.Provider) {
		return
	}
	_, err := s.store.ModifyUser(ctx, userID, func(u *storage.User) error {
		if !u.EmailVerified || !storage.SameEmail(u.Email, id.Email) || s.trustedForEmail(u.EmailVerifiedBy) {
			return errSkip
		}
		u.EmailVerifiedBy, u.UpdatedAt = id.Provider, s.now().UTC()
		return nil
	})
	switch {
	case err == nil:
		s.audit(ctx, storage.AuditEvent{Type: EventUserEmailVouched, UserID: userID, Provider: id.Provider,
			Detail: "the linked identity's provider is trusted for email and verified the user's address"})
	case !errors.Is(err, errSkip):
		s.log.WarnContext(ctx, "record the provider that verified a linked user's email", "user_id", userID, "err", err)
	}
}
