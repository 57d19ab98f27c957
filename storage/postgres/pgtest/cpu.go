package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
// application_name of its own, or skips tb when no server is configured.
func NewCPUMeter(tb testing.TB, dsn string) *CPUMeter {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	m := &CPUMeter{appName: "authex-cpu-" + hex.EncodeToString(b)}
	m.DSN = withParam(dsn, "application_name", m.appName)
	control, err := pgx.Connect(tb.Context(), withParam(dsn, "application_name", "authex-cpu-control"))
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
			db += time.Duration(ticks-m.startDB[pid]) * time.Second / clockTicks
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
	rows, err := m.control.Query(tb.Context(), "SELECT pid FROM pg_stat_activity WHERE application_name = $1", m.appName)
	if err != nil {
		tb.Fatalf("CPU meter: %v", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		tb.Fatalf("CPU meter: %v", err)
	}
	out := make(map[int]int64, len(pids))
	for _, pid := range pids {
		command, ticks, err := cpuTicks(int(pid))
		if err != nil || command != "postgres" {
			return nil, false
		}
		out[int(pid)] = ticks
	}
	return out, true
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat: 100 on every Linux
// this runs on.
const clockTicks = 100

// cpuTicks is a process's command name and its user+system CPU time so
// far, in clock ticks (fields 2, 14 and 15 of /proc/PID/stat).
func cpuTicks(pid int) (string, int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, err
	}
	// The command name is in parentheses and may hold spaces or
	// parentheses: it ends at the last ')'.
	open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || end < open {
		return "", 0, errors.New("malformed /proc/PID/stat")
	}
	rest := strings.Fields(string(raw[end+1:]))
	if len(rest) < 13 {
		return "", 0, errors.New("short /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(rest[11], 10, 64)
	stime, err2 := strconv.ParseInt(rest[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return "", 0, err
	}
	return string(raw[open+1 : end]), utime + stime, nil
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("CPU meter: getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// withParam sets a connection parameter in either form of DSN (a URL or
// key=value pairs).
func withParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set(key, value)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " " + key + "=" + value
}
