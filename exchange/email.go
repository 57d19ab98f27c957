package exchange

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/authex/authex/mail"
	"github.com/authex/authex/storage"
)

// EmailConfig turns on the features that send mail: email verification and
// password reset (docs/accounts.md).
type EmailConfig struct {
	Sender    mail.Sender
	Templates *mail.Templates
	// VerifyURL and ResetURL are the links mailed, pages of the app: the
	// first {token} in each is replaced by the token, the first {uid} by
	// the user id in base64url (dj-rest-auth's uid).
	VerifyURL string
	ResetURL  string
	VerifyTTL time.Duration // 0: DefaultVerifyTTL
	ResetTTL  time.Duration // 0: DefaultResetTTL
	// Mails allowed at once per recipient address and per client IP,
	// each refilled in full over Window.
	AddressBurst int
	IPBurst      int
	Window       time.Duration
	Retry        mail.Retry
	QueueSize    int // 0: 1000
	Workers      int // 0: 2
}

// Defaults of EmailConfig.
const (
	DefaultVerifyTTL = 24 * time.Hour
	DefaultResetTTL  = 30 * time.Minute
)

// emailer is the running mail side of the service.
type emailer struct {
	cfg   EmailConfig
	queue *mail.Queue
	addr  limiter // per recipient (EmailKey)
	ip    limiter // per client IP (clientKey)
	// lookups bounds the forgot-password lookups running after their
	// answer was sent (ForgotPassword answers before it looks anything up).
	lookups chan struct{}
}

// mailMeta is what an audit of a send needs; never the token.
type mailMeta struct {
	userID, kind string
}

