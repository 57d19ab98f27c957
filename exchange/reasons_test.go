package exchange

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReasonsDocumented holds the registry against the error table of
// docs/api.md both ways: a reason added without a row fails, and so does a
// row naming a reason no constant declares.
func TestReasonsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "\n## Errors\n")
	if start < 0 {
		t.Fatal(`docs/api.md has no "## Errors" section`)
	}
	section := doc[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	code := regexp.MustCompile("`([a-z_]+)`")
	documented := map[string]bool{}
	for line := range strings.SplitSeq(section, "\n") {
		cols := strings.Split(line, "|")
		// | status | error | reason | when |
		if len(cols) < 5 {
			continue
		}
		for _, m := range code.FindAllStringSubmatch(cols[3], -1) {
			documented[m[1]] = true
		}
	}
	if len(documented) == 0 {
		t.Fatal("found no reasons in the error table of docs/api.md")
	}
	all := Reasons()
	for _, r := range all {
		if !documented[r] {
			t.Errorf("reason %q is not in the error table of docs/api.md", r)
		}
	}
	for r := range documented {
		if !slices.Contains(all, r) {
			t.Errorf("docs/api.md lists reason %q, which Reasons does not", r)
		}
	}
}

// TestReasonsOnce: Reasons names each reason once, and the reserved
// unknown_client is not among them (it is no longer answered).
func TestReasonsOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		if seen[r] {
			t.Errorf("reason %q twice", r)
		}
		seen[r] = true
	}
	if seen[ReasonUnknownClient] {
		t.Errorf("Reasons lists %q, which is never answered", ReasonUnknownClient)
	}
}
