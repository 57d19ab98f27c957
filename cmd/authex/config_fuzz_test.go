package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// fuzzEnv is the environment of the config fuzz targets. NESTED holds a
// reference itself, which must come out literally: a value is expanded
// once, never what a variable holds.
var fuzzEnv = map[string]string{
	"AUTHEX_X": "x-value",
	"NESTED":   "${AUTHEX_X}",
	"DOLLAR":   "$",
	"EMPTY":    "",
}

// expandOnce is the documented ${VAR} expansion, written out plainly: each
// ${NAME} (NAME a letter or underscore, then letters, digits, underscores)
// is replaced by getenv(NAME), scanning left to right, once; anything else
// stays as it is. It returns the names it found unset or empty.
func expandOnce(s string, getenv func(string) string) (string, []string) {
	var out strings.Builder
	var unset []string
	isName := func(c byte, first bool) bool {
		return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || !first && '0' <= c && c <= '9'
	}
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "${") {
			j := i + 2
			for j < len(s) && isName(s[j], j == i+2) {
				j++
			}
			if j > i+2 && j < len(s) && s[j] == '}' {
				name := s[i+2 : j]
				v := getenv(name)
				if v == "" {
					unset = append(unset, name)
				}
				out.WriteString(v)
				i = j + 1
				continue
			}
		}
		out.WriteByte(s[i])
		i++
	}
	return out.String(), unset
}

// FuzzExpandEnv: the ${VAR} expansion of config values (walkConfig on a
// scalar) never panics, equals expandOnce (so nothing a variable holds is
// expanded again), and reports each unset variable as a problem at the
// value's key path, replaced by "".
func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{
		"${AUTHEX_X}", "pre-${AUTHEX_X}-post", "${NESTED}", "${UNSET}", "${EMPTY}", "${DOLLAR}{AUTHEX_X}",
		"$${AUTHEX_X}", "${${AUTHEX_X}}", "${AUTHEX_X", "$AUTHEX_X", "${1X}", "${_}", "${AUTHEX_X}${AUTHEX_X}", "",
		"${é}", "\xff${AUTHEX_X}\xfe",
	} {
		f.Add(s, "v")
	}
	f.Add("${OTHER}", "${AUTHEX_X}")
	f.Fuzz(func(t *testing.T, value, other string) {
		getenv := func(name string) string {
			if name == "OTHER" {
				return other
			}
			return fuzzEnv[name]
		}
		want, unset := expandOnce(value, getenv)
		for _, tag := range []string{"!!str", "!!int"} {
			n := &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
			var probs Problems
			walkConfig(n, reflect.TypeFor[string](), "server.listen", getenv, map[int]string{}, &probs)
			if tag == "!!int" && !strings.Contains(value, "${") {
				want, unset = value, nil // a non-string scalar without a reference is left alone
			}
			if n.Value != want {
				t.Fatalf("%s %q (OTHER=%q): expanded to %q, want %q", tag, value, other, n.Value, want)
			}
			if len(probs) != len(unset) {
				t.Fatalf("%s %q: problems %q, want one for each of %q", tag, value, probs, unset)
			}
			for i, name := range unset {
				if want := "server.listen: environment variable " + name + " is not set"; probs[i] != want {
					t.Fatalf("%s %q: problem %q, want %q", tag, value, probs[i], want)
				}
			}
		}
	})
}

// FuzzLoadConfig: loadConfig takes any file without panicking (yaml,
// the key walk, ${VAR} expansion, decoding, Validate), and every refusal
// says something.
func FuzzLoadConfig(f *testing.F) {
	example, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("server:\n  listen: \"${AUTHEX_X}\"\n  public_url: ${NESTED}\n"))
	f.Add([]byte("providers:\n  google: {type: google, client_ids: [\"${UNSET}\"]}\n  password: {type: password, memory: 4294967295}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("clients:\n  - id: web\n    secret: ${EMPTY}\n    public: yes\n"))
	f.Add([]byte("- 1\n- 2\n"))
	f.Add([]byte("server: {listen: [1, 2]}\nstorage: {type: 7}\n"))
	f.Add([]byte{})
	path := filepath.Join(f.TempDir(), "config.yaml")
	getenv := func(name string) string { return fuzzEnv[name] }
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path, getenv)
		if err != nil && err.Error() == "" {
			t.Fatalf("an empty error for %q", data)
		}
		_ = cfg
	})
}
