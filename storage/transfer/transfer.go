// Package transfer copies every record of one storage.Store to another as a
// stream of JSON lines (`authex export`, `authex import`), so a deployment
// can move from bbolt to PostgreSQL, or back, and keep its users, their
// sessions (refresh tokens keep working: the refresh MAC secret moves too),
// its signing keys (access tokens keep verifying) and its audit log.
//
// The stream is one JSON object per line: a header, then secrets, signing
// keys, each user with its identities followed by its sessions, audit
// events, and an "end" line with the counts, so a truncated dump is refused.
// It holds private keys, secrets and password hashes: treat it like the
// database itself.
//
// It reads and writes through storage.Store (plus storage.Exporter for the
// secrets) and never imports a backend.
package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/authex/authex/storage"
)

// Format and Version name the stream's header.
const (
	Format  = "authex-export"
	Version = 1
)

// ErrNotEmpty: Import writes only into a store that holds nothing.
var ErrNotEmpty = errors.New("transfer: the target store is not empty")

// Counts says how many records a stream holds or an import wrote.
type Counts struct {
	Users       int `json:"users"`
	Identities  int `json:"identities"`
	Sessions    int `json:"sessions"`
	SigningKeys int `json:"signing_keys"`
	Secrets     int `json:"secrets"`
	AuditEvents int `json:"audit_events"`
	// Skipped counts users without any identity (the Store cannot create
	// one) and their sessions; only Import sets it.
	SkippedUsers    int `json:"skipped_users,omitempty"`
	SkippedSessions int `json:"skipped_sessions,omitempty"`
}

// line is one line of the stream; Kind says which field is set.
type line struct {
	Kind       string      `json:"kind"`
	Format     string      `json:"format,omitempty"`
	Version    int         `json:"version,omitempty"`
	ExportedAt *time.Time  `json:"exported_at,omitempty"`
	Secret     *secret     `json:"secret,omitempty"`
	SigningKey *signingKey `json:"signing_key,omitempty"`
	User       *user       `json:"user,omitempty"`
	Identities []identity  `json:"identities,omitempty"`
	Session    *session    `json:"session,omitempty"`
	Audit      *auditEvent `json:"audit,omitempty"`
	Counts     *Counts     `json:"counts,omitempty"`
}

const (
	kindHeader     = "header"
	kindSecret     = "secret"
	kindSigningKey = "signing_key"
	kindUser       = "user"
	kindSession    = "session"
	kindAudit      = "audit"
	kindEnd        = "end"
)

// pageSize is how many users Export reads at a time.
const pageSize = 500

// Export writes every record of s to w and returns the counts it wrote.
func Export(ctx context.Context, s storage.Store, w io.Writer) (Counts, error) {
	var c Counts
	ex, ok := s.(storage.Exporter)
	if !ok {
		return c, errors.New("transfer: this store cannot list its secrets (storage.Exporter)")
	}
	enc := json.NewEncoder(w)
	now := time.Now().UTC()
	if err := enc.Encode(line{Kind: kindHeader, Format: Format, Version: Version, ExportedAt: &now}); err != nil {
		return c, err
	}
	secrets, err := ex.ListSecrets(ctx)
	if err != nil {
		return c, fmt.Errorf("list secrets: %w", err)
	}
	for _, sec := range secrets {
		if err := enc.Encode(line{Kind: kindSecret, Secret: &secret{Name: sec.Name, Value: sec.Value}}); err != nil {
			return c, err
		}
		c.Secrets++
	}
	keys, err := s.ListSigningKeys(ctx)
	if err != nil {
		return c, fmt.Errorf("list signing keys: %w", err)
	}
	for _, k := range keys {
		if err := enc.Encode(line{Kind: kindSigningKey, SigningKey: fromSigningKey(k)}); err != nil {
			return c, err
		}
		c.SigningKeys++
	}
	after := ""
	for {
		users, err := s.ListUsers(ctx, storage.UserFilter{After: after, Limit: pageSize})
		if err != nil {
			return c, fmt.Errorf("list users: %w", err)
		}
		for _, u := range users {
			ids, err := s.ListIdentities(ctx, u.ID)
			if err != nil {
				return c, fmt.Errorf("list identities of %s: %w", u.ID, err)
			}
			l := line{Kind: kindUser, User: fromUser(u)}
			for _, id := range ids {
				l.Identities = append(l.Identities, *fromIdentity(id))
			}
			if err := enc.Encode(l); err != nil {
				return c, err
			}
			c.Users++
			c.Identities += len(ids)
			sessions, err := s.ListSessions(ctx, u.ID)
			if err != nil {
				return c, fmt.Errorf("list sessions of %s: %w", u.ID, err)
			}
			for _, sess := range sessions {
				if err := enc.Encode(line{Kind: kindSession, Session: fromSession(sess)}); err != nil {
					return c, err
				}
				c.Sessions++
			}
		}
		if len(users) < pageSize {
			break
		}
		after = users[len(users)-1].ID
	}
	// The audit log is read whole: the Store pages it by time only, and
	// events may share a time.
	events, err := s.ListAudit(ctx, storage.AuditFilter{})
	if err != nil {
		return c, fmt.Errorf("list audit events: %w", err)
	}
	for i := len(events) - 1; i >= 0; i-- { // oldest first
		if err := enc.Encode(line{Kind: kindAudit, Audit: fromAudit(events[i])}); err != nil {
			return c, err
		}
		c.AuditEvents++
	}
	counts := c
	return c, enc.Encode(line{Kind: kindEnd, Counts: &counts})
}

