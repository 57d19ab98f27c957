package exchange

import (
	"strings"
	"testing"

	"github.com/authex/authex/storage"
)

// FuzzUsername: whatever a client sends as a username or a login
// identifier, CheckUsername admits only what the documented rules allow
// (so the index key is its ASCII lower case and no name can be read as an
// email), and loginName sends an identifier with '@' to the email lookup
// and one without to the username lookup, never both.
func FuzzUsername(f *testing.F) {
	for _, s := range []string{"john", "John.Doe", "a_b-c", "ab", strings.Repeat("x", 31), "a@b.c", ".dot", "\u212Aelvin",
		"s\u00e1m", "sam two", "0day", "-x1", "x\x00y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if err := CheckUsername(name); err == nil {
			if len(name) < MinUsernameLength || len(name) > MaxUsernameLength || strings.ContainsAny(name, "@ \t\r\n") {
				t.Fatalf("admitted %q", name)
			}
			for i := 0; i < len(name); i++ {
				if name[i] >= 0x80 {
					t.Fatalf("admitted non-ASCII %q", name)
				}
			}
			if storage.UsernameKey(name) != strings.ToLower(name) {
				t.Fatalf("key of %q is %q", name, storage.UsernameKey(name))
			}
		} else if e := AsError(err); e.Reason != ReasonInvalidUsername && e.Reason != ReasonUsernameIsEmail {
			t.Fatalf("%q refused with %q", name, e.Reason)
		}
		n, err := loginName("", "", name)
		trimmed := strings.TrimSpace(name)
		switch {
		case trimmed == "":
			if err == nil {
				t.Fatalf("empty identifier %q accepted", name)
			}
		case err != nil:
			t.Fatalf("identifier %q: %v", name, err)
		case (n.email != "") == (n.username != ""):
			t.Fatalf("identifier %q names %+v", name, n)
		case n.email != "" && !strings.Contains(n.email, "@"), n.username != "" && strings.Contains(n.username, "@"):
			t.Fatalf("identifier %q misrouted: %+v", name, n)
		}
	})
}
