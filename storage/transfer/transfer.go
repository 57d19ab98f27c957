// Package transfer copies every record of one storage.Store to another as a
// stream of JSON lines (`authex export`, `authex import`), so a deployment
// can move from bbolt to PostgreSQL, or back, and keep its users, their
// sessions (refresh tokens keep working: the refresh MAC secret moves too),
// its signing keys (access tokens keep verifying) and its audit log.
//
// The stream is one JSON object per line: a header, then secrets, signing
// keys, each user with its identities followed by its sessions, audit
// events, and an "end" line with the counts, so a truncated dump is refused.
// Import reads and checks the whole stream before it writes anything, and
// writes it all or nothing (see Stream.Import).
// Signing keys and secrets travel as stored: sealed with the key-encryption
// key (exchange.SealKeyMaterial runs before `authex export`). It still holds
// password hashes and personal data: treat it like the database itself.
//
// It reads and writes through storage.Store (plus storage.Exporter for the
// secrets) and never imports a backend.
package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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
// When s offers storage.Snapshotter (PostgreSQL) every record is read from
// one consistent snapshot, so a live export is a copy of one moment;
// otherwise (bbolt) the reads are separate, and records written while the
// export runs may or may not be in it: stop the instances first.
func Export(ctx context.Context, s storage.Store, w io.Writer) (Counts, error) {
	sn, ok := storage.As[storage.Snapshotter](s)
	if !ok {
		return export(ctx, s, w)
	}
	var c Counts
	err := sn.Snapshot(ctx, func(view storage.Store) error {
		var err error
		c, err = export(ctx, view, w)
		return err
	})
	return c, err
}

