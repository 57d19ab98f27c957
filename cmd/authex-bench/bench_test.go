package main

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestWithParam: the run's application_name reaches the server in either
// DSN form, and pgx reads it back (pg_stat_activity finds backends by it).
func TestWithParam(t *testing.T) {
	for _, dsn := range []string{
		"postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable",
		"postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable&application_name=other",
		"host=127.0.0.1 port=5432 user=postgres password=postgres dbname=test sslmode=disable",
	} {
		cfg, err := pgx.ParseConfig(withParam(dsn, "application_name", "authex-bench-x"))
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		if got := cfg.RuntimeParams["application_name"]; got != "authex-bench-x" {
			t.Errorf("%s: application_name = %q", dsn, got)
		}
		if cfg.Database != "test" || cfg.User != "postgres" {
			t.Errorf("%s: the rest of the DSN changed: %+v", dsn, cfg)
		}
	}
}

// TestCPUSince: per-pid deltas, backends counted apart, a backend that
// appeared during the phase counted from zero, one that left ignored.
func TestCPUSince(t *testing.T) {
	before := cpuSample{100: 50, -7: 10, -8: 5}
	after := cpuSample{100: 150, -7: 30, -9: 20}
	total, db := cpuSince(before, after)
	tick := time.Second / clockTicks
	if want := (100 + 20 + 20) * tick; total != want {
		t.Errorf("total = %s, want %s", total, want)
	}
	if want := (20 + 20) * tick; db != want {
		t.Errorf("db = %s, want %s", db, want)
	}
}
