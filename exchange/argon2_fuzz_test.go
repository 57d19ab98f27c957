package exchange

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// phcString formats h as hashPassword does.
func phcString(h phc) string {
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", h.params.Memory, h.params.Iterations, h.params.Parallelism,
		base64.RawStdEncoding.EncodeToString(h.salt), base64.RawStdEncoding.EncodeToString(h.key))
}

// A stored hash names its own cost, and verifying it does that work: a
// hash with absurd parameters must be refused by the parser, before
// argon2 allocates m KiB or runs t passes.
func TestPHCRefusesAbsurdParameters(t *testing.T) {
	salt := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef"))
	key := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	with := func(params, salt, key string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	for name, bad := range map[string]string{
		"4 TiB memory":          with("m=4294967295,t=1,p=1", salt, key),
		"memory over 1 GiB":     with("m=1048577,t=1,p=1", salt, key),
		"endless iterations":    with("m=1024,t=4294967295,p=1", salt, key),
		"21 iterations":         with("m=1024,t=21,p=1", salt, key),
		"255 lanes":             with("m=1024,t=1,p=255", salt, key),
		"17 lanes":              with("m=1024,t=1,p=17", salt, key),
		"memory overflow":       with("m=99999999999,t=1,p=1", salt, key),
		"signed":                with("m=+1024,t=1,p=1", salt, key),
		"spaces":                with("m= 1024,t=1,p=1", salt, key),
		"trailing junk":         with("m=1024,t=1,p=1x", salt, key),
		"keyid":                 with("m=1024,t=1,p=1,keyid=abc", salt, key),
		"params reordered":      with("t=1,m=1024,p=1", salt, key),
		"version junk":          strings.Replace(with("m=1024,t=1,p=1", salt, key), "v=19", "v=19x", 1),
		"short salt":            with("m=1024,t=1,p=1", base64.RawStdEncoding.EncodeToString([]byte("1234567")), key),
		"huge salt":             with("m=1024,t=1,p=1", base64.RawStdEncoding.EncodeToString(make([]byte, 65)), key),
		"short hash":            with("m=1024,t=1,p=1", salt, base64.RawStdEncoding.EncodeToString(make([]byte, 15))),
		"huge hash":             with("m=1024,t=1,p=1", salt, base64.RawStdEncoding.EncodeToString(make([]byte, 65))),
		"megabyte hash":         with("m=1024,t=1,p=1", salt, base64.RawStdEncoding.EncodeToString(make([]byte, 1<<20))),
		"megabyte of dollars":   strings.Repeat("$", 1<<20),
		"zero iterations":       with("m=1024,t=0,p=1", salt, key),
		"padded base64 salt":    with("m=1024,t=1,p=1", salt+"==", key),
		"empty params":          with("", salt, key),
		"missing parallelism":   with("m=1024,t=1,p=", salt, key),
		"parallelism overflows": with("m=1024,t=1,p=257", salt, key),
	} {
		if h, err := parsePHC(bad); err == nil {
			t.Errorf("%s: parsed %q as %+v", name, bad[:min(len(bad), 80)], h.params)
		}
	}
	// The largest cost `authex config check` allows stays readable.
	h, err := parsePHC(with("m=1048576,t=20,p=16", salt, key))
	if err != nil || h.params != (Argon2Params{Memory: 1 << 20, Iterations: 20, Parallelism: 16}) {
		t.Fatalf("config's maximum: %+v %v", h.params, err)
	}
	for _, ok := range []string{
		with("m=1,t=1,p=1", base64.RawStdEncoding.EncodeToString(make([]byte, 8)), base64.RawStdEncoding.EncodeToString(make([]byte, 16))),
		with("m=65536,t=3,p=4", base64.RawStdEncoding.EncodeToString(make([]byte, 64)), base64.RawStdEncoding.EncodeToString(make([]byte, 64))),
	} {
		if _, err := parsePHC(ok); err != nil {
			t.Errorf("refused %q: %v", ok, err)
		}
	}
}

// FuzzPHC: parsePHC never panics, and what it accepts is within the
// bounds, so checkPassword's work is bounded; what it accepts formats
// back into a string it reads the same.
func FuzzPHC(f *testing.F) {
	for _, p := range []Argon2Params{{Memory: 1024, Iterations: 1, Parallelism: 1}, {Memory: 8, Iterations: 2, Parallelism: 2}} {
		h, err := hashPassword("pässwörd", p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(h)
	}
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA")
	f.Add("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePHC(s)
		if err != nil {
			if ok, _, cerr := checkPassword("pässwörd", s); ok || cerr == nil {
				t.Fatalf("checkPassword accepted what parsePHC refused: %q", s)
			}
			return
		}
		p := h.params
		if p.Memory < 1 || p.Memory > argon2MaxMemory || p.Iterations < 1 || p.Iterations > argon2MaxIterations ||
			p.Parallelism < 1 || p.Parallelism > argon2MaxParallelism {
			t.Fatalf("%q: parameters out of bounds: %+v", s, p)
		}
		if len(h.salt) < argon2MinSaltLen || len(h.salt) > argon2MaxSaltLen || len(h.key) < argon2MinKeyLen || len(h.key) > argon2MaxKeyLen {
			t.Fatalf("%q: salt %d, key %d bytes", s, len(h.salt), len(h.key))
		}
		again, err := parsePHC(phcString(h))
		if err != nil || again.params != h.params || !bytes.Equal(again.salt, h.salt) || !bytes.Equal(again.key, h.key) {
			t.Fatalf("%q: formatted back as %q, read %+v %v", s, phcString(h), again.params, err)
		}
		// Verify the cheap ones for real (the fuzzer must stay fast).
		if uint64(p.Memory)*uint64(p.Iterations) <= 4096 {
			if ok, got, err := checkPassword("pässwörd", s); err != nil || got != p {
				t.Fatalf("%q: check: %v %+v %v", s, ok, got, err)
			}
		}
	})
}