// Empty reports whether s holds no user, key, secret or audit event.
func Empty(ctx context.Context, s storage.Store) (bool, error) {
	n, err := s.CountUsers(ctx)
	if err != nil || n > 0 {
		return false, err
	}
	keys, err := s.ListSigningKeys(ctx)
	if err != nil || len(keys) > 0 {
		return false, err
	}
	if ex, ok := s.(storage.Exporter); ok {
		secrets, err := ex.ListSecrets(ctx)
		if err != nil || len(secrets) > 0 {
			return false, err
		}
	}
	events, err := s.ListAudit(ctx, storage.AuditFilter{Limit: 1})
	if err != nil || len(events) > 0 {
		return false, err
	}
	return true, nil
}

// Import reads a stream written by Export into s, which must be empty
// (ErrNotEmpty otherwise, before anything is written). It refuses a stream
// whose end line is missing or whose counts differ from what it read. On
// an error part of the stream may have been written: empty the target and
// run it again.
func Import(ctx context.Context, s storage.Store, r io.Reader) (Counts, error) {
	var c Counts
	empty, err := Empty(ctx, s)
	if err != nil {
		return c, err
	}
	if !empty {
		return c, ErrNotEmpty
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var l line
	if err := dec.Decode(&l); err != nil {
		return c, fmt.Errorf("transfer: read header: %w", err)
	}
	if l.Kind != kindHeader || l.Format != Format {
		return c, fmt.Errorf("transfer: not an %s stream", Format)
	}
	if l.Version != Version {
		return c, fmt.Errorf("transfer: stream version %d, this authex reads version %d", l.Version, Version)
	}
	skipped := map[string]bool{} // users skipped, whose sessions go too
	for n := 2; ; n++ {
		l = line{}
		if err := dec.Decode(&l); err != nil {
			if errors.Is(err, io.EOF) {
				return c, errors.New("transfer: the stream ends without its end line (truncated?)")
			}
			return c, fmt.Errorf("transfer: line %d: %w", n, err)
		}
		if err := importLine(ctx, s, l, &c, skipped); err != nil {
			return c, fmt.Errorf("transfer: line %d (%s): %w", n, l.Kind, err)
		}
		if l.Kind != kindEnd {
			continue
		}
		got, want := c, *l.Counts
		got.SkippedUsers, got.SkippedSessions = 0, 0
		got.Users += c.SkippedUsers
		got.Sessions += c.SkippedSessions
		if got != want {
			return c, fmt.Errorf("transfer: read %+v but the end line says %+v", got, want)
		}
		return c, nil
	}
}

func importLine(ctx context.Context, s storage.Store, l line, c *Counts, skipped map[string]bool) error {
	switch {
	case l.Kind == kindSecret && l.Secret != nil:
		got, err := s.EnsureSecret(ctx, l.Secret.Name, l.Secret.Value)
		if err != nil {
			return err
		}
		if string(got) != string(l.Secret.Value) {
			return fmt.Errorf("secret %q already held another value", l.Secret.Name)
		}
		c.Secrets++
	case l.Kind == kindSigningKey && l.SigningKey != nil:
		if err := s.CreateSigningKey(ctx, l.SigningKey.record()); err != nil {
			return err
		}
		c.SigningKeys++
	case l.Kind == kindUser && l.User != nil:
		u := l.User.record()
		if len(l.Identities) == 0 {
			skipped[u.ID] = true
			c.SkippedUsers++
			return nil
		}
		if err := s.CreateUser(ctx, u, l.Identities[0].record()); err != nil {
			return err
		}
		for _, id := range l.Identities[1:] {
			if err := s.AddIdentity(ctx, id.record()); err != nil {
				return err
			}
		}
		c.Users++
		c.Identities += len(l.Identities)
	case l.Kind == kindSession && l.Session != nil:
		if skipped[l.Session.UserID] {
			c.SkippedSessions++
			return nil
		}
		if err := s.CreateSession(ctx, l.Session.record()); err != nil {
			return err
		}
		c.Sessions++
	case l.Kind == kindAudit && l.Audit != nil:
		if err := s.AppendAudit(ctx, l.Audit.record()); err != nil {
			return err
		}
		c.AuditEvents++
	case l.Kind == kindEnd && l.Counts != nil:
	default:
		return fmt.Errorf("unknown or empty line kind %q", l.Kind)
	}
	return nil
}
