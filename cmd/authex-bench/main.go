// Command authex-bench is the load run behind `make bench`: it starts the
// real bin/authex on a temporary bbolt file (pre-populated with N users and
// one session each), with a local RS256 OpenID provider, drives
// POST /v1/exchange (returning and new users), POST /v1/token/refresh,
// GET /v1/me and POST /oauth/introspect from a closed-loop load generator
// (64 keep-alive connections by default), and prints requests/s, p50,
// p99, errors and the server's CPU-seconds per 1,000 requests beside the
// ceiling of the box: GET /healthz on the same server, measured in the same
// run. Figures are medians over several runs. It also reports start-up
// time, the server's RSS and the bbolt file's size per user and session.
// docs/performance.md describes the method and the results.
//
// It is a measuring tool, never part of `make test`.
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	bin        string
	users      []int
	conns      int
	runs       int
	duration   time.Duration
	newTokens  int
	returning  int
	profileDir string
	keep       bool
	hook       bool
	pgDSN      string
}

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "authex-bench:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, out io.Writer) error {
	quick := getenv("BENCH_QUICK") == "1"
	fs := flag.NewFlagSet("authex-bench", flag.ContinueOnError)
	var o options
	var users string
	fs.StringVar(&o.bin, "bin", "bin/authex", "the authex binary to measure")
	fs.StringVar(&users, "users", pick(quick, "1000", "1000,1000000"), "store sizes to run, comma-separated")
	fs.IntVar(&o.conns, "conns", 64, "concurrent connections")
	fs.IntVar(&o.runs, "runs", pick(quick, 3, 5), "runs per store size; figures are medians")
	fs.DurationVar(&o.duration, "duration", pick(quick, 1500*time.Millisecond, 4*time.Second), "length of each phase of each run")
	fs.IntVar(&o.newTokens, "new-tokens", pick(quick, 6000, 40000), "id_tokens of new users minted ahead, shared by the runs of a store size")
	fs.IntVar(&o.returning, "returning", pick(quick, 500, 2000), "returning users (a fresh id_token is minted ahead for each exchange of one)")
	fs.StringVar(&o.profileDir, "profile", "", "collect CPU and allocation profiles of the first run's phases into this directory")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data file, config, server log)")
	fs.BoolVar(&o.hook, "hook", true, "also measure refresh with the claims hook on (a local hook answering in 1 ms)")
	fs.StringVar(&o.pgDSN, "pg-dsn", "", "also run each store size on PostgreSQL, in a fresh schema of this database (on this machine: its backends' CPU counts too)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range strings.Split(users, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-users: %q is not a positive number", f)
		}
		o.users = append(o.users, n)
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}

	iss, err := startIssuer()
	if err != nil {
		return err
	}
	defer iss.close()

	t0 := time.Now()
	subjects := make([]string, o.newTokens)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("new-%08d", i)
	}
	newBodies, err := iss.mintBodies(subjects)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "# authex load run: %d connections, %d runs x %s per phase, medians; provider tokens RS256, ours ES256, fsync on\n",
		o.conns, o.runs, o.duration)
	fmt.Fprintf(out, "# minted %d new-user id_tokens in %s\n", len(newBodies), time.Since(t0).Round(time.Millisecond))

	var sizes []sizeReport
	for _, n := range o.users {
		rep, err := runSize(o, iss, n, newBodies, out, "")
		if err != nil {
			return fmt.Errorf("%d users: %w", n, err)
		}
		sizes = append(sizes, rep)
		if o.pgDSN != "" {
			if _, err := runSize(o, iss, n, newBodies, out, o.pgDSN); err != nil {
				return fmt.Errorf("%d users on PostgreSQL: %w", n, err)
			}
		}
	}
	if len(sizes) > 1 {
		printScaling(out, sizes)
	}
	if o.hook {
		if err := runHook(o, iss, o.users[0], out); err != nil {
			return fmt.Errorf("claims hook: %w", err)
		}
	}
	return nil
}

func pick[T any](quick bool, q, full T) T {
	if quick {
		return q
	}
	return full
}

var phases = []string{"ceiling: GET /healthz", "POST /v1/exchange (returning user)", "POST /v1/exchange (new user)",
	"POST /v1/token/refresh", "GET /v1/me", "POST /oauth/introspect"}

type sizeReport struct {
	users   int
	results [][]result // [phase][run]
}

