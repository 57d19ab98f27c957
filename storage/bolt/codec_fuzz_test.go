package bolt

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/authex/authex/storage"
)

// recordCodec is one record type's encoder and decoder, behind any so one
// fuzz target covers them all. The target knows no field of any record:
// it builds records by reflection and compares them whole, so a field
// added to a record (and to its codec) is fuzzed without a change here.
type recordCodec struct {
	name   string
	zero   any // the record's zero value, for its type
	encode func(any) []byte
	decode func([]byte) (any, error)
}

func codecOf[R any](name string, enc func(R) []byte, dec func([]byte) (R, error)) recordCodec {
	var zero R
	return recordCodec{
		name:   name,
		zero:   zero,
		encode: func(v any) []byte { return enc(v.(R)) },
		decode: func(b []byte) (any, error) { return dec(b) },
	}
}

var recordCodecs = []recordCodec{
	codecOf("user", encodeUser, decodeUser),
	codecOf("identity", encodeIdentity, decodeIdentity),
	codecOf("session", encodeSession, decodeSession),
	codecOf("signing key", encodeSigningKey, decodeSigningKey),
	codecOf("audit event", encodeAuditEvent, decodeAuditEvent),
}

// fill sets every field of the struct v points to from the bytes of r, in
// the form the codec keeps exactly: strings and byte slices of any bytes
// (nil when empty, as decoded), times in UTC without a monotonic reading.
// Fields of a type it does not know stay zero.
func fill(v reflect.Value, r *fuzzBytes) {
	timeType := reflect.TypeFor[time.Time]()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch {
		case f.Type() == timeType:
			if r.byte()&1 == 1 {
				f.Set(reflect.ValueOf(time.Unix(int64(r.u64()), int64(r.u64()%uint64(time.Second))).UTC()))
			}
		case f.Kind() == reflect.String:
			f.SetString(string(r.take(int(r.byte() % 40))))
		case f.Kind() == reflect.Bool:
			f.SetBool(r.byte()&1 == 1)
		case f.Kind() >= reflect.Int && f.Kind() <= reflect.Int64:
			f.SetInt(int64(r.u64()))
		case f.Kind() >= reflect.Uint && f.Kind() <= reflect.Uint64:
			f.SetUint(r.u64())
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8:
			if b := r.take(int(r.byte() % 80)); len(b) > 0 {
				f.SetBytes(append([]byte(nil), b...))
			}
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			if n := int(r.byte() % 5); n > 0 {
				s := reflect.MakeSlice(f.Type(), n, n)
				for j := 0; j < n; j++ {
					s.Index(j).SetString(string(r.take(int(r.byte() % 20))))
				}
				f.Set(s)
			}
		}
	}
}

// fuzzBytes hands out the fuzzer's bytes, then zeros.
type fuzzBytes struct{ b []byte }

func (r *fuzzBytes) take(n int) []byte {
	n = min(n, len(r.b))
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *fuzzBytes) byte() byte {
	if b := r.take(1); len(b) == 1 {
		return b[0]
	}
	return 0
}

func (r *fuzzBytes) u64() uint64 {
	var buf [8]byte
	copy(buf[:], r.take(8))
	return binary.LittleEndian.Uint64(buf[:])
}

// payload counts the bytes of strings and byte slices and the elements of
// other slices held by v: what decoding had to allocate.
func payload(v reflect.Value) int {
	switch v.Kind() {
	case reflect.String:
		return v.Len()
	case reflect.Slice:
		n := v.Len()
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := 0; i < v.Len(); i++ {
				n += payload(v.Index(i))
			}
		}
		return n
	case reflect.Struct:
		n := 0
		for i := 0; i < v.NumField(); i++ {
			n += payload(v.Field(i))
		}
		return n
	}
	return 0
}

// FuzzRecordCodec: every decoder takes any bytes without panicking and
// allocates no more than the input holds; what it accepts re-encodes to
// the same record; and a record built from the input survives
// decode(encode(x)) == x for every record type.
func FuzzRecordCodec(f *testing.F) {
	at := time.Date(2025, 5, 1, 12, 30, 0, 123456789, time.UTC)
	for _, b := range [][]byte{
		encodeUser(storage.User{ID: "u1", Email: "a@example.com", EmailVerified: true, Name: "A", Roles: []string{"admin", ""},
			PasswordHash: "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", CreatedAt: at, UpdatedAt: at}),
		encodeUser(storage.User{ID: "u2", Email: "j@example.com", Username: "John.Doe", GivenName: "Mary Ann", FamilyName: "Smith", CreatedAt: at}),
		encodeIdentity(storage.Identity{ID: "i1", UserID: "u1", Provider: "google", Issuer: "https://accounts.google.com", Subject: "1", CreatedAt: at}),
		encodeSession(storage.Session{ID: "s1", UserID: "u1", Generation: 1<<64 - 1, ExpiresAt: at, RevokedReason: "logout"}),
		encodeSigningKey(storage.SigningKey{ID: "k1", Algorithm: "ES256", PrivateKey: []byte{0x30, 0x81, 0x87, 0}, NotBefore: at}),
		encodeAuditEvent(storage.AuditEvent{ID: "e1", Time: at, Type: "user.created", Detail: "{}"}),
		{recordFormat1, 0xff, 0xff, 0xff, 0xff, 0x0f},                                                                // a 4 GiB string length
		{recordFormat1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},                                                 // a 4-billion-string roles count
		{recordFormat1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, // a varint too long
		{2},
		{},
	} {
		f.Add(uint8(0), b)
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		for _, c := range recordCodecs {
			v, err := c.decode(data)
			if err != nil {
				continue
			}
			if n := payload(reflect.ValueOf(v)); n > len(data) {
				t.Fatalf("%s: %d input bytes decoded into %d bytes and elements", c.name, len(data), n)
			}
			again, err := c.decode(c.encode(v))
			if err != nil || !reflect.DeepEqual(again, v) {
				t.Fatalf("%s: decoded %#v\nre-encoded and decoded %#v (%v)", c.name, v, again, err)
			}
		}

		// The liveness-only session decode reads what decodeSession does
		// and agrees with it on every input.
		full, fullErr := decodeSession(data)
		limits, limitsErr := decodeSessionLimits(data)
		if (fullErr == nil) != (limitsErr == nil) {
			t.Fatalf("decodeSession error %v, decodeSessionLimits error %v", fullErr, limitsErr)
		}
		if fullErr == nil && (!limits.IdleExpiresAt.Equal(full.IdleExpiresAt) || !limits.ExpiresAt.Equal(full.ExpiresAt) || !limits.RevokedAt.Equal(full.RevokedAt)) {
			t.Fatalf("decodeSessionLimits %+v, decodeSession %+v", limits, full)
		}

		c := recordCodecs[int(kind)%len(recordCodecs)]
		x := reflect.New(reflect.TypeOf(c.zero)).Elem()
		fill(x, &fuzzBytes{data})
		got, err := c.decode(c.encode(x.Interface()))
		if err != nil || !reflect.DeepEqual(got, x.Interface()) {
			t.Fatalf("%s: encoded %#v\ndecoded %#v (%v)", c.name, x.Interface(), got, err)
		}
	})
}
