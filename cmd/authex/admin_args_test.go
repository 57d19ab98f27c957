package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

// A base64url session id may start with "-": it must reach the command as
// its argument, not fail as an unknown flag.
func TestParseInterspersedTakesDashIDs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantPos []string
		json    bool
		user    string
		wantErr bool
	}{
		{args: []string{"-nJDl2ex"}, wantPos: []string{"-nJDl2ex"}},
		{args: []string{"-nJDl2ex", "--json"}, wantPos: []string{"-nJDl2ex"}, json: true},
		{args: []string{"--json", "-nJDl2ex"}, wantPos: []string{"-nJDl2ex"}, json: true},
		{args: []string{"-json", "abc"}, wantPos: []string{"abc"}, json: true},
		{args: []string{"--", "-x"}, wantPos: []string{"-x"}},
		{args: []string{"--jsn", "abc"}, wantErr: true},
		{args: []string{"-h"}, wantErr: true},
		{args: []string{"--user", "-uid", "x"}, wantPos: []string{"x"}, user: "-uid"},
		{args: []string{"x", "--user=u1"}, wantPos: []string{"x"}, user: "u1"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "")
		user := fs.String("user", "", "")
		pos, err := parseInterspersed(fs, tc.args)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%q: err %v, want error %v", tc.args, err, tc.wantErr)
		}
		if err == nil && (!slices.Equal(pos, tc.wantPos) || *asJSON != tc.json || *user != tc.user) {
			t.Fatalf("%q: positional %q json %v, want %q %v", tc.args, pos, *asJSON, tc.wantPos, tc.json)
		}
	}
}
