package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// Client describes the caller of a request, for the session record.
type Client struct {
	ID        string
	UserAgent string
	IP        string
}

// ExchangeRequest is a provider credential to trade for our tokens.
type ExchangeRequest struct {
	Provider   string
	Credential providers.Credential
	// ProfileName is used only when the user is created (Apple sends the
	// name once, outside the id_token).
	ProfileName string
	Client      Client
}

// Result is what an exchange or a refresh answers.
type Result struct {
	AccessToken      string
	ExpiresAt        time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	SessionID        string
	Created          bool
	User             storage.User
	Identities       []storage.Identity // nil on refresh
}

// Exchange verifies a provider credential and signs the user in.
func (s *Service) Exchange(ctx context.Context, req ExchangeRequest) (res *Result, err error) {
	p, ok := s.providers[req.Provider]
	defer func() {
		provider, outcome := req.Provider, OutcomeOK
		if !ok {
			provider = "unknown"
		}
		switch {
		case err != nil:
			outcome = errorOutcome(err)
		case res.Created:
			outcome = OutcomeCreated
		}
		s.observe.Exchanged(provider, outcome)
	}()
	if !ok {
		if req.Provider == "" {
			return nil, newError(KindInvalidRequest, ReasonMissingProvider, "provider is required", nil)
		}
		return nil, newError(KindUnsupportedProvider, ReasonProviderMissing, "no provider of that name is configured", nil)
	}
	if err := s.clientAllows(req.Client.ID, req.Provider); err != nil {
		return nil, err
	}
	c := s.attestNonce(req.Credential, req.Client.ID)
	if c.IDToken == "" && c.AccessToken == "" && c.Code == "" {
		return nil, newError(KindInvalidRequest, ReasonMissingCredential, "one of id_token, access_token or code is required", nil)
	}
	id, err := s.verify(ctx, p, req.Provider, c)
	if err != nil {
		return nil, err
	}
	w, r, folds := s.signInWriter()
	if folds {
		if res, known, err := s.exchangeKnown(ctx, w, r, id, req); known || err != nil {
			return res, err
		}
	}
	if err := s.spendCredential(ctx, id); err != nil {
		return nil, err
	}
	user, created, err := s.findOrCreateUser(ctx, p, id, req.ProfileName)
	if err != nil {
		return nil, err
	}
	var events []storage.AuditEvent
	if created {
		events = append(events, storage.AuditEvent{Type: EventUserCreated, UserID: user.ID, Provider: req.Provider})
	}
	if id.NonceAttested {
		events = append(events, nonceAttested(id, req.Client.ID, user.ID, "exchange"))
	}
	if folds {
		return s.startSessionWith(ctx, &signInWrite{w: w, id: id}, user, created, req.Provider, req.Client, events...)
	}
	res, err = s.startSession(ctx, user, created, req.Provider, req.Client, events...)
	if err != nil {
		return nil, err
	}
	return s.identityStillOurs(ctx, id, user, res)
}

// signInWriter is the store's one-write sign-in, with the joined read it
// goes with; ok is false on a store without them (a test's decorator):
// the sign-in then takes one store method per step.
func (s *Service) signInWriter() (storage.SignInWriter, storage.HotReader, bool) {
	w, writes := storage.As[storage.SignInWriter](s.store)
	r, reads := storage.As[storage.HotReader](s.store)
	return w, r, writes && reads
}

// signInWrite is what the session write of an exchange does besides
// creating the session, on a store that does it all in one write
// (storage.SignInWriter).
type signInWrite struct {
	w  storage.SignInWriter
	id providers.Identity // the session is written only while this identity is the user's
	// spend records the credential in the same write (replay refusal).
	spend bool
	// touchAt, when set, is the identity's new LastLoginAt.
	touchAt time.Time
}

// spendAnyway records the credential of a sign-in whose write will not
// happen (it was to record it), and answers answer, or replayed when the
// credential was spent meanwhile: a verified credential is spent whatever
// the sign-in answers. A nil write (nothing to record) answers answer.
func (w *signInWrite) spendAnyway(ctx context.Context, s *Service, answer error) error {
	if w == nil || !w.spend {
		return answer
	}
	if err := s.spendCredential(ctx, w.id); err != nil {
		return err
	}
	return answer
}

