// Package measure reads what the load run (cmd/authex-bench) and the
// benchmarks measure CPU by: another process's CPU time from /proc, this
// process's or thread's from getrusage, and a DSN that names the
// connections whose server backends are counted, and the list of those
// backends.
package measure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux this runs on.
const ClockTicks = 100

// ProcessCPU is a process's command name and its user+system CPU time so
// far, in clock ticks (fields 2, 14 and 15 of /proc/PID/stat).
func ProcessCPU(pid int) (command string, ticks int64, err error) {
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

// WithDSNParam sets a connection parameter (application_name, say) in
// either form of PostgreSQL DSN: a URL or key=value pairs.
func WithDSNParam(dsn, key, value string) string {
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

// SelfCPU is this process's user+system CPU time so far.
func SelfCPU() (time.Duration, error) { return rusage(syscall.RUSAGE_SELF) }

// ThreadCPU is the calling thread's user+system CPU time so far; the
// caller locks its goroutine to the thread (runtime.LockOSThread).
func ThreadCPU() (time.Duration, error) {
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	return rusage(rusageThread)
}

func rusage(who int) (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// BackendPIDs lists the server backends of the connections whose DSN
// carries application_name appName (WithDSNParam), on conn, a connection
// of another name so that its own backend is not listed.
func BackendPIDs(ctx context.Context, conn *pgx.Conn, appName string) ([]int, error) {
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", appName)
	if err != nil {
		return nil, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	out := make([]int, len(pids))
	for i, p := range pids {
		out[i] = int(p)
	}
	return out, nil
}
