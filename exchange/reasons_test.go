package exchange

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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

// TestReasonsListsEveryConstant: every Reason constant declared in this
// package or in providers is in Reasons, so a constant added without
// adding it to the list (and so without its documentation) fails.
func TestReasonsListsEveryConstant(t *testing.T) {
	declared := map[string]string{} // name -> value
	for _, dir := range []string{"../providers", "."} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
							continue
						}
						switch v := vs.Values[i].(type) {
						case *ast.BasicLit:
							declared[name.Name], _ = strconv.Unquote(v.Value)
						case *ast.SelectorExpr: // providers.ReasonX, read before this package
							declared[name.Name] = declared[v.Sel.Name]
						}
					}
				}
			}
		}
	}
	if len(declared) < 20 {
		t.Fatalf("found only %d Reason constants", len(declared))
	}
	all := Reasons()
	for name, value := range declared {
		if name == "ReasonUnknownClient" || name == "ReasonRacedCredentialChange" {
			continue // reserved, and a revocation reason: never answered
		}
		if !slices.Contains(all, value) {
			t.Errorf("%s = %q is not in Reasons", name, value)
		}
	}
}