// exchangeKnown signs in an identity the store already knows, in one read
// (identity and user) and one write (session, credential record, touch,
// live-session count, identities): the replay record is written with the
// session, so a replayed credential is refused by that write and writes
// nothing, on any instance. known is false for an identity not in the
// store: the caller creates or links it.
func (s *Service) exchangeKnown(ctx context.Context, w storage.SignInWriter, r storage.HotReader, id providers.Identity, req ExchangeRequest) (res *Result, known bool, err error) {
	ident, user, err := r.GetIdentityUser(ctx, id.Issuer, id.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, storeError(err)
	}
	if user.Disabled {
		// Spent all the same, as every verified credential is.
		if err := s.spendCredential(ctx, id); err != nil {
			return nil, true, err
		}
		return nil, true, disabledError()
	}
	write := &signInWrite{w: w, id: id, spend: true}
	if now := s.now(); now.Sub(ident.LastLoginAt) > time.Hour {
		write.touchAt = now.UTC() // hourly, as touchIdentity
	}
	var events []storage.AuditEvent
	if id.NonceAttested {
		events = append(events, nonceAttested(id, req.Client.ID, user.ID, "exchange"))
	}
	res, err = s.startSessionWith(ctx, write, user, false, req.Provider, req.Client, events...)
	return res, true, err
}

// identityStillOurs answers res once the identity that signed in is, read
// after the session was written, still the user's; otherwise it gives the
// session up.
func (s *Service) identityStillOurs(ctx context.Context, id providers.Identity, user storage.User, res *Result) (*Result, error) {
	// Check after write: the identity was looked up before the session
	// was written, and may have been unlinked meanwhile (a takeover by a
	// verified identity unlinks, then revokes every session: see
	// claimPasswordAccount). Read after our write, an identity still ours
	// means any later revocation reaches this session too. If it is gone
	// or now someone else's, the session is given up and the caller is
	// told so (401 revoked); a retry signs in afresh and resolves the
	// identity as it now stands. A retry here would do the same, but
	// would hide a takeover from the client that raced it.
	ident, err := s.store.GetIdentity(ctx, id.Issuer, id.Subject)
	switch {
	case err == nil && ident.UserID == user.ID:
		return res, nil
	case err == nil || errors.Is(err, storage.ErrNotFound):
		err = identityRacedError()
	default:
		err = storeError(err)
	}
	if rerr := s.abandonSession(ctx, res.SessionID, user.ID); rerr != nil {
		return nil, rerr
	}
	return nil, err
}

// capSessions revokes the user's oldest live sessions beyond the cap, never
// the one just made (keep). It runs after the new session is written, so
// concurrent sign-ins each see the others' sessions; a failure is logged,
// not answered: the sign-in itself succeeded.
func (s *Service) capSessions(ctx context.Context, userID, keep string) {
	limit := s.cfg.MaxSessionsPerUser
	if limit <= 0 {
		return
	}
	sessions, err := s.store.ListSessions(ctx, userID) // newest first
	if err != nil {
		s.log.WarnContext(ctx, "session cap: list sessions", "user_id", userID, "err", err)
		return
	}
	now := s.now()
	live := 0
	for _, sess := range sessions {
		if sess.Revoked() || sess.Expired(now) {
			continue
		}
		live++
		if live <= limit || sess.ID == keep {
			continue
		}
		if err := s.revokeSession(ctx, sess.ID, now.UTC(), RevokeReasonSessionLimit); err != nil {
			if !errors.Is(err, storage.ErrNotFound) {
				s.log.WarnContext(ctx, "session cap: revoke", "session_id", sess.ID, "err", err)
			}
			continue
		}
		s.audit(ctx, storage.AuditEvent{Type: EventSessionRevoked, UserID: userID, SessionID: sess.ID,
			Detail: fmt.Sprintf("%s: more than %d live sessions", RevokeReasonSessionLimit, limit)})
	}
}

