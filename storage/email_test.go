package storage_test

import (
	"strings"
	"testing"

	"github.com/authex/authex/storage"
)

func TestEmailKey(t *testing.T) {
	tests := []struct {
		name, addr, key string
		canonical       bool
	}{
		{"lower ascii", "victim@example.com", "victim@example.com", true},
		{"mixed case ascii", "ViCtIm@ExAmPlE.CoM", "victim@example.com", true},
		{"plus and dots", "First.Last+Tag@Example.com", "first.last+tag@example.com", true},
		// strings.ToLower("vİctim") is "victim": never fold it.
		{"U+0130 dotted capital I", "v\u0130ctim@example.com", "v\u0130ctim@example.com", false},
		{"U+0131 dotless i", "v\u0131ctim@example.com", "v\u0131ctim@example.com", false},
		// strings.ToLower("\u212A") is "k".
		{"U+212A Kelvin sign", "\u212Aate@example.com", "\u212Aate@example.com", false},
		{"sharp s", "stra\u00dfe@example.com", "stra\u00dfe@example.com", false},
		{"fullwidth local", "\uff56ictim@example.com", "\uff56ictim@example.com", false},
		{"fullwidth domain", "victim@\uff45xample.com", "victim@\uff45xample.com", false},
		{"unicode domain", "Anna@B\u00fccher.de", "anna@xn--bcher-kva.de", true},
		{"punycode domain", "anna@xn--bcher-kva.de", "anna@xn--bcher-kva.de", true},
		{"upper punycode domain", "ANNA@XN--BCHER-KVA.DE", "anna@xn--bcher-kva.de", true},
		{"unicode upper-case domain", "anna@B\u00dcCHER.de", "anna@B\u00dcCHER.de", false},
		{"sharp s domain", "a@stra\u00dfe.de", "a@xn--strae-oqa.de", true},
		{"ss domain stays apart", "a@strasse.de", "a@strasse.de", true},
		{"invalid punycode", "a@xn--zz.example", "a@xn--zz.example", false},
		{"leading hyphen label", "a@-x.example", "a@-x.example", false},
		{"empty", "", "", false},
		{"no at", "victim.example.com", "victim.example.com", false},
		{"two ats", "a@b@example.com", "a@b@example.com", false},
		{"empty local", "@example.com", "@example.com", false},
		{"empty domain", "victim@", "victim@", false},
		{"leading space", " victim@example.com", " victim@example.com", false},
		{"trailing newline", "victim@example.com\n", "victim@example.com\n", false},
		{"NUL", "vic\x00tim@example.com", "vic\x00tim@example.com", false},
		{"trailing dot", "victim@example.com.", "victim@example.com.", false},
		{"invalid UTF-8 domain", "a@b\xffc.com", "a@b\xffc.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, canonical := storage.EmailKey(tt.addr)
			if key != tt.key || canonical != tt.canonical {
				t.Fatalf("EmailKey(%q) = %q, %v; want %q, %v", tt.addr, key, canonical, tt.key, tt.canonical)
			}
		})
	}
	// The attack of issue 11: these must never share a key.
	apart := []string{"victim@example.com", "v\u0130ctim@example.com", "V\u0130CTIM@example.com", "\u212Aate@example.com", "kate@example.com"}
	seen := map[string]string{}
	for _, a := range apart {
		k, _ := storage.EmailKey(a)
		if other, ok := seen[k]; ok {
			t.Errorf("%q and %q share the key %q", a, other, k)
		}
		seen[k] = a
	}
}

func TestSameEmail(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"victim@example.com", "VICTIM@Example.COM", true},
		{"anna@b\u00fccher.de", "anna@xn--bcher-kva.de", true},
		{"victim@example.com", "v\u0130ctim@example.com", false},
		{"v\u0130ctim@example.com", "v\u0130ctim@example.com", false}, // exact, but never "the same" for linking
		{"", "", false},
	}
	for _, tt := range tests {
		if got := storage.SameEmail(tt.a, tt.b); got != tt.want {
			t.Errorf("SameEmail(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func FuzzEmailKey(f *testing.F) {
	for _, s := range []string{
		"victim@example.com", "ViCtIm@ExAmPlE.CoM", "v\u0130ctim@example.com", "\u212Aate@example.com",
		"anna@b\u00fccher.de", "anna@xn--bcher-kva.de", "a@stra\u00dfe.de", "a@\uff45xample.com", "a@b@c", "@", "",
		"a@xn--zz.example", "a@example.com.", "\"a b\"@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		key, canonical := storage.EmailKey(addr)
		if !canonical {
			if key != addr {
				t.Fatalf("EmailKey(%q) = %q, not canonical, but not the address as given", addr, key)
			}
			return
		}
		// A canonical key is its own key: the index and a lookup of what
		// it stored agree.
		if again, ok := storage.EmailKey(key); again != key || !ok {
			t.Fatalf("EmailKey(%q) = %q; EmailKey(%q) = %q, %v", addr, key, key, again, ok)
		}
		for i := 0; i < len(key); i++ {
			if c := key[i]; c >= 0x80 || ('A' <= c && c <= 'Z') {
				t.Fatalf("EmailKey(%q) = %q: not lower-case ASCII", addr, key)
			}
		}
		// ASCII in, only case changed.
		ascii := true
		for i := 0; i < len(addr); i++ {
			ascii = ascii && addr[i] < 0x80
		}
		if ascii && key != strings.ToLower(addr) {
			t.Fatalf("EmailKey(%q) = %q, want %q", addr, key, strings.ToLower(addr))
		}
	})
}

func TestUsernameKey(t *testing.T) {
	for in, want := range map[string]string{
		"John": "john", "john.DOE-1_x": "john.doe-1_x", "": "",
		"\u212Aelvin": "\u212Aelvin", // the Kelvin sign is not K
		"\u00c9COLE":  "\u00c9cole",  // only ASCII letters fold
	} {
		if got := storage.UsernameKey(in); got != want {
			t.Errorf("UsernameKey(%q) = %q, want %q", in, got, want)
		}
	}
}
