package exchange

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
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

// phc is a parsed PHC string.
type phc struct {
	params    Argon2Params
	salt, key []byte
}

func parsePHC(s string) (phc, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return phc{}, errBadHash
	}
	var h phc
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.params.Memory, &h.params.Iterations, &h.params.Parallelism); err != nil || n != 3 {
		return phc{}, errBadHash
	}
	if h.params.Memory == 0 || h.params.Iterations == 0 || h.params.Parallelism == 0 {
		return phc{}, errBadHash
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) == 0 {
		return phc{}, errBadHash
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) == 0 {
		return phc{}, errBadHash
	}
	return h, nil
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