// runSize runs the phases on a store of n users: a bbolt file, or with
// pgDSN a schema of that PostgreSQL database.
func runSize(o options, iss *issuer, n int, newBodies [][]byte, out io.Writer, pgDSN string) (sizeReport, error) {
	dir, err := os.MkdirTemp("", "authex-bench-")
	if err != nil {
		return sizeReport{}, err
	}
	if o.keep {
		fmt.Fprintf(out, "# keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	dataPath := filepath.Join(dir, "authex.db")
	storageYAML := fmt.Sprintf("storage: { driver: bolt, bolt: { path: %q } }", dataPath)
	var pg *pgStore
	var pop populated
	if pgDSN != "" {
		if pg, err = newPGStore(pgDSN); err != nil {
			return sizeReport{}, err
		}
		defer pg.drop()
		os.Setenv("AUTHEX_BENCH_PG_DSN", pgDSN) // the server's config reads it
		storageYAML = pg.storageYAML()
		pop, err = pg.populate(iss.url, n)
	} else {
		pop, err = populate(dataPath, iss.url, n)
	}
	if err != nil {
		return sizeReport{}, err
	}

	// Returning users are spread over the whole store. authex refuses a
	// second use of an id_token, so every exchange needs a token of its
	// own: a pool for the sessions set up below, and one for the
	// returning-user phase, shared by the runs as the new users' is.
	const perConn = 8
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	users := make([]string, min(o.returning, n))
	for i := range users {
		users[i] = subject(rng.IntN(n))
	}
	subs := make([]string, o.conns*perConn+len(newBodies))
	for i := range subs {
		subs[i] = users[rng.IntN(len(users))]
	}
	minted, err := iss.mintBodies(subs)
	if err != nil {
		return sizeReport{}, err
	}
	setupBodies, returning := minted[:o.conns*perConn], minted[o.conns*perConn:]

	srv, err := startServerOn(o.bin, dir, storageYAML, iss.url)
	if err != nil {
		return sizeReport{}, err
	}
	defer srv.stop()
	if pg != nil {
		srv.backends = pg.backendTicks
	}
	idleRSS, _, _ := srv.memory()

	cs := newClients(o.conns)
	defer cs.close()
	ex := srv.base + "/v1/exchange"

	// Sessions for refresh and /v1/me: eight per connection, each owned by
	// one worker so that its refresh chain is never raced.
	chains := make([][]string, o.conns)
	access := make([]string, o.conns*perConn)
	var setupErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perConn {
				var tp tokenPair
				if err := post(cs[w], ex, setupBodies[w*perConn+j], &tp); err != nil {
					mu.Lock()
					setupErr = err
					mu.Unlock()
					return
				}
				chains[w] = append(chains[w], tp.RefreshToken)
				access[w*perConn+j] = tp.AccessToken
			}
		}()
	}
	wg.Wait()
	if setupErr != nil {
		return sizeReport{}, fmt.Errorf("setup: %w", setupErr)
	}

	var nextNew, nextRet atomic.Int64
	pos := make([]int, o.conns)
	ops := []op{
		func(w int, c *http.Client) error { return get(c, srv.base+"/healthz", "") },
		nil, // returning users: set per run below
		nil, // new users: set per run below
		func(w int, c *http.Client) error {
			k := pos[w] % perConn
			pos[w]++
			var tp tokenPair
			if err := post(c, srv.base+"/v1/token/refresh", refreshBody(chains[w][k]), &tp); err != nil {
				return err
			}
			chains[w][k] = tp.RefreshToken
			return nil
		},
		func(w int, c *http.Client) error {
			pos[w]++
			return get(c, srv.base+"/v1/me", access[w*perConn+pos[w]%perConn])
		},
		func(w int, c *http.Client) error {
			pos[w]++
			return introspect(c, srv.base+"/oauth/introspect", access[w*perConn+pos[w]%perConn])
		},
	}

	// Warm up the connections, the code paths and the page cache.
	for _, i := range []int{0, 4} {
		drive(srv, cs, 300*time.Millisecond, ops[i])
	}

	rep := sizeReport{users: n, results: make([][]result, len(phases))}
	newPerRun := len(newBodies) / o.runs
	for r := range o.runs {
		for i, do := range ops {
			switch i {
			case 1: // each run gets its share of the returning users' tokens
				limit := (r + 1) * newPerRun
				do = func(w int, c *http.Client) error {
					j := int((nextRet.Add(1) - 1))
					if j >= limit {
						return errExhausted
					}
					return post(c, ex, returning[j], nil)
				}
			case 2: // each run gets its share of the new users
				limit := (r + 1) * newPerRun
				do = func(w int, c *http.Client) error {
					j := int((nextNew.Add(1) - 1))
					if j >= limit {
						return errExhausted
					}
					return post(c, ex, newBodies[j], nil)
				}
			}
			var stopProfile func()
			if r == 0 && o.profileDir != "" {
				stopProfile = profile(srv, o.profileDir, fmt.Sprintf("%d-%s", n, slug(phases[i])), o.duration)
			}
			res := drive(srv, cs, o.duration, do)
			if stopProfile != nil {
				stopProfile()
			}
			rep.results[i] = append(rep.results[i], res)
		}
		if i := int(nextNew.Load()); i > (r+1)*newPerRun {
			nextNew.Store(int64((r + 1) * newPerRun))
		}
		if i := int(nextRet.Load()); i > (r+1)*newPerRun {
			nextRet.Store(int64((r + 1) * newPerRun))
		}
	}
	endSize, _ := fileSize(dataPath)
	printSize(out, o, rep, pop, srv, idleRSS, endSize, pg != nil)
	return rep, nil
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// profile fetches a CPU profile covering the phase and allocation
// snapshots before and after it (compare with -diff_base).
func profile(srv *server, dir, name string, d time.Duration) func() {
	base := "http://" + srv.pprofAddr + "/debug/pprof/"
	save := func(url, file string) {
		res, err := http.Get(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer res.Body.Close()
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			return
		}
		defer f.Close()
		io.Copy(f, res.Body)
	}
	save(base+"allocs", name+".allocs-before.pprof")
	done := make(chan struct{})
	go func() {
		defer close(done)
		save(fmt.Sprintf("%sprofile?seconds=%d", base, max(1, int(d.Round(time.Second).Seconds()))), name+".cpu.pprof")
	}()
	return func() {
		save(base+"allocs", name+".allocs-after.pprof")
		<-done
	}
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

func printSize(out io.Writer, o options, rep sizeReport, pop populated, srv *server, idleRSS int64, endSize int64, onPG bool) {
	store := "bbolt"
	if onPG {
		store = "PostgreSQL (CPU: authex + its backends)"
	}
	fmt.Fprintf(out, "\n## %d users on %s (store pre-populated with %d users and %d sessions in %s)\n\n",
		rep.users, store, pop.users, pop.sessions, pop.took.Round(100*time.Millisecond))
	fmt.Fprintf(out, "| %-34s | %10s | %9s | %6s | %6s | %6s | %12s |\n", "load", "requests/s", "x ceiling", "p50 ms", "p99 ms", "errors", "CPU-s/1k req")
	fmt.Fprintf(out, "|%s|%s:|%s:|%s:|%s:|%s:|%s:|\n", strings.Repeat("-", 36), strings.Repeat("-", 11), strings.Repeat("-", 10),
		strings.Repeat("-", 7), strings.Repeat("-", 7), strings.Repeat("-", 7), strings.Repeat("-", 13))
	var rss int64
	for i, name := range phases {
		rs := rep.results[i]
		ratios := make([]float64, len(rs))
		errs := 0
		for j, r := range rs {
			ratios[j] = r.rps() / rep.results[0][j].rps()
			errs += r.errors
			rss = max(rss, r.rssKiB)
		}
		fmt.Fprintf(out, "| %-34s | %10.0f | %9.2f | %6.1f | %6.1f | %6d | %12.3f |\n", name,
			col(rs, result.rps), median(ratios), col(rs, func(r result) float64 { return ms(r.p50) }),
			col(rs, func(r result) float64 { return ms(r.p99) }), errs, col(rs, result.cpuPer1k))
	}
	for i, rs := range rep.results {
		for _, r := range rs {
			if r.firstErr != nil {
				fmt.Fprintf(out, "first error in %s: %.300s\n", phases[i], r.firstErr)
				break
			}
		}
	}
	_, anon, file := srv.memory()
	fmt.Fprintf(out, "\nstart-up: %s to /healthz, %s to /readyz (provider discovered)\n",
		srv.startup.Round(time.Millisecond), srv.ready.Round(time.Millisecond))
	fmt.Fprintf(out, "server RSS: %.1f MB idle after start, %.1f MB peak under load (now %.1f MB anonymous + %.1f MB of the mapped file)\n",
		float64(idleRSS)/1024, float64(rss)/1024, float64(anon)/1024, float64(file)/1024)
	if onPG {
		return
	}
	fmt.Fprintf(out, "bbolt file: %.1f MB with the users, %.1f MB with their sessions, %.1f MB after the run",
		float64(pop.usersBytes)/1e6, float64(pop.sessionsBytes)/1e6, float64(endSize)/1e6)
	if pop.users < 100000 {
		// bbolt grows the file in steps of up to 1 GB: a small store's
		// size says nothing per record.
		fmt.Fprintln(out, "; per-record sizes need a larger store (-users 1000000)")
		return
	}
	fmt.Fprintf(out, "; %.0f bytes per user (with its identity and indexes), %.0f bytes per session\n",
		float64(pop.usersBytes)/float64(pop.users), float64(pop.sessionsBytes-pop.usersBytes)/float64(pop.sessions))
}

func printScaling(out io.Writer, sizes []sizeReport) {
	fmt.Fprintf(out, "\n## scaling: requests/s relative to the ceiling, %d users vs %d users\n\n", sizes[0].users, sizes[len(sizes)-1].users)
	for i, name := range phases[1:] {
		a, b := sizes[0].results[i+1], sizes[len(sizes)-1].results[i+1]
		ra := ratioMedian(a, sizes[0].results[0])
		rb := ratioMedian(b, sizes[len(sizes)-1].results[0])
		fmt.Fprintf(out, "- %s: %.2f vs %.2f of the ceiling (%+.0f %%); %.0f vs %.0f requests/s\n",
			name, ra, rb, (rb/ra-1)*100, col(a, result.rps), col(b, result.rps))
	}
}

func ratioMedian(rs, ceiling []result) float64 {
	xs := make([]float64, len(rs))
	for i := range rs {
		xs[i] = rs[i].rps() / ceiling[i].rps()
	}
	return median(xs)
}
