// Command authex-bench is the load run behind `make bench`: it starts the
// real bin/authex with a local RS256 OpenID provider on a bbolt file, on a
// fresh PostgreSQL schema (one instance), and on the same schema from two
// instances (the load generator splits its connections between them, no
// balancer); each store is pre-populated with N users and one session each.
// At 1, 16 and 64 keep-alive connections (a closed loop) it drives
// GET /healthz (the ceiling of the box, measured in the same run),
// POST /v1/exchange (returning and new users, a fresh id_token each),
// POST /v1/token/refresh, GET /v1/me and POST /oauth/introspect, and prints
// one table: requests/s, the ratio to the ceiling at the same connection
// count, p50, p99, and CPU per request (the authex processes plus, on
// PostgreSQL, the run's database backends, from /proc/PID/stat). Figures
// are medians over several runs. It measures the disk's fsync time, checks
// the commit path's targets (PASS/FAIL lines), and reports start-up time,
// the server's memory and the bbolt file's size per user and session.
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
	bin, compareBin string
	users           []int
	conns           []int
	runs            int
	duration        time.Duration
	exchangeTokens  int
	pgDSN           string
	pgInstances     []int
	profileDir      string
	out             string
	keep            bool
	hook            bool
	quick           bool
}

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "authex-bench:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout io.Writer) error {
	quick := getenv("BENCH_QUICK") == "1"
	fs := flag.NewFlagSet("authex-bench", flag.ContinueOnError)
	var o options
	var users, conns, pgInstances string
	o.quick = quick
	fs.StringVar(&o.bin, "bin", "bin/authex", "the authex binary to measure")
	fs.StringVar(&o.compareBin, "compare", "", "another authex binary (e.g. built from main) to run the bbolt rows with too, in the same run, for before/after")
	fs.StringVar(&users, "users", pick(quick, "1000", "1000,1000000"), "bbolt store sizes, comma-separated: the first gets every row, the others the 64-connection rows (start-up, memory, scaling)")
	fs.StringVar(&conns, "conns", "1,16,64", "connection counts, comma-separated")
	fs.IntVar(&o.runs, "runs", pick(quick, 1, 3), "runs of each row; figures are medians")
	fs.DurationVar(&o.duration, "duration", pick(quick, time.Second, 2*time.Second), "length of each phase of each run (an exchange phase also ends when its id_tokens run out)")
	fs.IntVar(&o.exchangeTokens, "exchange-tokens", pick(quick, 1500, 6000), "at most this many fresh id_tokens per exchange phase (new users: half), minted ahead")
	fs.StringVar(&o.pgDSN, "pg-dsn", firstNonEmpty(getenv("AUTHEX_BENCH_PG_DSN"), defaultPGDSN), "PostgreSQL server for the PostgreSQL rows (a fresh schema per run, dropped after); empty: no PostgreSQL rows")
	fs.StringVar(&pgInstances, "pg-instances", pick(quick, "1", "1,2"), "PostgreSQL deployments: instances of authex on the one schema, comma-separated")
	fs.StringVar(&o.profileDir, "profile", "", "collect CPU and allocation profiles of each row's first run into this directory")
	fs.StringVar(&o.out, "out", "bench-results.txt", "also write the whole report to this file (empty: stdout only)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directories (data file, configs, server logs)")
	fs.BoolVar(&o.hook, "hook", !quick, "also measure refresh with the claims hook on (a local hook answering in 1 ms)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.users, err = positiveList("-users", users); err != nil {
		return err
	}
	if o.conns, err = positiveList("-conns", conns); err != nil {
		return err
	}
	if o.pgInstances, err = positiveList("-pg-instances", pgInstances); err != nil {
		return err
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	out := stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		out = io.MultiWriter(stdout, f)
	}

	iss, err := startIssuer()
	if err != nil {
		return err
	}
	defer iss.close()

	disk, err := measureDisk(os.TempDir(), pick(quick, 300*time.Millisecond, time.Second))
	if err != nil {
		return fmt.Errorf("measure the disk: %w", err)
	}
	fmt.Fprintf(out, "# authex load run: connections %v, %d run(s) x %s per phase, medians; provider tokens RS256, ours ES256, fsync on\n",
		o.conns, o.runs, o.duration)
	fmt.Fprintf(out, "# disk of %s: %s\n", os.TempDir(), disk)

	b := &bench{o: o, iss: iss, out: out}
	var report report
	report.disk = disk
	for i, n := range o.users {
		cs := o.conns
		if i > 0 {
			cs = []int{slices.Max(o.conns)}
		}
		label := "bbolt"
		if len(o.users) > 1 {
			label = fmt.Sprintf("bbolt %s", humanCount(n))
		}
		bins := []string{o.bin}
		if i == 0 && o.compareBin != "" {
			bins = append(bins, o.compareBin)
		}
		blks, err := b.runBolt(bins, label, n, cs)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		report.blocks = append(report.blocks, blks...)
	}
	if o.pgDSN != "" {
		pgConns := o.conns
		if quick {
			pgConns = []int{slices.Max(o.conns)}
		}
		for _, k := range o.pgInstances {
			blk, err := b.runPG(k, o.users[0], pgConns)
			if err != nil {
				return fmt.Errorf("PostgreSQL x%d: %w", k, err)
			}
			report.blocks = append(report.blocks, blk)
		}
	}
	if o.hook {
		if err := runHook(o, iss, o.users[0], out); err != nil {
			return fmt.Errorf("claims hook: %w", err)
		}
	}
	report.print(out, o)
	if o.out != "" {
		fmt.Fprintf(stdout, "\n(written to %s)\n", o.out)
	}
	return nil
}

