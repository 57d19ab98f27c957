package exchange

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// Upstream security signals (docs/events.md, "Security signals in"): a
// transmitter (Google's Cross-Account Protection, any OpenID Shared
// Signals transmitter) pushes Security Event Tokens (RFC 8417, RFC 8935)
// to POST /v1/signals. Each verified event is mapped to our user through
// the identity (issuer, subject) of the transmitter's provider, acted on,
// and audited. An event for a subject we do not know is accepted and
// logged, never acted on.

// SignalReceiver is one upstream transmitter.
type SignalReceiver struct {
	// Provider is the config name of the provider whose identities the
	// transmitter's events name.
	Provider string
	// IdentityIssuer is the issuer those identities are stored under (the
	// `iss` of the provider's id_tokens).
	IdentityIssuer string
	Verifier       *providers.SETVerifier
}

// Event type URIs we act on. RISC (OpenID RISC profile, Google's Cross-
// Account Protection), CAEP and the OAuth event types; SSF transmitters
// send the CAEP ones.
const (
	SETSessionsRevoked          = "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked"
	SETCAEPSessionRevoked       = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	SETTokensRevoked            = "https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked"
	SETTokenRevoked             = "https://schemas.openid.net/secevent/oauth/event-type/token-revoked"
	SETCredentialChangeRequired = "https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required"
	SETCAEPCredentialChange     = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	SETAccountDisabled          = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	SETAccountPurged            = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	SETAccountEnabled           = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
	SETIdentifierChanged        = "https://schemas.openid.net/secevent/risc/event-type/identifier-changed"
	SETVerification             = "https://schemas.openid.net/secevent/risc/event-type/verification"
	SSFVerification             = "https://schemas.openid.net/secevent/ssf/event-type/verification"
)

// signalAction is what an event type does to the user.
type signalAction int

const (
	actNone signalAction = iota
	actRevokeSessions
	actDisable
	actEnable
	actIdentifierChanged
)

var signalActions = map[string]signalAction{
	SETSessionsRevoked:          actRevokeSessions,
	SETCAEPSessionRevoked:       actRevokeSessions,
	SETTokensRevoked:            actRevokeSessions,
	SETTokenRevoked:             actRevokeSessions,
	SETCredentialChangeRequired: actRevokeSessions,
	SETCAEPCredentialChange:     actRevokeSessions,
	SETAccountDisabled:          actDisable,
	SETAccountPurged:            actDisable,
	SETAccountEnabled:           actEnable,
	SETIdentifierChanged:        actIdentifierChanged,
}

// signalDetailPrefix starts the audit detail of every change a signal
// made; account-enabled looks for it to re-enable only a user that a
// signal disabled.
const signalDetailPrefix = "upstream signal "

// ReceiveSignal verifies a pushed SET and acts on its events. A refusal
// is an *Error of KindInvalidRequest whose Reason is the RFC 8935 error
// code (invalid_request, invalid_key, invalid_issuer, invalid_audience);
// nothing is written then. A SET is accepted once: its (iss, jti) is
// recorded before its events are acted on, and a second delivery is
// refused (invalid_request). Should the store fail after the record, the
// error is logged with the jti and the answer is 503; the transmitter's
// retry is then refused, so the operator applies the event by hand (see
// docs/events.md). Recording first is what keeps a replayed old event
// from undoing a newer one.
func (s *Service) ReceiveSignal(ctx context.Context, raw string) error {
	iss := providers.PeekSETIssuer(raw)
	if iss == "" {
		return newError(KindInvalidRequest, ReasonSETInvalidRequest, "the body is not a SET (a signed JWT with an iss)", nil)
	}
	r, ok := s.signals[iss]
	if !ok {
		return newError(KindInvalidRequest, ReasonSETInvalidIssuer, "no transmitter with this issuer is configured", nil)
	}
	set, err := r.Verifier.Verify(ctx, raw)
	if err != nil {
		return setError(err)
	}
	key := "set\x00" + set.Issuer + "\x00" + set.JTI
	now := s.now().UTC()
	// A SET already recorded is refused before anything is done again: a
	// replay must not undo a later change (an old account-enabled after
	// a newer account-disabled).
	if err := s.store.RecordCredential(ctx, key, set.IssuedAt.Add(r.Verifier.MaxAge()), now); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return newError(KindInvalidRequest, ReasonSETInvalidRequest, "this SET (iss, jti) was already received", err)
		}
		return storeError(err)
	}
	for _, ev := range set.Events {
		if err := s.actOnSignal(ctx, r, set, ev); err != nil {
			s.log.ErrorContext(ctx, "security signal: acting failed after the SET was recorded",
				"issuer", set.Issuer, "jti", set.JTI, "event", ev.Type, "err", err)
			return storeError(err)
		}
	}
	return nil
}

