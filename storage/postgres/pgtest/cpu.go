package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authex/authex/internal/measure"
)

// CPUMeter measures what a benchmark's operations cost in CPU on both
// sides of the wire: the server backends of the connections that carry
// one application_name (their CPU is read from /proc/PID/stat, so only a
// server on this host is measured) and this process (getrusage). Round
// trips and latency hide the database's own work; these figures show it.
type CPUMeter struct {
	// DSN is the caller's DSN with the meter's application_name: open
	// the store under test with it, and only its backends are counted.
	DSN     string
	appName string
	// control lists the backends; it has another application_name, so
	// its own queries are never counted.
	control   *pgx.Conn
	startDB   map[int]int64
	local     bool // the backends are processes of this host
	startSelf time.Duration
}

// NewCPUMeter returns a meter for dsn whose DSN field carries an
// application_name of its own (call it after Schema or DSN, which skip tb
// when no server is configured).
func NewCPUMeter(tb testing.TB, dsn string) *CPUMeter {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	m := &CPUMeter{appName: "authex-cpu-" + hex.EncodeToString(b)}
	m.DSN = measure.WithDSNParam(dsn, "application_name", m.appName)
	control, err := pgx.Connect(tb.Context(), measure.WithDSNParam(dsn, "application_name", "authex-cpu-control"))
	if err != nil {
		tb.Fatalf("CPU meter: %v", err)
	}
	tb.Cleanup(func() { control.Close(context.Background()) })
	m.control = control
	return m
}

// Start takes the first sample, after the benchmark's setup.
func (m *CPUMeter) Start(tb testing.TB) {
	tb.Helper()
	m.startDB, m.local = m.backendTicks(tb)
	if !m.local {
		tb.Logf("CPU meter: the server's backends are not processes of this host; no db-µs/op")
	}
	m.startSelf = selfCPU(tb)
}

// Report divides the CPU spent since Start by b.N and reports it as
// db-µs/op (the backends) and go-µs/op (this process: the caller's code,
// the driver, the runtime).
func (m *CPUMeter) Report(b *testing.B) {
	b.Helper()
	self := selfCPU(b) - m.startSelf
	n := float64(b.N)
	b.ReportMetric(float64(self.Microseconds())/n, "go-µs/op")
	if end, local := m.backendTicks(b); m.local && local {
		var db time.Duration
		for pid, ticks := range end {
			// A backend that started after Start counts from zero.
			db += time.Duration(ticks-m.startDB[pid]) * time.Second / measure.ClockTicks
		}
		b.ReportMetric(float64(db.Microseconds())/n, "db-µs/op")
	}
}

// backendTicks is the CPU time so far of each backend of the meter's
// application_name, in clock ticks, and whether every one of them is a
// PostgreSQL process of this host (a remote server's pids name nothing
// here, or another process).
func (m *CPUMeter) backendTicks(tb testing.TB) (map[int]int64, bool) {
	tb.Helper()
	pids, err := measure.BackendPIDs(tb.Context(), m.control, m.appName)
	if err != nil {
		tb.Fatalf("CPU meter: %v", err)
	}
	out := make(map[int]int64, len(pids))
	for _, pid := range pids {
		command, ticks, err := measure.ProcessCPU(pid)
		if err != nil || command != "postgres" {
			return nil, false
		}
		out[pid] = ticks
	}
	return out, true
}

// selfCPU is this process's CPU time so far (measure.SelfCPU).
func selfCPU(tb testing.TB) time.Duration {
	tb.Helper()
	d, err := measure.SelfCPU()
	if err != nil {
		tb.Fatalf("CPU meter: %v", err)
	}
	return d
}
