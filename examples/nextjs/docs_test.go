// Package nextjs_test keeps docs/nextjs.md honest: every code block the
// guide marks as verbatim must equal the example file it names, so the
// guide shows exactly the code that make e2e runs in a browser.
package nextjs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var verbatim = regexp.MustCompile("(?s)<!-- verbatim: (\\S+) -->\n```[a-z]*\n(.*?)```")

func TestGuideShowsTheExampleVerbatim(t *testing.T) {
	guide, err := os.ReadFile("../../docs/nextjs.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := verbatim.FindAllSubmatch(guide, -1)
	if len(blocks) < 4 {
		t.Fatalf("docs/nextjs.md has %d verbatim blocks, want at least 4 (lib/authex.ts, auth.ts, proxy.ts, the API route)", len(blocks))
	}
	for _, b := range blocks {
		path := string(b[1])
		want, err := os.ReadFile(filepath.Join("../..", path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if string(b[2]) != string(want) {
			t.Errorf("docs/nextjs.md's copy of %s differs from the file: update the guide", path)
		}
	}
}
