package exchange

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters. They are stored with every
// hash (a PHC string), so they can change: a login with a hash made under
// other parameters rehashes it.
type Argon2Params struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
}

// DefaultArgon2 is OWASP's first recommended argon2id setting (19 MiB,
// 2 passes, 1 lane): tens of milliseconds per hash on a small server.
var DefaultArgon2 = Argon2Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1}

const (
	argon2SaltLen = 16
	argon2KeyLen  = 32
)

// hashPassword returns the PHC string
// $argon2id$v=19$m=MEMORY,t=ITERATIONS,p=PARALLELISM$SALT$HASH (unpadded
// standard base64).
func hashPassword(password string, p Argon2Params) (string, error) {
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, argon2KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

var errBadHash = errors.New("password hash is not an argon2id PHC string")

// Bounds on a stored hash. A PHC string carries its own cost, and the
// verification does what it says: without bounds a hash of m=4294967295
// (4 TiB) or t=4294967295 in the store (imported, restored, or written by
// whoever reached the database) makes a login allocate without end or
// run for ever. The cost bounds are those `authex config check` allows
// for providers.password (memory, iterations, parallelism), so every
// hash authex can make stays readable; the lengths allow the usual
// 8..64-byte salts and 16..64-byte outputs of other argon2id libraries.
const (
	argon2MaxMemory      = 1 << 20 // KiB (1 GiB)
	argon2MaxIterations  = 20
	argon2MaxParallelism = 16
	argon2MinSaltLen     = 8
	argon2MaxSaltLen     = 64
	argon2MinKeyLen      = 16
	argon2MaxKeyLen      = 64
)

// phc is a parsed PHC string.
type phc struct {
	params    Argon2Params
	salt, key []byte
}

// parsePHC reads $argon2id$v=19$m=M,t=T,p=P$SALT$HASH strictly: decimal
// parameters in this order and nothing else (no keyid or data), each
// within the bounds above, and unpadded base64 of bounded length.
func parsePHC(s string) (phc, error) {
	// The longest string the bounds allow is about 220 bytes: refuse
	// anything much longer before splitting or decoding it.
	if len(s) > 512 {
		return phc{}, errBadHash
	}
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return phc{}, errBadHash
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return phc{}, errBadHash
	}
	m, okM := phcParam(params[0], "m=", argon2MaxMemory)
	t, okT := phcParam(params[1], "t=", argon2MaxIterations)
	p, okP := phcParam(params[2], "p=", argon2MaxParallelism)
	if !okM || !okT || !okP {
		return phc{}, errBadHash
	}
	h := phc{params: Argon2Params{Memory: m, Iterations: t, Parallelism: uint8(p)}}
	var err error
	if h.salt, err = phcBase64(parts[4], argon2MinSaltLen, argon2MaxSaltLen); err != nil {
		return phc{}, errBadHash
	}
	if h.key, err = phcBase64(parts[5], argon2MinKeyLen, argon2MaxKeyLen); err != nil {
		return phc{}, errBadHash
	}
	return h, nil
}

// phcParam reads "name=N" with N a decimal in 1..limit.
func phcParam(s, name string, limit uint64) (uint32, bool) {
	digits, ok := strings.CutPrefix(s, name)
	if !ok || digits == "" || len(digits) > 10 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || v == 0 || v > limit {
		return 0, false
	}
	return uint32(v), true
}

// phcBase64 decodes unpadded standard base64 of lo..hi bytes.
func phcBase64(s string, lo, hi int) ([]byte, error) {
	if base64.RawStdEncoding.DecodedLen(len(s)) > hi {
		return nil, errBadHash
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(b) < lo || len(b) > hi {
		return nil, errBadHash
	}
	return b, nil
}

// checkPassword reports whether password matches the PHC string, and the
// parameters the string was made with. It always does the full hash work
// for a well-formed string.
func checkPassword(password, encoded string) (ok bool, params Argon2Params, err error) {
	h, err := parsePHC(encoded)
	if err != nil {
		return false, Argon2Params{}, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Iterations, h.params.Memory, h.params.Parallelism, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, h.params, nil
}
