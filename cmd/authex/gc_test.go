package main

import (
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

// TestTuneGC: serve sets the collector's percent and memory limit unless
// the operator set GOGC or GOMEMLIMIT.
func TestTuneGC(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		name    string
		env     map[string]string
		percent int
		limit   int64
	}{
		{"defaults", nil, gcPercent, gcMemoryLimit},
		{"GOGC set", map[string]string{"GOGC": "150"}, 100, math.MaxInt64},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, 100, math.MaxInt64},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prevPercent, prevLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
			t.Cleanup(func() { debug.SetGCPercent(prevPercent); debug.SetMemoryLimit(prevLimit) })
			tuneGC(func(k string) string { return tt.env[k] }, log)
			if got := debug.SetGCPercent(100); got != tt.percent {
				t.Errorf("GC percent %d, want %d", got, tt.percent)
			}
			if got := debug.SetMemoryLimit(math.MaxInt64); got != tt.limit {
				t.Errorf("memory limit %d, want %d", got, tt.limit)
			}
		})
	}
}
