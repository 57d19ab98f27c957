package exchange

import (
	"strings"
	"testing"
)

func TestPHC(t *testing.T) {
	p := Argon2Params{Memory: 1024, Iterations: 1, Parallelism: 1}
	h, err := hashPassword("pässwörd", p)
	if err != nil {
		t.Fatal(err)
	}
	if ok, got, err := checkPassword("pässwörd", h); !ok || got != p || err != nil {
		t.Fatalf("check own hash: %v %v %v", ok, got, err)
	}
	if ok, _, _ := checkPassword("passwörd", h); ok {
		t.Fatal("a different password matched")
	}
	if h2, _ := hashPassword("pässwörd", p); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	parts := strings.Split(h, "$")
	for name, bad := range map[string]string{
		"empty":         "",
		"argon2i":       strings.Replace(h, "$argon2id$", "$argon2i$", 1),
		"version":       strings.Replace(h, "$v=19$", "$v=16$", 1),
		"params":        strings.Join([]string{"", parts[1], parts[2], "m=1024,t=1", parts[4], parts[5]}, "$"),
		"zero memory":   strings.Join([]string{"", parts[1], parts[2], "m=0,t=1,p=1", parts[4], parts[5]}, "$"),
		"salt":          strings.Join([]string{"", parts[1], parts[2], parts[3], "!!", parts[5]}, "$"),
		"no hash":       strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], ""}, "$"),
		"extra section": h + "$x",
		"bcrypt":        "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
	} {
		if ok, _, err := checkPassword("pässwörd", bad); ok || err == nil {
			t.Errorf("%s: accepted %q", name, bad)
		}
	}
}

func TestCommonPasswordsLoaded(t *testing.T) {
	if len(commonPasswords) < 100 || !commonPasswords["password123"] || commonPasswords["# passwords refused at registration and at a password change, compared"] {
		t.Fatalf("list: %d entries", len(commonPasswords))
	}
	for p := range commonPasswords {
		if len(p) < DefaultMinPasswordLength || p != strings.ToLower(p) {
			t.Errorf("entry %q: shorter than the minimum or not lower-case", p)
		}
	}
}
