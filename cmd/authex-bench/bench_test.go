package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/internal/measure"
)

// TestCPUSince: per-pid deltas, backends counted apart, a backend that
// appeared during the phase counted from zero, one that left ignored.
func TestCPUSince(t *testing.T) {
	before := cpuSample{100: 50, -7: 10, -8: 5}
	after := cpuSample{100: 150, -7: 30, -9: 20}
	total, db := cpuSince(before, after)
	tick := time.Second / measure.ClockTicks
	if want := (100 + 20 + 20) * tick; total != want {
		t.Errorf("total = %s, want %s", total, want)
	}
	if want := (20 + 20) * tick; db != want {
		t.Errorf("db = %s, want %s", db, want)
	}
}

// TestCheckPostgres: the PostgreSQL targets are judged against the same
// run's bbolt rows at 64 connections, and two instances by their p99.
func TestCheckPostgres(t *testing.T) {
	res := func(requests int, cpu, db time.Duration, p99 time.Duration) []result {
		return []result{{requests: requests, elapsed: time.Second, cpu: cpu, cpuDB: db, p99: p99}}
	}
	bolt := block{label: "bbolt", bolt: true, rows: []row{
		{conns: 64, phase: phaseReturning, results: res(2000, 1500*time.Millisecond, 0, 50*time.Millisecond)},
		{conns: 64, phase: phaseRefresh, results: res(4000, 1200*time.Millisecond, 0, 30*time.Millisecond)},
	}}
	x1 := block{label: "PostgreSQL x1", instances: 1, rows: []row{
		// 0.70 x the rate at 1.5 x the CPU per request: both pass.
		{conns: 64, phase: phaseReturning, results: res(1400, 1575*time.Millisecond, 700*time.Millisecond, 80*time.Millisecond)},
		// 0.50 x the rate at 2 x the CPU per request: both fail.
		{conns: 64, phase: phaseRefresh, results: res(2000, 1200*time.Millisecond, 600*time.Millisecond, 40*time.Millisecond)},
		{conns: 16, phase: phaseRefresh, results: res(10, time.Second, 0, time.Second)}, // not judged
	}}
	x2 := block{label: "PostgreSQL x2", instances: 2, rows: []row{
		{conns: 64, phase: phaseReturning, results: res(1000, time.Second, 0, 59*time.Millisecond)},
		{conns: 64, phase: phaseRefresh, results: res(1000, time.Second, 0, 61*time.Millisecond)},
	}}
	var got []string
	check := func(ok bool, format string, args ...any) {
		v := "FAIL"
		if ok {
			v = "PASS"
		}
		got = append(got, v+" "+fmt.Sprintf(format, args...))
	}
	report{blocks: []block{bolt, x1, x2}}.checkPostgres(bolt, check)
	want := []string{
		"PASS PostgreSQL x1, 64 connections, POST /v1/exchange (returning user): 1400/s = 0.70 x bbolt's 2000/s >= 0.65",
		"PASS PostgreSQL x1, 64 connections, POST /v1/exchange (returning user): CPU 1125 µs/req (DB 500) = 1.50 x bbolt's 750 <= 1.6",
		"FAIL PostgreSQL x1, 64 connections, POST /v1/token/refresh: 2000/s = 0.50 x bbolt's 4000/s >= 0.65",
		"FAIL PostgreSQL x1, 64 connections, POST /v1/token/refresh: CPU 600 µs/req (DB 300) = 2.00 x bbolt's 300 <= 1.6",
		"PASS PostgreSQL x2, 64 connections, POST /v1/exchange (returning user): p99 59.0 ms <= 60 ms",
		"FAIL PostgreSQL x2, 64 connections, POST /v1/token/refresh: p99 61.0 ms <= 60 ms",
	}
	if !slices.Equal(got, want) {
		t.Errorf("checks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