// setError turns a SETVerifier refusal into the RFC 8935 error code.
func setError(err error) error {
	var pe *providers.Error
	if !errors.As(err, &pe) {
		if errors.Is(err, providers.ErrUnavailable) {
			return newError(KindProviderUnavailable, ReasonProviderUnavailable, "the transmitter's keys cannot be fetched; retry later", err)
		}
		return newError(KindServer, "", "internal error", err)
	}
	code := ReasonSETInvalidRequest
	switch pe.Reason {
	case providers.ReasonSignature, providers.ReasonUnknownKey, providers.ReasonAlgorithm:
		code = ReasonSETInvalidKey
	case providers.ReasonIssuer:
		code = ReasonSETInvalidIssuer
	case providers.ReasonAudience:
		code = ReasonSETInvalidAudience
	}
	return newError(KindInvalidRequest, code, pe.Error(), err)
}

// actOnSignal applies one event. Only store failures are returned.
func (s *Service) actOnSignal(ctx context.Context, r SignalReceiver, set providers.SET, ev providers.SETEvent) error {
	act := signalActions[ev.Type]
	log := s.log.With("issuer", set.Issuer, "jti", set.JTI, "event", ev.Type)
	if ev.Type == SETVerification || ev.Type == SSFVerification {
		log.InfoContext(ctx, "security signal: verification event received", "state", ev.State)
		return nil
	}
	if act == actNone {
		log.InfoContext(ctx, "security signal: event type not acted on")
		return nil
	}
	sub := ev.Subject
	if sub == nil {
		sub = set.Subject
	}
	if sub == nil || sub.Subject == "" || !sameIssuer(sub.Issuer, set.Issuer, r.IdentityIssuer) {
		log.WarnContext(ctx, "security signal: no iss/sub subject of this transmitter; not acted on")
		return nil
	}
	ident, err := s.store.GetIdentity(ctx, r.IdentityIssuer, sub.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		log.InfoContext(ctx, "security signal: subject unknown here; not acted on")
		return nil
	}
	if err != nil {
		return err
	}
	short := ev.Type[strings.LastIndex(ev.Type, "/")+1:]
	detail := fmt.Sprintf("%s%s from %s (provider %s, jti %s)", signalDetailPrefix, short, set.Issuer, r.Provider, set.JTI)
	if ev.Reason != "" {
		detail += "; reason " + clipDetail(ev.Reason)
	}
	now := s.now().UTC()
	switch act {
	case actRevokeSessions:
		n, err := s.revokeUserSessions(ctx, ident.UserID, "", now, RevokeReasonUpstreamSignal)
		if err != nil {
			return err
		}
		s.emitSignalEvent(ctx, EventSessionRevokedAll, ident, fmt.Sprintf("%s; %d session(s) revoked", detail, n))
	case actDisable:
		var n int
		err := s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
			wasDisabled := false
			u, err := tx.ModifyUser(ctx, ident.UserID, func(u *storage.User) error {
				wasDisabled = u.Disabled
				if !u.Disabled {
					u.Disabled, u.UpdatedAt = true, now
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !wasDisabled {
				if err := emit(WebhookUserDisabled, u.ID, UserData{User: eventUser(u)}); err != nil {
					return err
				}
			}
			n, err = revokeUserSessionsIn(ctx, tx, emit, ident.UserID, "", now, RevokeReasonUpstreamSignal)
			return err
		})
		if err != nil {
			return err
		}
		s.emitSignalEvent(ctx, EventUserDisabled, ident, fmt.Sprintf("%s; %d session(s) revoked", detail, n))
	case actEnable:
		// Only a user that a signal disabled is enabled by one: a user the
		// operator disabled stays disabled until the operator says so.
		last, err := s.store.ListAudit(ctx, storage.AuditFilter{UserID: ident.UserID, Type: EventUserDisabled, Limit: 1})
		if err != nil {
			return err
		}
		if len(last) == 0 || !strings.HasPrefix(last[0].Detail, signalDetailPrefix) {
			log.InfoContext(ctx, "security signal: account-enabled for a user not disabled by a signal; left as it is", "user", ident.UserID)
			return nil
		}
		err = s.WriteWithEvents(ctx, func(tx storage.Store, emit Emit) error {
			wasDisabled := false
			u, err := tx.ModifyUser(ctx, ident.UserID, func(u *storage.User) error {
				wasDisabled = u.Disabled
				if u.Disabled {
					u.Disabled, u.UpdatedAt = false, now
				}
				return nil
			})
			if err != nil || !wasDisabled {
				return err
			}
			return emit(WebhookUserUpdated, u.ID, UserData{User: eventUser(u)})
		})
		if err != nil {
			return err
		}
		s.emitSignalEvent(ctx, EventUserEnabled, ident, detail)
	case actIdentifierChanged:
		// The identity records the new address, unverified: the user's
		// own email, and the verified-email index that linking trusts,
		// change only at the next sign-in with the provider's id_token.
		setter, ok := storage.As[storage.IdentityEmailSetter](s.store)
		email := ev.NewValue
		if ok && validNewEmail(email) {
			if err := setter.SetIdentityEmail(ctx, ident.ID, email, false); err != nil {
				return err
			}
			detail += "; identity email changed (unverified)"
		} else {
			detail += "; no usable new-value, identity unchanged"
		}
		s.emitSignalEvent(ctx, EventSignalIdentifierChanged, ident, detail)
	}
	return nil
}

// emitSignalEvent audits what a security signal changed. The matching
// webhooks (session.revoked with reason upstream_signal, user.disabled,
// user.updated) are written to the outbox with the change itself, in
// actOnSignal's transactions.
func (s *Service) emitSignalEvent(ctx context.Context, typ string, ident storage.Identity, detail string) {
	s.audit(ctx, storage.AuditEvent{Type: typ, UserID: ident.UserID, Provider: ident.Provider, Detail: detail})
}

// sameIssuer reports whether a subject's iss names the transmitter or the
// provider (a trailing slash aside: Google's RISC issuer has one, its
// id_tokens' issuer does not).
func sameIssuer(subjectIss, setIss, identityIss string) bool {
	if subjectIss == "" {
		return false
	}
	t := strings.TrimSuffix(subjectIss, "/")
	return t == strings.TrimSuffix(setIss, "/") || t == strings.TrimSuffix(identityIss, "/")
}

// clipDetail bounds a transmitter's free text in the audit log.
func clipDetail(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
	}
	return s
}

// validNewEmail accepts an identifier-changed new-value as an identity's
// email: an address of sane length without spaces or control characters.
func validNewEmail(e string) bool {
	return len(e) >= 3 && len(e) <= 320 && strings.Count(e, "@") == 1 &&
		!strings.ContainsFunc(e, func(r rune) bool { return r <= ' ' || r == 0x7f })
}