func pick[T any](quick bool, q, full T) T {
	if quick {
		return q
	}
	return full
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func positiveList(flag, s string) ([]int, error) {
	var xs []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive number", flag, f)
		}
		xs = append(xs, n)
	}
	return xs, nil
}

func humanCount(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// The phases of a row set, in the table's order.
const (
	phaseCeiling = iota
	phaseReturning
	phaseNewUser
	phaseRefresh
	phaseMe
	phaseIntrospect
)

var phases = []string{"ceiling: GET /healthz", "POST /v1/exchange (returning user)", "POST /v1/exchange (new user)",
	"POST /v1/token/refresh", "GET /v1/me", "POST /oauth/introspect"}

// phasesAt is which phases run at a connection count. BENCH_QUICK keeps
// what the commit path's targets need (the ceiling, a returning user's
// exchange, refresh) at every count and the rest at the largest only.
func (b *bench) phasesAt(conns int) []int {
	if b.o.quick && conns != slices.Max(b.o.conns) {
		return []int{phaseCeiling, phaseReturning, phaseRefresh}
	}
	return []int{phaseCeiling, phaseReturning, phaseNewUser, phaseRefresh, phaseMe, phaseIntrospect}
}

// bench holds what the blocks share: the provider, and the count of new
// users' subjects handed out (each new-user exchange needs one never seen).
type bench struct {
	o       options
	iss     *issuer
	out     io.Writer
	newSubs int
}

// block is one deployment's rows.
type block struct {
	label   string
	compare bool // run with -compare's binary
	users   int
	rows    []row

	bolt      bool
	instances int // PostgreSQL: authex instances on the one schema
	dataPath  string
	pop       populated
	startup   time.Duration // of the first instance
	ready     time.Duration
	idleRSS   int64
	peakRSS   int64 // KiB, largest authex process
	peakAnon  int64
	endSize   int64
}

// row is one phase at one connection count: a result per run.
type row struct {
	conns   int
	phase   int
	results []result
	ceiling []result // the same runs' ceiling at this connection count
}

// runBolt runs the bbolt rows of a store of n users with each binary
// given (bins[0] is the one measured; a second is -compare's), on copies of
// one pre-populated file, taking turns.
func (b *bench) runBolt(bins []string, label string, n int, conns []int) ([]block, error) {
	dir, err := os.MkdirTemp("", "authex-bench-")
	if err != nil {
		return nil, err
	}
	if b.o.keep {
		fmt.Fprintf(b.out, "# keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	var targets []target
	blocks := make([]block, len(bins))
	for i, bin := range bins {
		name := "authex"
		blocks[i] = block{label: label, users: n, bolt: true}
		if i > 0 {
			name = fmt.Sprintf("authex-compare-%d", i)
			blocks[i].label += " (compare)"
			blocks[i].compare = true
		}
		dataPath := filepath.Join(dir, name+".db")
		pop, err := populate(dataPath, b.iss.url, n)
		if err != nil {
			return nil, err
		}
		srv, err := startServer(bin, dir, name, boltStorage(dataPath), b.iss.url)
		if err != nil {
			return nil, err
		}
		dep := &deployment{label: blocks[i].label, servers: []*server{srv}}
		defer dep.stop()
		blocks[i].pop, blocks[i].startup, blocks[i].ready = pop, srv.startup, srv.ready
		blocks[i].idleRSS, _, _ = srv.memory()
		blocks[i].dataPath = dataPath
		targets = append(targets, target{dep: dep, blk: &blocks[i]})
	}
	if err := b.runRows(targets, conns); err != nil {
		return nil, err
	}
	for i := range blocks {
		blocks[i].endSize, _ = fileSize(blocks[i].dataPath)
		printBoltBlock(b.out, blocks[i])
	}
	return blocks, nil
}

func (b *bench) runPG(instances, n int, conns []int) (block, error) {
	label := fmt.Sprintf("PostgreSQL x%d", instances)
	dir, err := os.MkdirTemp("", "authex-bench-pg-")
	if err != nil {
		return block{}, err
	}
	if b.o.keep {
		fmt.Fprintf(b.out, "# keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	pg, pop, err := startPG(b.o.pgDSN, n, b.iss.url)
	if err != nil {
		return block{}, err
	}
	defer func() {
		if err := pg.close(); err != nil {
			fmt.Fprintf(b.out, "# dropping schema %s: %v\n", pg.schema, err)
		}
	}()
	dep := &deployment{label: label, pg: pg.backends()}
	defer dep.stop()
	storageConfig, secrets := pg.config()
	for i := range instances {
		srv, err := startServer(b.o.bin, dir, fmt.Sprintf("authex-%d", i+1), storageConfig, b.iss.url, secrets)
		if err != nil {
			return block{}, err
		}
		dep.servers = append(dep.servers, srv)
	}
	if err := dep.pg.checkProcReadable(); err != nil {
		return block{}, err
	}
	blk := block{label: label, users: n, instances: instances, pop: pop, startup: dep.servers[0].startup, ready: dep.servers[0].ready}
	if err := b.runRows([]target{{dep: dep, blk: &blk}}, conns); err != nil {
		return blk, err
	}
	fmt.Fprintf(b.out, "\n## %s: %d users and sessions written in %s; schema %s (dropped after the run); each instance's pool at its default size\n",
		label, n, pop.took.Round(100*time.Millisecond), pg.schema)
	printRows(b.out, []block{blk})
	return blk, nil
}

// perConn is how many sessions each connection refreshes in turn, each
// owned by one worker so that its refresh chain is never raced.
const perConn = 8

// target is one deployment and the block its rows go into.
type target struct {
	dep *deployment
	blk *block
}

// runRows drives every phase at every connection count on each target.
// With two targets (-compare) they take turns phase by phase, so that
// both see the same moments of a shared box.
func (b *bench) runRows(targets []target, conns []int) error {
	o := b.o
	for _, c := range conns {
		want := b.phasesAt(c)
		levels := make([]*level, len(targets))
		for i, t := range targets {
			l, err := b.prepareLevel(t, c, want)
			if err != nil {
				return err
			}
			defer l.cs.close()
			levels[i] = l
		}
		for r := range o.runs {
			for _, p := range want {
				for _, l := range levels {
					l.run(r, p)
				}
			}
		}
		for _, l := range levels {
			l.cs.close()
			for _, p := range want {
				l.rows[p].ceiling = l.rows[phaseCeiling].results
				l.blk.rows = append(l.blk.rows, *l.rows[p])
			}
			fmt.Fprintf(os.Stderr, "# %s at %d connection(s): done\n", l.blk.label, c)
		}
	}
	return nil
}

// level is one target at one connection count: its clients, sessions and
// pre-minted id_tokens, and the rows being filled.
type level struct {
	b                *bench
	dep              *deployment
	blk              *block
	conns            int
	cs               clients
	fixed            map[int]op
	returning, fresh [][]byte
	capRet, capNew   int
	rows             map[int]*row
}

func (b *bench) prepareLevel(t target, c int, want []int) (*level, error) {
	o, dep, blk := b.o, t.dep, t.blk
	rng := rand.New(rand.NewPCG(uint64(blk.users), uint64(c)))
	returningUsers := make([]string, min(2000, blk.users))
	for i := range returningUsers {
		returningUsers[i] = subject(rng.IntN(blk.users))
	}
	l := &level{b: b, dep: dep, blk: blk, conns: c, rows: map[int]*row{}}
	for _, p := range want {
		l.rows[p] = &row{conns: c, phase: p}
	}
	// Fresh id_tokens, minted before the load: a pool for the sessions set
	// up below, one per returning-user exchange, one new subject per
	// new-user exchange.
	l.capRet = min(o.exchangeTokens, 250*c+250)
	if slices.Contains(want, phaseNewUser) {
		l.capNew = l.capRet / 2
	}
	subs := make([]string, c*perConn+o.runs*l.capRet)
	for i := range subs {
		subs[i] = returningUsers[rng.IntN(len(returningUsers))]
	}
	for range o.runs * l.capNew {
		subs = append(subs, fmt.Sprintf("new-%08d", b.newSubs))
		b.newSubs++
	}
	minted, err := b.iss.mintBodies(subs)
	if err != nil {
		return nil, err
	}
	setup := minted[:c*perConn]
	l.returning = minted[c*perConn : c*perConn+o.runs*l.capRet]
	l.fresh = minted[c*perConn+o.runs*l.capRet:]

	l.cs = newClients(c)
	chains := make([][]string, c)
	access := make([]string, c*perConn)
	var setupErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perConn {
				var tp tokenPair
				if err := post(l.cs[w], dep.base(w)+"/v1/exchange", setup[w*perConn+j], &tp); err != nil {
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
		l.cs.close()
		return nil, fmt.Errorf("%s: setup at %d connections: %w", blk.label, c, setupErr)
	}

	pos := make([]int, c)
	l.fixed = map[int]op{
		phaseCeiling: func(w int, cl *http.Client) error { return get(cl, dep.base(w)+"/healthz", "") },
		phaseRefresh: func(w int, cl *http.Client) error {
			k := pos[w] % perConn
			pos[w]++
			var tp tokenPair
			if err := post(cl, dep.base(w)+"/v1/token/refresh", refreshBody(chains[w][k]), &tp); err != nil {
				return err
			}
			chains[w][k] = tp.RefreshToken
			return nil
		},
		phaseMe: func(w int, cl *http.Client) error {
			pos[w]++
			return get(cl, dep.base(w)+"/v1/me", access[w*perConn+pos[w]%perConn])
		},
		phaseIntrospect: func(w int, cl *http.Client) error {
			pos[w]++
			return introspect(cl, dep.base(w)+"/oauth/introspect", access[w*perConn+pos[w]%perConn])
		},
	}
	// Warm up the connections, the code paths and the page cache.
	drive(dep, l.cs, 300*time.Millisecond, l.fixed[phaseCeiling])
	drive(dep, l.cs, 300*time.Millisecond, l.fixed[phaseMe])
	return l, nil
}

// run drives phase p once (run r) and records the result.
func (l *level) run(r, p int) {
	o := l.b.o
	do := l.fixed[p]
	switch p {
	case phaseReturning:
		do = l.consume(l.returning[r*l.capRet : (r+1)*l.capRet])
	case phaseNewUser:
		do = l.consume(l.fresh[r*l.capNew : (r+1)*l.capNew])
	}
	var stopProfile func()
	if r == 0 && o.profileDir != "" {
		stopProfile = profile(l.dep.servers[0], o.profileDir, fmt.Sprintf("%s-%dc-%s", slug(l.blk.label), l.conns, slug(phases[p])), o.duration)
	}
	res := drive(l.dep, l.cs, o.duration, do)
	if stopProfile != nil {
		stopProfile()
	}
	l.rows[p].results = append(l.rows[p].results, res)
	l.blk.peakRSS, l.blk.peakAnon = max(l.blk.peakRSS, res.rssKiB), max(l.blk.peakAnon, res.anonKiB)
}

// consume hands out the exchange bodies once each, then reports
// exhaustion (the phase ends early).
func (l *level) consume(bodies [][]byte) op {
	var next atomic.Int64
	return func(w int, cl *http.Client) error {
		j := int(next.Add(1) - 1)
		if j >= len(bodies) {
			return errExhausted
		}
		return post(cl, l.dep.base(w)+"/v1/exchange", bodies[j], nil)
	}
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
