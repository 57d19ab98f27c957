package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/authex/authex/storage"
)

// Records are stored in a small binary encoding rather than JSON: the hot
// paths (GetIdentity, GetSession, RotateSession) decode and re-encode a record
// on every call, and this is several times cheaper than encoding/json and
// keeps time.Time exact. A record is its format byte followed by its fields
// in declaration order:
//
//	string, []byte  uvarint length, then the bytes
//	[]string        uvarint count, then each string
//	bool            one byte, 0 or 1
//	uint64          uvarint
//	time.Time       one byte 0 for the zero time, else 1, varint Unix
//	                seconds, uvarint nanoseconds (always read back in UTC)
//
// Adding a field means a new format byte, decoding both, and a schema
// migration that rewrites old records; never reorder fields of format 1.
//
// It stays hand-written rather than gob, protobuf or msgpack: the bytes
// are the on-disk format, so they must not move with a library's version;
// every format byte and field is explicit for the migrations; decoding
// bounds every length against the record (FuzzRecordCodec in
// codec_fuzz_test.go) without reflection; and it needs no code generator.
const recordFormat1 = 1

var errCorrupt = errors.New("bolt: corrupt record")

type encoder struct{ buf []byte }

func newEncoder(size int) *encoder {
	e := &encoder{buf: make([]byte, 0, size)}
	e.buf = append(e.buf, recordFormat1)
	return e
}

func (e *encoder) uint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }

