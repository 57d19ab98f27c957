package storage

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// emailDomains is the IDNA profile of email domains. Registration, not
// Lookup: Lookup maps (fullwidth letters, Unicode case, ...) before it
// converts, and every mapping is a way for two different strings to meet.
// Registration refuses a domain that would need one.
var emailDomains = idna.Registration

// EmailKey is the one normalisation of an email address: the key of the
// verified-email and password-email indexes, of their lookups and of
// every comparison of two addresses. Both backends and the exchange use it,
// so an address finds in the index exactly what it would be compared with.
//
// An unambiguous address (one '@', a non-empty local part of printable
// ASCII without space, a domain that is valid IDNA) is folded: its local
// part ASCII-lower-cased, its domain ASCII-lower-cased and converted to its
// A-label (bücher.de and xn--bcher-kva.de are one domain). canonical is
// then true. Nothing else is folded: Unicode case folding merges different
// addresses (U+0130 İ lower-cases to i, U+212A KELVIN SIGN to k), so any
// other address (non-ASCII in the local part, no single '@', an empty part,
// a space or control character, a domain that is not valid IDNA or ends
// in a dot) is its own
// key, exactly as given, and canonical is false. Such an address still has
// an account of its own, but it never links to another account
// automatically and never takes over a password account: callers must
// treat !canonical as "exact match only, and ask" (account_exists).
//
// A canonical key is pure ASCII and is its own key; a non-canonical key
// is either not ASCII in its local part or fails the rules above, so the
// two kinds never collide.
func EmailKey(addr string) (key string, canonical bool) {
	at := strings.IndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || strings.IndexByte(addr[at+1:], '@') >= 0 {
		return addr, false
	}
	local, domain := addr[:at], addr[at+1:]
	for i := 0; i < len(local); i++ {
		if c := local[i]; c <= ' ' || c >= 0x7f {
			return addr, false
		}
	}
	// A trailing dot names the DNS root: the same domain, another string.
	if !utf8.ValidString(domain) || strings.HasSuffix(domain, ".") {
		return addr, false
	}
	for _, r := range domain {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return addr, false
		}
	}
	ascii, err := emailDomains.ToASCII(asciiLower(domain))
	if err != nil || ascii == "" || !isASCII(ascii) {
		return addr, false
	}
	return asciiLower(local) + "@" + ascii, true
}

// SameEmail reports whether two addresses are one for linking or taking an
// account over: both canonical and with one key. Two non-canonical
// addresses are never the same here, even when equal byte for byte.
func SameEmail(a, b string) bool {
	ka, ok := EmailKey(a)
	if !ok {
		return false
	}
	kb, ok := EmailKey(b)
	return ok && ka == kb
}

// asciiLower lower-cases ASCII letters only.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// UsernameKey is the one normalisation of a username: the key of the
// username index, of its lookups and of UserFilter.Username. It folds
// ASCII letters only (Unicode case folding merges different strings:
// U+212A KELVIN SIGN lower-cases to k); anything else is kept byte for
// byte. The exchange admits only ASCII usernames, so for every username
// it admits the key is the lower-cased name.
func UsernameKey(name string) string { return asciiLower(name) }
