package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// hookDelay is how long the bench's claims hook takes to answer: an app
// that looks one row up in its own database.
const hookDelay = time.Millisecond

// startHook serves a claims hook on loopback that answers every call
// after hookDelay with one extra claim. It does not check the signature:
// the cost measured is authex's (signing the call, waiting, decoding).
func startHook() (url string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(hookDelay)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"claims":{"tier":"gold"}}`))
	})}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// runHook measures refresh without and with the claims hook on one store
// of n users, in one run each after the other, so the ratio is of one
// moment of this machine. The hook's cache_ttl is 1ms: (almost) every
// refresh calls the hook, the worst case; with the default (1m) a user
// refreshing every 15 minutes calls it at every refresh too.
func runHook(o options, iss *issuer, n int, out io.Writer) error {
	dir, err := os.MkdirTemp("", "authex-bench-hook-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dataPath := filepath.Join(dir, "authex.db")
	if _, err := populate(dataPath, iss.url, n); err != nil {
		return err
	}
	hookURL, stopHook, err := startHook()
	if err != nil {
		return err
	}
	defer stopHook()
	hookConfig := fmt.Sprintf(`hooks:
  claims: { url: %q, secret: "bench-hook-secret-0123456789", timeout: 500ms, cache_ttl: 1ms, on_failure: deny }
`, hookURL)

	var without, with []result
	for r := range o.runs {
		for _, hooked := range []bool{false, true} {
			var extra []string
			if hooked {
				extra = []string{hookConfig}
			}
			res, err := refreshRun(o, iss, dir, dataPath, n, uint64(r*2+btoi(hooked)), extra...)
			if err != nil {
				return err
			}
			if hooked {
				with = append(with, res)
			} else {
				without = append(without, res)
			}
		}
	}
	rw, rh := col(without, result.rps), col(with, result.rps)
	fmt.Fprintf(out, "\n## refresh with the claims hook (hook answers in %s, cache_ttl 1ms), %d users, %d connections, medians of %d runs\n",
		hookDelay, n, slices.Max(o.conns), o.runs)
	fmt.Fprintf(out, "| load | req/s | p50 ms | p99 ms | CPU-s/1k |\n|---|---|---|---|---|\n")
	fmt.Fprintf(out, "| refresh, no hook | %.0f | %.1f | %.1f | %.3f |\n", rw,
		col(without, p50ms), col(without, p99ms),
		col(without, result.cpuPer1k))
	fmt.Fprintf(out, "| refresh, claims hook | %.0f (%.2f x) | %.1f | %.1f | %.3f |\n", rh, rh/rw,
		col(with, p50ms), col(with, p99ms),
		col(with, result.cpuPer1k))
	return nil
}

// refreshRun starts authex on the store, signs conns x 8 returning users
// in with fresh id_tokens, and drives refresh for o.duration.
func refreshRun(o options, iss *issuer, dir, dataPath string, n int, seed uint64, extra ...string) (result, error) {
	srv, err := startServer(o.bin, dir, "authex", boltStorage(dataPath), iss.url, extra...)
	if err != nil {
		return result{}, err
	}
	dep := &deployment{label: "bbolt", servers: []*server{srv}}
	defer dep.stop()
	conns := slices.Max(o.conns)
	rng := rand.New(rand.NewPCG(seed, 11))
	subs := make([]string, conns*perConn)
	for i := range subs {
		subs[i] = subject(rng.IntN(n))
	}
	bodies, err := iss.mintBodies(subs)
	if err != nil {
		return result{}, err
	}
	cs := newClients(conns)
	defer cs.close()
	chains := make([][]string, conns)
	var mu sync.Mutex
	var setupErr error
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perConn {
				var tp tokenPair
				if err := post(cs[w], srv.base+"/v1/exchange", bodies[w*perConn+j], &tp); err != nil {
					mu.Lock()
					setupErr = err
					mu.Unlock()
					return
				}
				chains[w] = append(chains[w], tp.RefreshToken)
			}
		}()
	}
	wg.Wait()
	if setupErr != nil {
		return result{}, fmt.Errorf("setup: %w", setupErr)
	}
	pos := make([]int, conns)
	refresh := func(w int, c *http.Client) error {
		k := pos[w] % perConn
		pos[w]++
		var tp tokenPair
		if err := post(c, srv.base+"/v1/token/refresh", refreshBody(chains[w][k]), &tp); err != nil {
			return err
		}
		chains[w][k] = tp.RefreshToken
		return nil
	}
	drive(dep, cs, 300*time.Millisecond, refresh) // warm up
	return drive(dep, cs, o.duration, refresh), nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