// abandonSession revokes a session just written by a sign-in that found,
// checking after the write, that what it signed in with changed meanwhile.
func (s *Service) abandonSession(ctx context.Context, sessionID, userID string) error {
	// ErrNotFound: the user was deleted meanwhile, and the session with it.
	if err := s.store.RevokeSession(ctx, sessionID, s.now().UTC(), ReasonRacedCredentialChange); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventSessionAbandoned, UserID: userID, SessionID: sessionID,
		Detail: "credential changed while signing in"})
	s.log.WarnContext(ctx, "sign-in raced a credential change: its session is revoked", "session_id", sessionID, "user_id", userID)
	return nil
}

func (s *Service) verify(ctx context.Context, p Provider, name string, c providers.Credential) (providers.Identity, error) {
	id, err := p.Verifier.Verify(ctx, c)
	if err == nil {
		id.Provider = name
		return id, nil
	}
	var perr *providers.Error
	switch {
	case errors.As(err, &perr):
		kind := KindInvalidToken
		if providers.IsRequestReason(perr.Reason) {
			kind = KindInvalidRequest // a parameter missing or not allowed, not a bad token
		}
		return id, newError(kind, perr.Reason, perr.Error(), err)
	case errors.Is(err, providers.ErrUnavailable):
		return id, newError(KindProviderUnavailable, ReasonProviderUnavailable, "the provider cannot be reached right now; try again shortly", err)
	case ctx.Err() != nil:
		return id, newError(KindProviderUnavailable, ReasonProviderUnavailable, "the provider did not answer in time", err)
	default:
		return id, newError(KindProviderUnavailable, ReasonProviderUnavailable, "the provider cannot be reached right now; try again shortly", err)
	}
}

// maxCredentialRecord bounds how long a credential without an expiry is
// remembered (providers require exp; this is a guard, not a policy).
const maxCredentialRecord = 24 * time.Hour

// spendCredential refuses a second use of one provider credential: a
// verified id_token is recorded (by its TokenKey: issuer and jti, or a
// hash) until it stops verifying, and a second presentation, here or on
// another instance of the same store, is refused with replayed, writing
// nothing. It runs after verification and before any user or session
// write, so a credential is spent once verified, whatever the sign-in
// then answers (account_exists, signup_disabled, ...): the client signs in
// with the provider again. Credentials that cannot be presented twice (a
// code the provider redeems once) have no TokenKey.
func (s *Service) spendCredential(ctx context.Context, id providers.Identity) error {
	if id.TokenKey == "" {
		return nil
	}
	now := s.now()
	err := s.store.RecordCredential(ctx, id.TokenKey, credentialExpiry(id, now), now)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrConflict):
		return s.replayed(ctx, id)
	default:
		return storeError(err)
	}
}

// credentialExpiry is how long a credential's record is kept: until the
// credential stops verifying.
func credentialExpiry(id providers.Identity, now time.Time) time.Time {
	if id.TokenExpiresAt.IsZero() {
		return now.Add(maxCredentialRecord)
	}
	return id.TokenExpiresAt
}

// replayed is the answer to a credential already recorded.
func (s *Service) replayed(ctx context.Context, id providers.Identity) error {
	s.log.WarnContext(ctx, "provider token replayed: refused", "provider", id.Provider, "issuer", id.Issuer)
	return newError(KindInvalidToken, ReasonReplayed,
		"this provider token was already used; sign in with the provider again for a new one", nil)
}

// startSession creates a session and answers with its tokens. The audit
// events, if any, are appended in the same group commit as the session.
func (s *Service) startSession(ctx context.Context, user storage.User, created bool, provider string, c Client, events ...storage.AuditEvent) (*Result, error) {
	return s.startSessionWith(ctx, nil, user, created, provider, c, events...)
}

