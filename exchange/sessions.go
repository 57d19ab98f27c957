package exchange

import (
	"context"
	"errors"

	"github.com/authex/authex/storage"
)

// ListLiveSessions returns the user's sessions that can still refresh,
// newest first.
func (s *Service) ListLiveSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	all, err := s.store.ListSessions(ctx, userID)
	if err != nil {
		return nil, storeError(err)
	}
	now := s.now()
	live := make([]storage.Session, 0, len(all))
	for _, sess := range all {
		if !sess.Revoked() && !sess.Expired(now) {
			live = append(live, sess)
		}
	}
	return live, nil
}

// RevokeOwnSession revokes one of the user's sessions. A session that does
// not exist or belongs to someone else is not_found: the answer must not
// tell a caller that another user's session id exists.
func (s *Service) RevokeOwnSession(ctx context.Context, userID, sessionID string) error {
	sess, err := s.store.GetSession(ctx, sessionID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && sess.UserID != userID) {
		return newError(KindNotFound, ReasonNotFound, "no session of yours has that id", nil)
	}
	if err != nil {
		return storeError(err)
	}
	if sess.Revoked() {
		return nil
	}
	if err := s.revokeSession(ctx, sessionID, s.now().UTC(), RevokeReasonUserRevoked); err != nil {
		return storeError(err)
	}
	s.audit(ctx, storage.AuditEvent{Type: EventSessionRevoked, UserID: userID, SessionID: sessionID, Detail: "by the user"})
	return nil
}