func (s *Service) newEmailer(cfg EmailConfig) (*emailer, error) {
	if cfg.Sender == nil || cfg.Templates == nil {
		return nil, errors.New("email: a sender and templates are required")
	}
	if cfg.VerifyTTL <= 0 {
		cfg.VerifyTTL = DefaultVerifyTTL
	}
	if cfg.ResetTTL <= 0 {
		cfg.ResetTTL = DefaultResetTTL
	}
	if cfg.AddressBurst <= 0 || cfg.IPBurst <= 0 || cfg.Window <= 0 {
		return nil, errors.New("email throttle: bursts and window must be positive")
	}
	if cfg.Retry.Attempts <= 0 {
		cfg.Retry = mail.DefaultRetry
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	e := &emailer{cfg: cfg, lookups: make(chan struct{}, 16),
		addr: newLimiter(s.store, "email-address", cfg.AddressBurst, cfg.Window, 0, s.log),
		ip:   newLimiter(s.store, "email-ip", cfg.IPBurst, cfg.Window, 0, s.log)}
	e.queue = mail.NewQueue(cfg.Sender, cfg.QueueSize, cfg.Workers, cfg.Retry, s.reportMail)
	return e, nil
}

// EmailEnabled reports whether the email section is configured.
func (s *Service) EmailEnabled() bool { return s.email != nil }

// CloseEmail stops the mail queue, waiting until ctx ends for what is
// queued to be sent (cmd/authex calls it while draining).
func (s *Service) CloseEmail(ctx context.Context) error {
	if s.email == nil {
		return nil
	}
	return s.email.queue.Close(ctx)
}

func emailOff() error {
	return newError(KindNotImplemented, ReasonEmailNotConfigured,
		"this server sends no email (no email section in its configuration)", nil)
}

func invalidEmailToken() error {
	return newError(KindInvalidRequest, ReasonInvalidEmailToken, "the link is invalid, expired or already used", nil)
}

// reportMail audits every attempt of the queue (never the token: the
// message is not in the event).
func (s *Service) reportMail(o mail.Outcome) {
	m, _ := o.Job.Meta.(mailMeta)
	ev := storage.AuditEvent{Type: EventEmailSent, UserID: m.userID,
		Detail: fmt.Sprintf("%s, attempt %d", m.kind, o.Attempt)}
	ctx := context.Background()
	switch {
	case o.Err == nil:
	case o.Final:
		ev.Type = EventEmailFailed
		ev.Detail += ", given up: " + mailErrText(o.Err)
		s.log.Error("mail given up", "kind", m.kind, "user_id", m.userID, "attempt", o.Attempt, "err", o.Err)
	default:
		ev.Type = EventEmailRetrying
		ev.Detail += ", will retry: " + mailErrText(o.Err)
		s.log.Warn("mail send failed; retrying", "kind", m.kind, "user_id", m.userID, "attempt", o.Attempt, "err", o.Err)
	}
	s.audit(ctx, ev)
}

// mailErrText is an error for the audit log, bounded.
func mailErrText(err error) string {
	t := err.Error()
	if len(t) > 200 {
		t = t[:200]
	}
	return t
}

// link fills a link template.
func link(tmpl, token, userID string) string {
	l := strings.Replace(tmpl, "{token}", url.QueryEscape(token), 1)
	return strings.Replace(l, "{uid}", base64.RawURLEncoding.EncodeToString([]byte(userID)), 1)
}

// UIDOf is the {uid} of a link: the user id in base64url.
func UIDOf(userID string) string { return base64.RawURLEncoding.EncodeToString([]byte(userID)) }

// mailToken stores a new token for u and queues its message. The store
// write is its own (no transaction is held), the send happens later on
// the queue. A recipient past its budget gets nothing (silently: the
// caller's answer must not change).
func (s *Service) mailToken(ctx context.Context, u storage.User, purpose, binding string) error {
	e := s.email
	key, _ := storage.EmailKey(u.Email)
	if wait, err := e.addr.take(ctx, key, s.now()); err != nil || wait > 0 {
		if err != nil {
			return err
		}
		s.audit(ctx, storage.AuditEvent{Type: EventEmailThrottled, UserID: u.ID, Detail: purpose})
		return nil
	}
	et, ok := storage.As[storage.EmailTokens](s.store)
	if !ok {
		return newError(KindNotImplemented, ReasonEmailNotConfigured, "the store cannot keep email tokens", nil)
	}
	ttl, tmplURL, kind := e.cfg.VerifyTTL, e.cfg.VerifyURL, mail.KindVerifyEmail
	if purpose == storage.TokenPurposeResetPassword {
		ttl, tmplURL, kind = e.cfg.ResetTTL, e.cfg.ResetURL, mail.KindResetPassword
	}
	token, hash := newEmailToken(purpose)
	now := s.now().UTC()
	if err := et.CreateEmailToken(ctx, storage.EmailToken{Hash: hash, Purpose: purpose, UserID: u.ID, Email: u.Email,
		Binding: binding, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		return storeError(err)
	}
	msg, err := e.cfg.Templates.Render(kind, u.Email, mail.Data{Email: u.Email, Name: u.Name,
		Link: link(tmplURL, token, u.ID), Expires: ttl.String()})
	if err != nil {
		return AsError(err)
	}
	if err := e.queue.Enqueue(mail.Job{Message: msg, Meta: mailMeta{userID: u.ID, kind: kind}}); err != nil {
		s.audit(ctx, storage.AuditEvent{Type: EventEmailFailed, UserID: u.ID, Detail: kind + ", not queued: " + err.Error()})
		return newError(KindBusy, ReasonEmailQueueFull, "too much mail waiting to be sent; try again later", err)
	}
	return nil
}

// takeIP spends one of the client IP's mail budget.
func (s *Service) takeMailIP(ctx context.Context, ip string) error {
	wait, err := s.email.ip.take(ctx, clientKey(ip), s.now())
	if err != nil {
		return err
	}
	if wait > 0 {
		return rateLimited(wait, "too many emails asked for from this address; try again later")
	}
	return nil
}

// SendVerification mails the caller a link that verifies their email.
func (s *Service) SendVerification(ctx context.Context, p *Principal, ip string) error {
	if s.email == nil {
		return emailOff()
	}
	u := p.User
	switch {
	case u.Email == "":
		return newError(KindInvalidRequest, ReasonNoEmail, "the account has no email to verify", nil)
	case u.EmailVerified:
		return newError(KindConflict, ReasonEmailAlreadyVerified, "the email is already verified", nil)
	}
	if err := s.takeMailIP(ctx, ip); err != nil {
		return err
	}
	return s.mailToken(ctx, u, storage.TokenPurposeVerifyEmail, "")
}

// sendVerificationAfterRegister is the mail at sign-up: best effort, it
// never fails the registration.
func (s *Service) sendVerificationAfterRegister(ctx context.Context, u storage.User) {
	if s.email == nil {
		return
	}
	if err := s.mailToken(ctx, u, storage.TokenPurposeVerifyEmail, ""); err != nil {
		s.log.WarnContext(ctx, "verification mail at sign-up not sent", "user_id", u.ID, "err", err)
	}
}

// spendToken checks a token's shape and purpose and spends it.
func (s *Service) spendToken(ctx context.Context, token, purpose string) (storage.EmailToken, error) {
	p, hash, err := parseEmailToken(token)
	if err != nil || p != purpose {
		return storage.EmailToken{}, invalidEmailToken()
	}
	et, ok := storage.As[storage.EmailTokens](s.store)
	if !ok {
		return storage.EmailToken{}, invalidEmailToken()
	}
	t, err := et.SpendEmailToken(ctx, hash, s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return storage.EmailToken{}, invalidEmailToken()
	}
	if err != nil {
		return storage.EmailToken{}, storeError(err)
	}
	return t, nil
}

// VerifyEmail spends a verification token and marks the email verified:
// only then is it in the verified-email index. The password provider
// vouches for it (EmailVerifiedBy "password"), which is never trusted for
// email: no identity is ever linked into the account automatically
// because of it (docs/accounts.md).
func (s *Service) VerifyEmail(ctx context.Context, token string) (storage.User, error) {
	if s.email == nil {
		return storage.User{}, emailOff()
	}
	if token == "" {
		return storage.User{}, newError(KindInvalidRequest, ReasonMissingToken, "token is required", nil)
	}
	t, err := s.spendToken(ctx, token, storage.TokenPurposeVerifyEmail)
	if err != nil {
		return storage.User{}, err
	}
	u, err := s.store.ModifyUser(ctx, t.UserID, func(u *storage.User) error {
		if !storage.SameEmail(u.Email, t.Email) {
			return errSkip // the email changed since the link was sent
		}
		if u.EmailVerified {
			return nil
		}
		u.EmailVerified, u.EmailVerifiedBy, u.UpdatedAt = true, PasswordProvider, s.now().UTC()
		return nil
	})
	switch {
	case errors.Is(err, errSkip), errors.Is(err, storage.ErrNotFound):
		return storage.User{}, invalidEmailToken()
	case errors.Is(err, storage.ErrEmailTaken):
		return storage.User{}, emailTaken()
	case err != nil:
		return storage.User{}, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventUserEmailVerified, UserID: u.ID, Provider: PasswordProvider,
		Detail: "email verified by a mailed link"})
	return u, nil
}

// ForgotPassword answers at once, the same for every syntactically valid
// email: the lookup and the mail happen after the answer, so neither the
// answer nor its timing says whether the account exists. Only the client
// IP's budget (the same for every address) can refuse.
func (s *Service) ForgotPassword(ctx context.Context, email, ip string) error {
	if s.email == nil {
		return emailOff()
	}
	if s.pw == nil {
		return passwordsOff()
	}
	email, err := normalizeEmail(email)
	if err != nil {
		return err
	}
	if err := s.takeMailIP(ctx, ip); err != nil {
		return err
	}
	select {
	case s.email.lookups <- struct{}{}:
	default:
		s.log.WarnContext(ctx, "password reset dropped: too many lookups in flight")
		return nil
	}
	go func() {
		defer func() { <-s.email.lookups }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		s.forgotLookup(ctx, email)
	}()
	return nil
}

func (s *Service) forgotLookup(ctx context.Context, email string) {
	u, err := s.store.GetUserByPasswordEmail(ctx, email)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return
	case err != nil:
		s.log.ErrorContext(ctx, "password reset lookup", "err", err)
		return
	case u.Disabled || u.PasswordHash == "":
		return
	}
	if err := s.mailToken(ctx, u, storage.TokenPurposeResetPassword, passwordFingerprint(u.PasswordHash)); err != nil {
		s.log.ErrorContext(ctx, "password reset mail", "user_id", u.ID, "err", err)
	}
}