func export(ctx context.Context, s storage.Store, w io.Writer) (Counts, error) {
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
// (ErrNotEmpty otherwise). It is Read followed by Stream.Import: the whole
// stream is read and checked before anything is written, and a bad stream
// (truncated, malformed, counts differing from its end line) leaves s
// untouched. See Stream.Import for a store that fails half way.
func Import(ctx context.Context, s storage.Store, r io.Reader) (Counts, error) {
	empty, err := Empty(ctx, s)
	if err != nil {
		return Counts{}, err
	}
	if !empty {
		return Counts{}, ErrNotEmpty
	}
	st, err := Read(r)
	if err != nil {
		return Counts{}, err
	}
	defer st.Close()
	return st.Import(ctx, s)
}

// Stream is an export read whole and checked by Read, spooled to a
// temporary file (mode 0600, removed by Close) until it is imported.
type Stream struct {
	f      *os.File
	counts Counts
}

// Counts is what the stream holds: the counts of its end line, plus the
// users (without any identity) and sessions an import will skip.
func (st *Stream) Counts() Counts { return st.counts }

// Close removes the spooled copy.
func (st *Stream) Close() error {
	err := st.f.Close()
	if rerr := os.Remove(st.f.Name()); err == nil {
		err = rerr
	}
	return err
}

// Read reads all of r and checks it before anything is written anywhere:
// the header's format and version, every line decoded strictly (one JSON
// object, no unknown field, the payload its kind names and no other, the
// ids a store needs, no user twice, each session after its user's line),
// and the end line, which must be last and whose counts must equal what
// was read. Errors name the line (counted from 1). The stream is spooled
// to a temporary file in os.TempDir() (it holds secrets: mode 0600, and
// removed again on error or by Close).
func Read(r io.Reader) (_ *Stream, err error) {
	f, err := os.CreateTemp("", "authex-import-*.jsonl")
	if err != nil {
		return nil, fmt.Errorf("transfer: spool the stream: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(f, 64<<10)
	v := validator{users: map[string]bool{}}
	n, ended := 0, false
	for {
		raw, rerr := br.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, fmt.Errorf("transfer: read line %d: %w", n+1, rerr)
		}
		if len(raw) == 0 && rerr != nil {
			break
		}
		n++
		if ended {
			return nil, fmt.Errorf("transfer: line %d: data after the end line", n)
		}
		l, err := decodeLine(raw)
		if err != nil {
			return nil, fmt.Errorf("transfer: line %d: %w", n, err)
		}
		if n == 1 {
			if l.Kind != kindHeader || l.Format != Format {
				return nil, fmt.Errorf("transfer: line 1: not an %s stream (no header)", Format)
			}
			if l.Version != Version {
				return nil, fmt.Errorf("transfer: line 1: stream version %d, this authex reads version %d", l.Version, Version)
			}
		} else if err := v.check(l); err != nil {
			return nil, fmt.Errorf("transfer: line %d (%s): %w", n, l.Kind, err)
		}
		ended = l.Kind == kindEnd
		if _, err := bw.Write(raw); err != nil {
			return nil, fmt.Errorf("transfer: spool the stream: %w", err)
		}
		if raw[len(raw)-1] != '\n' {
			bw.WriteByte('\n')
		}
		if rerr != nil {
			break
		}
	}
	if n == 0 {
		return nil, errors.New("transfer: the stream is empty")
	}
	if !ended {
		return nil, fmt.Errorf("transfer: the stream ends at line %d without its end line (truncated?)", n)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("transfer: spool the stream: %w", err)
	}
	return &Stream{f: f, counts: v.counts}, nil
}

// decodeLine decodes one line strictly: exactly one JSON object, no
// unknown field.
func decodeLine(raw []byte) (line, error) {
	var l line
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		if errors.Is(err, io.EOF) {
			return l, errors.New("empty line")
		}
		return l, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return l, errors.New("more than one JSON value on the line")
	}
	return l, nil
}

// validator checks the lines after the header, in order.
type validator struct {
	counts Counts
	users  map[string]bool // user id -> has an identity (else skipped)
}

func (v *validator) check(l line) error {
	payloads := 0
	for _, set := range []bool{l.Secret != nil, l.SigningKey != nil, l.User != nil, l.Session != nil, l.Audit != nil, l.Counts != nil} {
		if set {
			payloads++
		}
	}
	if payloads > 1 || l.Identities != nil && l.Kind != kindUser || l.Format != "" || l.Version != 0 || l.ExportedAt != nil {
		return errors.New("fields of another kind of line")
	}
	switch l.Kind {
	case kindSecret:
		if l.Secret == nil || l.Secret.Name == "" {
			return errors.New("no secret name")
		}
		v.counts.Secrets++
	case kindSigningKey:
		if l.SigningKey == nil || l.SigningKey.ID == "" || l.SigningKey.Algorithm == "" || len(l.SigningKey.PrivateKey) == 0 {
			return errors.New("a signing key needs an id, an algorithm and a private key")
		}
		v.counts.SigningKeys++
	case kindUser:
		if l.User == nil || l.User.ID == "" {
			return errors.New("no user id")
		}
		if _, dup := v.users[l.User.ID]; dup {
			return fmt.Errorf("user %s appears twice", l.User.ID)
		}
		for _, id := range l.Identities {
			if id.ID == "" || id.Issuer == "" || id.Subject == "" {
				return errors.New("an identity needs an id, an issuer and a subject")
			}
			if id.UserID != l.User.ID {
				return fmt.Errorf("identity %s belongs to user %s, not %s", id.ID, id.UserID, l.User.ID)
			}
		}
		v.users[l.User.ID] = len(l.Identities) > 0
		v.counts.Users++
		v.counts.Identities += len(l.Identities)
		if len(l.Identities) == 0 {
			v.counts.SkippedUsers++
		}
	case kindSession:
		if l.Session == nil || l.Session.ID == "" {
			return errors.New("no session id")
		}
		hasIdentity, ok := v.users[l.Session.UserID]
		if !ok {
			return fmt.Errorf("session %s of user %q, whom no earlier line holds", l.Session.ID, l.Session.UserID)
		}
		v.counts.Sessions++
		if !hasIdentity {
			v.counts.SkippedSessions++
		}
	case kindAudit:
		if l.Audit == nil {
			return errors.New("no audit event")
		}
		v.counts.AuditEvents++
	case kindEnd:
		if l.Counts == nil {
			return errors.New("no counts")
		}
		got, want := v.counts, *l.Counts
		got.SkippedUsers, got.SkippedSessions = 0, 0
		want.SkippedUsers, want.SkippedSessions = 0, 0
		if got != want {
			return fmt.Errorf("read %s but the end line says %s", got, want)
		}
	case kindHeader:
		return errors.New("a second header")
	default:
		return fmt.Errorf("unknown line kind %q", l.Kind)
	}
	return nil
}

// String is the counts for an error message.
func (c Counts) String() string {
	return fmt.Sprintf("%d users, %d identities, %d sessions, %d signing keys, %d secrets, %d audit events",
		c.Users, c.Identities, c.Sessions, c.SigningKeys, c.Secrets, c.AuditEvents)
}

// Import writes the stream into s, which must be empty (ErrNotEmpty
// otherwise, before anything is written), and returns what it wrote.
//
// When s offers storage.Transactor (both backends do) every record is
// written in one transaction: a store error half way (a constraint, a lost
// connection) leaves s as empty as it was. A store without it gets the
// records one by one, and an error leaves part of them in s: write into a
// new store and discard it on error. (`authex import` on bbolt also writes
// a temporary file and renames it into place only on success, so the
// service never opens a file half imported: bolt.ImportFile.)
func (st *Stream) Import(ctx context.Context, s storage.Store) (Counts, error) {
	tr, ok := storage.As[storage.Transactor](s)
	if !ok {
		return st.write(ctx, s)
	}
	var c Counts
	err := tr.InTx(ctx, func(tx storage.Store) error {
		var err error
		c, err = st.write(ctx, tx)
		return err
	})
	if err != nil {
		return Counts{}, err
	}
	return c, nil
}

func (st *Stream) write(ctx context.Context, s storage.Store) (Counts, error) {
	var c Counts
	empty, err := Empty(ctx, s)
	if err != nil {
		return c, err
	}
	if !empty {
		return c, ErrNotEmpty
	}
	if _, err := st.f.Seek(0, io.SeekStart); err != nil {
		return c, fmt.Errorf("transfer: read the spooled stream: %w", err)
	}
	br := bufio.NewReaderSize(st.f, 64<<10)
	skipped := map[string]bool{} // users skipped, whose sessions go too
	for n := 1; ; n++ {
		raw, err := br.ReadBytes('\n')
		if err != nil {
			// Read checked the end line; the spool cannot end before it.
			return c, fmt.Errorf("transfer: read the spooled stream at line %d: %w", n, err)
		}
		l, err := decodeLine(raw)
		if err != nil {
			return c, fmt.Errorf("transfer: spooled line %d: %w", n, err)
		}
		switch l.Kind {
		case kindHeader:
			continue
		case kindEnd:
			return c, nil
		}
		if err := importLine(ctx, s, l, &c, skipped); err != nil {
			return c, fmt.Errorf("transfer: line %d (%s): %w", n, l.Kind, err)
		}
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
	default:
		return fmt.Errorf("unknown or empty line kind %q", l.Kind)
	}
	return nil
}
