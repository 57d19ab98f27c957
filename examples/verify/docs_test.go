package verify_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var verbatim = regexp.MustCompile("(?s)<!-- verbatim: (\\S+) -->\n```[a-z]*\n(.*?)```")

// TestGuideShowsTheExamplesVerbatim: every block docs/verify.md marks as
// verbatim equals the file it names, and every API's file is shown, so
// the guide is the code the tests above run.
func TestGuideShowsTheExamplesVerbatim(t *testing.T) {
	guide, err := os.ReadFile("../../docs/verify.md")
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for _, b := range verbatim.FindAllSubmatch(guide, -1) {
		path := string(b[1])
		shown[path] = true
		want, err := os.ReadFile(filepath.Join("../..", path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if string(b[2]) != string(want) {
			t.Errorf("docs/verify.md's copy of %s differs from the file: update the guide", path)
		}
	}
	for _, path := range []string{
		"examples/verify/django/backend/settings.py", "examples/verify/django/accounts/views.py",
		"examples/verify/fastapi/app.py", "examples/verify/node/server.mjs", "examples/verify/go/main.go",
		"examples/verify/node/discovery.mjs",
	} {
		if !shown[path] {
			t.Errorf("docs/verify.md does not show %s", path)
		}
	}
}