// startSessionWith is startSession; with write (an exchange on a store
// that can), the session, the audit events and write's extras are one
// write, and the identity check that identityStillOurs makes after the
// write is made in it.
func (s *Service) startSessionWith(ctx context.Context, write *signInWrite, user storage.User, created bool, provider string, c Client, events ...storage.AuditEvent) (*Result, error) {
	// The hook answers before anything of the session is written.
	extra, err := s.extraClaims(ctx, user, c.ID)
	if err != nil {
		return nil, write.spendAnyway(ctx, s, err)
	}
	now := s.now().UTC()
	sess := storage.Session{
		ID: newID(), UserID: user.ID, Provider: provider, ClientID: c.ID, Generation: 1,
		RotatedAt: now, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionMax),
		UserAgent: truncate(c.UserAgent, 256), IP: c.IP,
	}
	sess.IdleExpiresAt = minTime(now.Add(s.cfg.RefreshTTL), sess.ExpiresAt)
	if write != nil {
		return s.writeSignIn(ctx, write, sess, user, created, extra, events)
	}
	// Every write goes through the store's group commit: started together, the session and
	// the audit records share one group commit instead of waiting for
	// each in turn. The access token depends only on the records, not on
	// the write, so it is signed while the commit waits (and never inside
	// a transaction).
	var wg sync.WaitGroup
	var sessErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		sessErr = s.store.CreateSession(ctx, sess)
	}()
	for _, e := range events {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.audit(ctx, e)
		}()
	}
	res, signErr := s.result(sess, user, extra)
	wg.Wait()
	if sessErr != nil {
		return nil, storeError(sessErr)
	}
	if signErr != nil {
		return nil, signErr
	}
	s.capSessions(ctx, user.ID, sess.ID)
	idents, err := s.store.ListIdentities(ctx, user.ID)
	if err != nil {
		return nil, storeError(err)
	}
	res.Created, res.Identities = created, idents
	return res, nil
}

// result signs the session's tokens; extra are the claims hook's claims
// (nil: none), fetched by the caller before it wrote anything.
func (s *Service) result(sess storage.Session, user storage.User, extra map[string]json.RawMessage) (*Result, error) {
	claims := s.accessClaims(sess, user)
	var signed jwt.Claims = claims
	if len(extra) > 0 {
		signed = withExtra{AccessClaims: claims, extra: extra}
	}
	at, err := s.keys.Sign(typAccess, signed)
	if err != nil {
		return nil, newError(KindServer, "", "internal error", err)
	}
	return &Result{
		AccessToken:      at,
		ExpiresAt:        claims.ExpiresAt.Time,
		RefreshToken:     s.refreshToken(sess),
		RefreshExpiresAt: sess.IdleExpiresAt,
		SessionID:        sess.ID,
		User:             user,
	}, nil
}

// writeSignIn is startSession's one write (storage.SignInWriter). The
// access token is signed while the write is on its way. Of the write's
// refusals, a recorded credential is a replay, and an identity no longer
// the user's is the race identityStillOurs detects after its write: here
// nothing was written, and the answer is the same.
func (s *Service) writeSignIn(ctx context.Context, write *signInWrite, sess storage.Session, user storage.User, created bool,
	extra map[string]json.RawMessage, events []storage.AuditEvent) (*Result, error) {
	id := write.id
	in := storage.SignIn{Session: sess, Issuer: id.Issuer, Subject: id.Subject, TouchAt: write.touchAt, Now: sess.CreatedAt,
		CountLive: s.cfg.MaxSessionsPerUser > 0}
	if write.spend && id.TokenKey != "" {
		in.CredentialKey, in.CredentialExpiresAt = id.TokenKey, credentialExpiry(id, sess.CreatedAt)
	}
	for _, e := range events {
		e.ID, e.Time = newID(), sess.CreatedAt
		in.Audit = append(in.Audit, e)
	}
	var out storage.SignedIn
	var writeErr error
	written := make(chan struct{})
	go func() {
		defer close(written)
		out, writeErr = write.w.WriteSignIn(ctx, in)
	}()
	res, signErr := s.result(sess, user, extra)
	<-written
	switch {
	case errors.Is(writeErr, storage.ErrConflict):
		return nil, s.replayed(ctx, id)
	case errors.Is(writeErr, storage.ErrStale):
		s.audit(ctx, storage.AuditEvent{Type: EventSessionAbandoned, UserID: user.ID, SessionID: sess.ID,
			Detail: "identity changed while signing in; no session written"})
		s.log.WarnContext(ctx, "sign-in raced an identity change: no session written", "user_id", user.ID)
		return nil, write.spendAnyway(ctx, s,
			identityRacedError())
	case writeErr != nil:
		return nil, storeError(writeErr)
	case signErr != nil:
		return nil, signErr
	}
	if in.CountLive && out.LiveSessions > s.cfg.MaxSessionsPerUser {
		s.capSessions(ctx, user.ID, sess.ID)
	}
	res.Created, res.Identities = created, out.Identities
	return res, nil
}