// ResetRequest sets a password with a mailed reset token.
type ResetRequest struct {
	Token    string
	Password string
	// UID, when set (dj-rest-auth's uid), must name the token's user.
	UID string
}

// ResetPassword checks the token (without spending it) and the new
// password, hashes it, then spends the token and writes the hash only if
// the password is still the one the token was issued under. Every session
// of the user is revoked. A refused token writes nothing; a refused
// password keeps the token usable.
func (s *Service) ResetPassword(ctx context.Context, req ResetRequest) (int, error) {
	if s.email == nil {
		return 0, emailOff()
	}
	if s.pw == nil {
		return 0, passwordsOff()
	}
	if req.Token == "" {
		return 0, newError(KindInvalidRequest, ReasonMissingToken, "token is required", nil)
	}
	if req.Password == "" {
		return 0, newError(KindInvalidRequest, ReasonMissingPassword, "password is required", nil)
	}
	purpose, hash, err := parseEmailToken(req.Token)
	if err != nil || purpose != storage.TokenPurposeResetPassword {
		return 0, invalidEmailToken()
	}
	et, ok := storage.As[storage.EmailTokens](s.store)
	if !ok {
		return 0, invalidEmailToken()
	}
	t, err := et.GetEmailToken(ctx, hash, s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return 0, invalidEmailToken()
	} else if err != nil {
		return 0, storeError(err)
	}
	if req.UID != "" && subtle.ConstantTimeCompare([]byte(req.UID), []byte(UIDOf(t.UserID))) != 1 {
		return 0, invalidEmailToken()
	}
	u, err := s.store.GetUser(ctx, t.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, invalidEmailToken()
	} else if err != nil {
		return 0, storeError(err)
	}
	bound := func(u *storage.User) bool {
		return u.PasswordHash != "" && storage.SameEmail(u.Email, t.Email) &&
			subtle.ConstantTimeCompare([]byte(passwordFingerprint(u.PasswordHash)), []byte(t.Binding)) == 1
	}
	if !bound(&u) {
		return 0, invalidEmailToken()
	}
	if u.Disabled {
		return 0, disabledError()
	}
	if err := s.CheckPassword(req.Password, u.Email); err != nil {
		return 0, err
	}
	newHash, err := s.pw.hash(ctx, req.Password)
	if err != nil {
		return 0, err
	}
	if _, err := s.spendToken(ctx, req.Token, storage.TokenPurposeResetPassword); err != nil {
		return 0, err // a concurrent reset spent it first
	}
	now := s.now().UTC()
	u, err = s.store.ModifyUser(ctx, t.UserID, func(u *storage.User) error {
		if !bound(u) {
			return errPasswordChanged
		}
		u.PasswordHash, u.UpdatedAt = newHash, now
		return nil
	})
	switch {
	case errors.Is(err, errPasswordChanged), errors.Is(err, storage.ErrNotFound):
		return 0, invalidEmailToken()
	case err != nil:
		return 0, storeError(err)
	}
	n, err := s.revokeUserSessions(ctx, u.ID, "", now, RevokeReasonPasswordReset)
	if err != nil {
		return 0, storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventUserPasswordReset, UserID: u.ID, Provider: PasswordProvider,
		Detail: fmt.Sprintf("password reset by a mailed link; %d sessions revoked", n)})
	return n, nil
}
