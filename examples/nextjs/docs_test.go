// Package nextjs_test keeps docs/nextjs.md honest: every code block the
// guide marks as verbatim must equal the example file it names, so the
// guide shows exactly the code that make e2e runs in a browser (or, for
// plain/, the code the example type-checks), and the files a reader needs
// must all be shown.
package nextjs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var verbatim = regexp.MustCompile("(?s)<!-- verbatim: (\\S+) -->\n```[a-z]*\n(.*?)```")

// shown are the files docs/nextjs.md must show verbatim.
var shown = []string{
	// Auth.js v5 on @authex/next.
	"examples/nextjs/lib/authex.ts",
	"examples/nextjs/auth.ts",
	"examples/nextjs/types/next-auth.d.ts",
	"examples/nextjs/proxy.ts",
	"examples/nextjs/app/api/protected/route.ts",
	"examples/nextjs/app/actions.ts",
	// The same without the package.
	"examples/nextjs/plain/authex.ts",
	"examples/nextjs/plain/auth.ts",
	"examples/nextjs/plain/proxy.ts",
	"examples/nextjs/plain/route.ts",
	// next-auth v4 on @authex/next.
	"examples/nextjs-v4/lib/authex.ts",
	"examples/nextjs-v4/pages/api/auth/[...nextauth].ts",
	"examples/nextjs-v4/middleware.ts",
	"examples/nextjs-v4/pages/api/protected.ts",
	"examples/nextjs-v4/types/next-auth.d.ts",
}

func TestGuideShowsTheExampleVerbatim(t *testing.T) {
	guide, err := os.ReadFile("../../docs/nextjs.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, b := range verbatim.FindAllSubmatch(guide, -1) {
		path := string(b[1])
		seen[path] = true
		want, err := os.ReadFile(filepath.Join("../..", path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if string(b[2]) != string(want) {
			t.Errorf("docs/nextjs.md's copy of %s differs from the file: update the guide", path)
		}
	}
	for _, path := range shown {
		if !seen[path] {
			t.Errorf("docs/nextjs.md does not show %s verbatim", path)
		}
	}
}
