package exchange

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/authex/authex/storage"
)

// Email tokens: "<prefix>.<43 base64url characters>" (32 random bytes).
// The prefix names the purpose, so a verification token is never taken
// for a reset token; the store keeps only the SHA-256 of the whole string.
const (
	emailTokenPrefixVerify = "ve"
	emailTokenPrefixReset  = "pr"
	emailTokenSecretLen    = 43 // base64url, no padding, of 32 bytes
	emailTokenLen          = 2 + 1 + emailTokenSecretLen
)

var errEmailTokenFormat = errors.New("malformed email token")

// newEmailToken makes a token for purpose and the hash the store keeps.
func newEmailToken(purpose string) (token, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	token = emailTokenPrefix(purpose) + "." + base64.RawURLEncoding.EncodeToString(b[:])
	return token, emailTokenHash(token)
}

func emailTokenPrefix(purpose string) string {
	if purpose == storage.TokenPurposeVerifyEmail {
		return emailTokenPrefixVerify
	}
	return emailTokenPrefixReset
}

func emailTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// parseEmailToken checks a token's shape (what a client sends: untrusted)
// and answers its purpose and the hash to look up. It reads nothing.
func parseEmailToken(token string) (purpose, hash string, err error) {
	if len(token) != emailTokenLen || token[2] != '.' {
		return "", "", errEmailTokenFormat
	}
	switch token[:2] {
	case emailTokenPrefixVerify:
		purpose = storage.TokenPurposeVerifyEmail
	case emailTokenPrefixReset:
		purpose = storage.TokenPurposeResetPassword
	default:
		return "", "", errEmailTokenFormat
	}
	secret := token[3:]
	raw, err := base64.RawURLEncoding.Strict().DecodeString(secret)
	if err != nil || len(raw) != 32 || strings.ContainsAny(secret, "=\r\n") {
		return "", "", errEmailTokenFormat
	}
	return purpose, emailTokenHash(token), nil
}

// passwordFingerprint binds a reset token to the password hash it was
// issued under: any change of the password makes the token useless.
func passwordFingerprint(hash string) string {
	sum := sha256.Sum256([]byte("authex reset binding\x00" + hash))
	return hex.EncodeToString(sum[:16])
}