func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) bytes(b []byte) {
	e.uint(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

func (e *encoder) strs(ss []string) {
	e.uint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (e *encoder) bool(v bool) {
	if v {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.buf = append(e.buf, 0)
		return
	}
	e.buf = append(e.buf, 1)
	e.buf = binary.AppendVarint(e.buf, t.Unix())
	e.uint(uint64(t.Nanosecond()))
}

// decoder reads what encoder wrote. It copies everything it returns, so
// values stay valid after the bbolt transaction that produced buf ends. The
// first error sticks and makes every later read return a zero value.
type decoder struct {
	buf []byte
	err error
}

// newDecoder returns the decoder by value: it stays on the caller's stack
// (a record decode is on every request's path).
func newDecoder(kind string, b []byte) decoder {
	d := decoder{buf: b}
	switch {
	case len(b) == 0:
		d.err = fmt.Errorf("%w: empty %s", errCorrupt, kind)
	case b[0] != recordFormat1:
		d.err = fmt.Errorf("%w: %s has unknown format %d", errCorrupt, kind, b[0])
	default:
		d.buf = b[1:]
	}
	return d
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated", errCorrupt)
	}
	d.buf = nil
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) next(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail()
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) str() string { return string(d.next(d.uint())) }

// skip passes over a string (or bytes) without copying it.
func (d *decoder) skip() { d.next(d.uint()) }

func (d *decoder) bytes() []byte {
	b := d.next(d.uint())
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func (d *decoder) strs() []string {
	n := d.uint()
	if n == 0 || n > uint64(len(d.buf)) { // each string takes at least one byte
		if n != 0 {
			d.fail()
		}
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

func (d *decoder) bool() bool {
	b := d.next(1)
	return len(b) == 1 && b[0] == 1
}

func (d *decoder) time() time.Time {
	if !d.bool() {
		return time.Time{}
	}
	sec := d.int()
	nsec := d.uint()
	if d.err != nil || nsec >= uint64(time.Second) {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// done reports the sticky error, or trailing bytes as corruption.
func (d *decoder) done() error {
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.buf))
	}
	return d.err
}

func encodeUser(u storage.User) []byte {
	e := newEncoder(64 + len(u.ID) + len(u.Email) + len(u.Name) + len(u.Picture) + len(u.PasswordHash))
	e.str(u.ID)
	e.str(u.Email)
	e.bool(u.EmailVerified)
	e.str(u.Name)
	e.str(u.Picture)
	e.strs(u.Roles)
	e.bool(u.Disabled)
	e.str(u.PasswordHash)
	e.time(u.CreatedAt)
	e.time(u.UpdatedAt)
	e.str(u.EmailVerifiedBy)
	e.buf[0] = userFormat2
	if u.Username == "" && u.GivenName == "" && u.FamilyName == "" {
		return e.buf // readable by binaries older than userFormat3
	}
	e.str(u.Username)
	e.str(u.GivenName)
	e.str(u.FamilyName)
	e.buf[0] = userFormat3
	return e.buf
}

// userFormat3 is userFormat2 followed by Username, GivenName and
// FamilyName; a user without any of them is still written in userFormat2.
const userFormat3 = 3

// userFormat2 is a user record with EmailVerifiedBy after UpdatedAt
// (schema version 3 rewrites every format 1 user; a format 1 user still
// decodes, with EmailVerifiedBy "", unknown, never trusted).
const userFormat2 = 2

func decodeUser(b []byte) (storage.User, error) {
	format := byte(recordFormat1)
	if len(b) > 0 && (b[0] == userFormat2 || b[0] == userFormat3) {
		format, b = b[0], b[1:]
	}
	d := decoder{buf: b}
	if format == recordFormat1 {
		d = newDecoder("user", b)
	}
	u := storage.User{
		ID:            d.str(),
		Email:         d.str(),
		EmailVerified: d.bool(),
		Name:          d.str(),
		Picture:       d.str(),
		Roles:         d.strs(),
		Disabled:      d.bool(),
		PasswordHash:  d.str(),
		CreatedAt:     d.time(),
		UpdatedAt:     d.time(),
	}
	if format == userFormat2 || format == userFormat3 {
		u.EmailVerifiedBy = d.str()
	}
	if format == userFormat3 {
		u.Username, u.GivenName, u.FamilyName = d.str(), d.str(), d.str()
	}
	return u, d.done()
}

func encodeIdentity(id storage.Identity) []byte {
	e := newEncoder(64 + len(id.ID) + len(id.UserID) + len(id.Provider) + len(id.Issuer) + len(id.Subject) + len(id.Email))
	e.str(id.ID)
	e.str(id.UserID)
	e.str(id.Provider)
	e.str(id.Issuer)
	e.str(id.Subject)
	e.str(id.Email)
	e.bool(id.EmailVerified)
	e.time(id.CreatedAt)
	e.time(id.LastLoginAt)
	return e.buf
}

func decodeIdentity(b []byte) (storage.Identity, error) {
	d := newDecoder("identity", b)
	id := storage.Identity{
		ID:            d.str(),
		UserID:        d.str(),
		Provider:      d.str(),
		Issuer:        d.str(),
		Subject:       d.str(),
		Email:         d.str(),
		EmailVerified: d.bool(),
		CreatedAt:     d.time(),
		LastLoginAt:   d.time(),
	}
	return id, d.done()
}

func encodeSession(s storage.Session) []byte {
	e := newEncoder(96 + len(s.ID) + len(s.UserID) + len(s.Provider) + len(s.ClientID) + len(s.RevokedReason) + len(s.UserAgent) + len(s.IP))
	e.str(s.ID)
	e.str(s.UserID)
	e.str(s.Provider)
	e.str(s.ClientID)
	e.uint(s.Generation)
	e.time(s.RotatedAt)
	e.time(s.CreatedAt)
	e.time(s.IdleExpiresAt)
	e.time(s.ExpiresAt)
	e.time(s.RevokedAt)
	e.str(s.RevokedReason)
	e.str(s.UserAgent)
	e.str(s.IP)
	return e.buf
}

func decodeSession(b []byte) (storage.Session, error) {
	d := newDecoder("session", b)
	s := storage.Session{
		ID:            d.str(),
		UserID:        d.str(),
		Provider:      d.str(),
		ClientID:      d.str(),
		Generation:    d.uint(),
		RotatedAt:     d.time(),
		CreatedAt:     d.time(),
		IdleExpiresAt: d.time(),
		ExpiresAt:     d.time(),
		RevokedAt:     d.time(),
		RevokedReason: d.str(),
		UserAgent:     d.str(),
		IP:            d.str(),
	}
	return s, d.done()
}

// decodeSessionLimits is decodeSession for liveness only: the idle and
// absolute limits and the revocation time, every string passed over
// uncopied. countLive reads every session of a user at each sign-in, and a
// user who signs in daily from a few devices has dozens.
func decodeSessionLimits(b []byte) (storage.Session, error) {
	d := newDecoder("session", b)
	d.skip() // ID
	d.skip() // UserID
	d.skip() // Provider
	d.skip() // ClientID
	d.uint() // Generation
	d.time() // RotatedAt
	d.time() // CreatedAt
	s := storage.Session{IdleExpiresAt: d.time(), ExpiresAt: d.time(), RevokedAt: d.time()}
	d.skip() // RevokedReason
	d.skip() // UserAgent
	d.skip() // IP
	return s, d.done()
}

func encodeSigningKey(k storage.SigningKey) []byte {
	e := newEncoder(64 + len(k.ID) + len(k.Algorithm) + len(k.PrivateKey))
	e.str(k.ID)
	e.str(k.Algorithm)
	e.bytes(k.PrivateKey)
	e.time(k.CreatedAt)
	e.time(k.NotBefore)
	e.time(k.RetiredAt)
	e.time(k.ExpiresAt)
	if !k.RevokedAt.IsZero() {
		e.time(k.RevokedAt) // optional: records written before revocation lack it
	}
	return e.buf
}

func decodeSigningKey(b []byte) (storage.SigningKey, error) {
	d := newDecoder("signing key", b)
	k := storage.SigningKey{
		ID:         d.str(),
		Algorithm:  d.str(),
		PrivateKey: d.bytes(),
		CreatedAt:  d.time(),
		NotBefore:  d.time(),
		RetiredAt:  d.time(),
		ExpiresAt:  d.time(),
	}
	if len(d.buf) > 0 && d.err == nil {
		k.RevokedAt = d.time()
	}
	return k, d.done()
}

func encodeAuditEvent(ev storage.AuditEvent) []byte {
	e := newEncoder(32 + len(ev.ID) + len(ev.Type) + len(ev.UserID) + len(ev.SessionID) + len(ev.Provider) + len(ev.Detail))
	e.str(ev.ID)
	e.time(ev.Time)
	e.str(ev.Type)
	e.str(ev.UserID)
	e.str(ev.SessionID)
	e.str(ev.Provider)
	e.str(ev.Detail)
	return e.buf
}

func decodeAuditEvent(b []byte) (storage.AuditEvent, error) {
	d := newDecoder("audit event", b)
	ev := storage.AuditEvent{
		ID:        d.str(),
		Time:      d.time(),
		Type:      d.str(),
		UserID:    d.str(),
		SessionID: d.str(),
		Provider:  d.str(),
		Detail:    d.str(),
	}
	return ev, d.done()
}

// Keys of the index buckets.

// identityKey is the identity_keys key of (issuer, subject): the issuer's
// length first, so no issuer/subject split can collide with another.
func identityKey(issuer, subject string) []byte {
	k := make([]byte, 0, binary.MaxVarintLen64+len(issuer)+len(subject))
	k = binary.AppendUvarint(k, uint64(len(issuer)))
	k = append(k, issuer...)
	return append(k, subject...)
}

// ownerPrefix is the prefix of every user_identities or user_sessions key of
// one user; childKey appends the child's ID to it.
func ownerPrefix(userID string) []byte {
	k := make([]byte, 0, binary.MaxVarintLen64+len(userID)+40)
	k = binary.AppendUvarint(k, uint64(len(userID)))
	return append(k, userID...)
}

func childKey(userID, childID string) []byte {
	return append(ownerPrefix(userID), childID...)
}

// emailKey is the emails and password_emails key of an address:
// storage.EmailKey (schema version 3; before it, strings.ToLower).
func emailKey(email string) []byte {
	k, _ := storage.EmailKey(email)
	return []byte(k)
}

// timeKeyLen is the length of timeKey's result.
const timeKeyLen = 12

// timeKey encodes t so that byte order is time order: the Unix seconds with
// the sign bit flipped, big-endian, then the nanoseconds, big-endian.
func timeKey(t time.Time) []byte {
	k := make([]byte, timeKeyLen, timeKeyLen+40)
	binary.BigEndian.PutUint64(k, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	return k
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func readU64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
