package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report is the whole run: the disk's times and every block's rows.
type report struct {
	disk   diskTimes
	blocks []block
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func col(rs []result, f func(result) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return median(xs)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func p50ms(r result) float64 { return ms(r.p50) }
func p99ms(r result) float64 { return ms(r.p99) }

// ratio is the median over runs of the row's rate over the same run's
// ceiling at the same connection count.
func (r row) ratio() float64 {
	xs := make([]float64, len(r.results))
	for i := range r.results {
		xs[i] = r.results[i].rps() / r.ceiling[i].rps()
	}
	return median(xs)
}

func (r row) errors() int {
	n := 0
	for _, x := range r.results {
		n += x.errors
	}
	return n
}

func printRows(out io.Writer, blocks []block) {
	fmt.Fprintf(out, "\n| %-20s | %5s | %-34s | %10s | %9s | %6s | %6s | %10s | %8s | %6s |\n",
		"store", "conns", "load", "requests/s", "x ceiling", "p50 ms", "p99 ms", "CPU µs/req", "of it DB", "errors")
	fmt.Fprintf(out, "|%s|%s:|%s|%s:|%s:|%s:|%s:|%s:|%s:|%s:|\n", strings.Repeat("-", 22), strings.Repeat("-", 6), strings.Repeat("-", 36),
		strings.Repeat("-", 11), strings.Repeat("-", 10), strings.Repeat("-", 7), strings.Repeat("-", 7), strings.Repeat("-", 11), strings.Repeat("-", 9), strings.Repeat("-", 7))
	for _, b := range blocks {
		for _, r := range b.rows {
			db := "-"
			if !b.bolt {
				db = fmt.Sprintf("%.0f", col(r.results, result.cpuDBUS))
			}
			fmt.Fprintf(out, "| %-20s | %5d | %-34s | %10.0f | %9.2f | %6.1f | %6.1f | %10.0f | %8s | %6d |\n",
				b.label, r.conns, phases[r.phase], col(r.results, result.rps), r.ratio(), col(r.results, p50ms),
				col(r.results, p99ms), col(r.results, result.cpuUS), db, r.errors())
		}
	}
	for _, b := range blocks {
		for _, r := range b.rows {
			for _, x := range r.results {
				if x.firstErr != nil {
					fmt.Fprintf(out, "first error in %s, %d connections, %s: %.300s\n", b.label, r.conns, phases[r.phase], x.firstErr)
					break
				}
			}
		}
	}
}

func printBoltBlock(out io.Writer, b block) {
	fmt.Fprintf(out, "\n## %s: store pre-populated with %d users and %d sessions in %s\n",
		b.label, b.pop.users, b.pop.sessions, b.pop.took.Round(100*time.Millisecond))
	printRows(out, []block{b})
	fmt.Fprintf(out, "\nstart-up: %s to /healthz, %s to /readyz (provider discovered)\n",
		b.startup.Round(time.Millisecond), b.ready.Round(time.Millisecond))
	fmt.Fprintf(out, "server RSS: %.1f MB idle after start, %.1f MB peak under load, of it at most %.1f MB anonymous (the rest is the mapped file)\n",
		float64(b.idleRSS)/1024, float64(b.peakRSS)/1024, float64(b.peakAnon)/1024)
	fmt.Fprintf(out, "bbolt file: %.1f MB with the users, %.1f MB with their sessions, %.1f MB after the run",
		float64(b.pop.usersBytes)/1e6, float64(b.pop.sessionsBytes)/1e6, float64(b.endSize)/1e6)
	if b.pop.users < 100000 {
		// bbolt grows the file in steps of up to 1 GB: a small store's
		// size says nothing per record.
		fmt.Fprintln(out, "; per-record sizes need a larger store (-users 1000000)")
		return
	}
	fmt.Fprintf(out, "; %.0f bytes per user (with its identity and indexes), %.0f bytes per session\n",
		float64(b.pop.usersBytes)/float64(b.pop.users), float64(b.pop.sessionsBytes-b.pop.usersBytes)/float64(b.pop.sessions))
}

func (b block) row(conns, phase int) (row, bool) {
	for _, r := range b.rows {
		if r.conns == conns && r.phase == phase {
			return r, true
		}
	}
	return row{}, false
}

// print writes the closing table (every row of the run) and the checks.
func (rep report) print(out io.Writer, o options) {
	fmt.Fprintf(out, "\n## all rows (medians of %d run(s); x ceiling: the same run's GET /healthz at the same connection count; CPU: authex processes + the run's PostgreSQL backends)\n", o.runs)
	printRows(out, rep.blocks)
	fmt.Fprintf(out, "\ndisk: %s\n", rep.disk)

	var bolts []block
	var current, compare *block
	for i := range rep.blocks {
		b := &rep.blocks[i]
		switch {
		case b.compare:
			compare = b
		case b.bolt:
			bolts = append(bolts, *b)
			if current == nil {
				current = b
			}
		}
	}
	if len(bolts) > 1 {
		printScaling(out, bolts[0], bolts[len(bolts)-1])
	}
	fmt.Fprintf(out, "\n## checks\n\n")
	check := func(ok bool, format string, args ...any) {
		verdict := "FAIL"
		if ok {
			verdict = "PASS"
		}
		fmt.Fprintf(out, "%s %s\n", verdict, fmt.Sprintf(format, args...))
	}
	if current != nil {
		fsync := ms(rep.disk.fsync)
		if ex, ok := current.row(16, phaseReturning); ok {
			ceil, _ := current.row(16, phaseCeiling)
			p50, cp50 := col(ex.results, p50ms), col(ceil.results, p50ms)
			check(p50 <= cp50+fsync+1, "%s, 16 connections: exchange p50 %.2f ms <= ceiling p50 %.2f + fsync %.2f + 1 ms = %.2f ms",
				current.label, p50, cp50, fsync, cp50+fsync+1)
			check(ex.ratio() >= 0.12, "%s, 16 connections: exchange rate %.0f/s = %.3f x ceiling >= 0.12", current.label,
				col(ex.results, result.rps), ex.ratio())
			// A closed loop obeys Little's law: 16 connections at a
			// latency L make 16/L requests per second, which the CPU per
			// request must allow; say what the p50 target asks of it.
			target := cp50 + fsync + 1
			need := 16 / (target / 1000)
			fmt.Fprintf(out, "     (16 connections at %.2f ms each are about %.0f requests/s: %.1f cores at this run's %.0f µs of CPU per exchange)\n",
				target, need, need*col(ex.results, result.cpuUS)/1e6, col(ex.results, result.cpuUS))
		}
		if ex, ok := current.row(1, phaseReturning); ok {
			p50 := col(ex.results, p50ms)
			check(p50 <= fsync+1.5, "%s, 1 connection: exchange p50 %.2f ms within 1.5 ms of the fsync time %.2f ms (%+.2f ms)",
				current.label, p50, fsync, p50-fsync)
			fmt.Fprintf(out, "     (a returning user's exchange is one commit: the spent id_token, the session and its audit records together; one bbolt commit here: %.2f ms)\n",
				ms(rep.disk.boltCommit))
		}
		top := slices.Max(o.conns)
		if compare == nil {
			fmt.Fprintf(out, "SKIP %d-connection rates against before: run with -compare BIN (an authex built from the old commit)\n", top)
		} else {
			for _, r := range current.rows {
				old, ok := compare.row(r.conns, r.phase)
				if r.conns != top || r.phase == phaseCeiling || !ok {
					continue
				}
				// The two binaries took turns phase by phase (runRows), so
				// their rates saw the same moments of the box: compare the
				// rates themselves. 5 % is the noise of one run.
				now, before := col(r.results, result.rps), col(old.results, result.rps)
				check(now >= 0.95*before, "%s, %d connections, %s: %.0f/s (%.3f x ceiling) vs before %.0f/s (%.3f), at least 0.95 x before",
					current.label, top, phases[r.phase], now, r.ratio(), before, old.ratio())
			}
		}
	}
	if current != nil {
		rep.checkPostgres(*current, check)
	}
	for _, b := range bolts {
		check(b.startup < 100*time.Millisecond, "%s (%d users): start-up %s to /healthz < 100 ms", b.label, b.pop.users, b.startup.Round(time.Millisecond))
		check(b.peakAnon < 50*1024, "%s: anonymous memory under load at most %.1f MB < 50 MB", b.label, float64(b.peakAnon)/1024)
	}
}

func printScaling(out io.Writer, small, large block) {
	top := 0
	for _, r := range large.rows {
		top = max(top, r.conns)
	}
	fmt.Fprintf(out, "\n## scaling at %d connections: requests/s relative to the ceiling, %d users vs %d users\n\n", top, small.users, large.users)
	for _, r := range large.rows {
		s, ok := small.row(r.conns, r.phase)
		if !ok || r.phase == phaseCeiling {
			continue
		}
		ra, rb := s.ratio(), r.ratio()
		fmt.Fprintf(out, "- %s: %.2f vs %.2f of the ceiling (%+.0f %%); %.0f vs %.0f requests/s\n",
			phases[r.phase], ra, rb, (rb/ra-1)*100, col(s.results, result.rps), col(r.results, result.rps))
	}
}

// pgCheckConns is the connection count of issue 15's PostgreSQL targets.
const pgCheckConns = 64

// checkPostgres prints issue 15's PostgreSQL targets against the bbolt
// block of the same run, at pgCheckConns connections: one
// instance's exchange and refresh at least 0.65 x bbolt's rate and at most
// 1.6 x its CPU per request (authex + the run's backends); two instances'
// p99 at most 60 ms.
func (rep report) checkPostgres(bolt block, check func(bool, string, ...any)) {
	for _, pg := range rep.blocks {
		if pg.bolt || pg.compare || pg.instances == 0 {
			continue
		}
		for _, r := range pg.rows {
			if r.phase != phaseReturning && r.phase != phaseRefresh {
				continue
			}
			if pg.instances > 1 {
				if r.conns == pgCheckConns {
					p99 := col(r.results, p99ms)
					check(p99 <= 60, "%s, %d connections, %s: p99 %.1f ms <= 60 ms", pg.label, r.conns, phases[r.phase], p99)
				}
				continue
			}
			b, ok := bolt.row(r.conns, r.phase)
			if !ok || r.conns != pgCheckConns {
				continue
			}
			rate, brate := col(r.results, result.rps), col(b.results, result.rps)
			cpu, bcpu := col(r.results, result.cpuUS), col(b.results, result.cpuUS)
			check(rate >= 0.65*brate, "%s, %d connections, %s: %.0f/s = %.2f x bbolt's %.0f/s >= 0.65", pg.label, r.conns, phases[r.phase], rate, rate/brate, brate)
			check(cpu <= 1.6*bcpu, "%s, %d connections, %s: CPU %.0f µs/req (DB %.0f) = %.2f x bbolt's %.0f <= 1.6", pg.label, r.conns, phases[r.phase],
				cpu, col(r.results, result.cpuDBUS), cpu/bcpu, bcpu)
		}
	}
}
