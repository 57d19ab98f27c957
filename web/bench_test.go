package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/internal/measure"
)

// The benchmarks below drive whole requests through the harness (a real
// bbolt file with fsync, real go-oidc verification of RS256 id_tokens, our
// ES256 tokens) over loopback HTTP, with 16 concurrent clients per CPU so
// that the group commit has company. Provider tokens are minted before the timer
// starts: minting is the provider's cost, not ours. `make bench` measures
// the same paths against the real binary under load.

const benchParallelism = 16

// benchHarness is the harness with the access log silenced (one line per
// request would measure the terminal) and a client that keeps enough idle
// connections for the parallel clients.
func benchHarness(b *testing.B, opts ...harnessOption) (*harness, *http.Client) {
	b.Helper()
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { slog.SetDefault(prev) })
	h := newHarness(b, opts...)
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	return h, &http.Client{Transport: tr}
}

func benchPost(b *testing.B, c *http.Client, url string, body []byte, out any) {
	res, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		b.Errorf("%s: %d %s", url, res.StatusCode, raw)
		return
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.Error(err)
		}
	}
}

func exchangeBody(b *testing.B, idToken string) []byte {
	body, err := json.Marshal(map[string]string{"provider": "corp", "id_token": idToken})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// mintMany mints one id_token per subject on every CPU.
func mintMany(b *testing.B, h *harness, subjects []string) [][]byte {
	b.Helper()
	bodies := make([][]byte, len(subjects))
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(subjects); i = int(next.Add(1)) - 1 {
				bodies[i] = exchangeBody(b, h.idToken(subjects[i], nil))
			}
		}()
	}
	wg.Wait()
	return bodies
}

// BenchmarkExchangeReturning signs a known user in: verify, find the
// identity, create a session, sign. Each request carries a fresh id_token
// (a second use of one is refused as replayed), minted before the timer.
func BenchmarkExchangeReturning(b *testing.B) {
	h, c := benchHarness(b)
	const users = 256
	subjects := make([]string, users+b.N)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("returning-%d", i%users)
	}
	bodies := mintMany(b, h, subjects)
	for _, body := range bodies[:users] {
		benchPost(b, c, h.url+"/v1/exchange", body, nil)
	}
	bodies = bodies[users:]
	var n atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchPost(b, c, h.url+"/v1/exchange", bodies[n.Add(1)-1], nil)
		}
	})
	cpu.report(b)
}

// BenchmarkExchangeNew creates a user on every request.
func BenchmarkExchangeNew(b *testing.B) {
	h, c := benchHarness(b)
	subjects := make([]string, b.N)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("new-%d-%d", b.N, i)
	}
	bodies := mintMany(b, h, subjects)
	var n atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchPost(b, c, h.url+"/v1/exchange", bodies[n.Add(1)-1], nil)
		}
	})
	cpu.report(b)
}

// BenchmarkRefresh rotates refresh tokens, one session per client so that
// every rotation wins.
func BenchmarkRefresh(b *testing.B) {
	h, c := benchHarness(b)
	benchRefreshes(b, h, c)
}

// benchRefreshes signs each parallel client in once, then rotates its
// refresh token for the rest of its share of b.N. One id_token per client:
// a second use of one is refused (replayed).
func benchRefreshes(b *testing.B, h *harness, c *http.Client) {
	b.Helper()
	bodies := mintMany(b, h, refreshers())
	var next atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		var tk struct {
			RefreshToken string `json:"refresh_token"`
		}
		benchPost(b, c, h.url+"/v1/exchange", bodies[next.Add(1)-1], &tk)
		for pb.Next() {
			req, _ := json.Marshal(map[string]string{"refresh_token": tk.RefreshToken})
			benchPost(b, c, h.url+"/v1/token/refresh", req, &tk)
			if tk.RefreshToken == "" {
				return
			}
		}
	})
	cpu.report(b)
}

// BenchmarkMe authenticates a bearer token and reads the user back.
func BenchmarkMe(b *testing.B) {
	h, c := benchHarness(b)
	tk := h.exchangeOK("corp", h.idToken("reader", nil))
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, h.url+"/v1/me", nil)
			req.Header.Set("Authorization", "Bearer "+tk.AccessToken)
			res, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("me: %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkHealthz is the ceiling: the same server, middleware and client
// with a handler that does nothing.
func BenchmarkHealthz(b *testing.B) {
	h, c := benchHarness(b)
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.Get(h.url + "/healthz")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
}

// BenchmarkRefreshWithClaimsHook is BenchmarkRefresh with the claims hook
// on, against a local hook answering in 1 ms: uncached (a call per
// refresh) and cached (cache_ttl 1m, the default).
func BenchmarkRefreshWithClaimsHook(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"uncached", 0}, {"cached", time.Minute}} {
		b.Run(bc.name, func(b *testing.B) {
			hs := newHookServer(b)
			hs.delay.Store(int64(time.Millisecond))
			h, c := benchHarness(b, withHook(hs, exchange.HookDeny, bc.ttl), func(c *harnessConfig) {
				c.claimsHook.Timeout = time.Second
			})
			benchRefreshes(b, h, c)
		})
	}
}

// refreshers are the subjects of the refresh benchmarks' clients
// (RunParallel starts benchParallelism per GOMAXPROCS), one id_token each.
func refreshers() []string {
	subjects := make([]string, runtime.GOMAXPROCS(0)*benchParallelism)
	for i := range subjects {
		subjects[i] = "refresher"
	}
	return subjects
}

// cpuClock is the process's CPU time (user and system, every thread) and
// garbage collections at the start of a benchmark's timed part. On this
// shared box wall time per request depends on the neighbours; CPU time
// per request much less. Both count the in-process clients too, so
// compare them only with themselves.
type cpuClock struct {
	cpu time.Duration
	gcs uint32
}

func startCPU(b *testing.B) cpuClock {
	b.Helper()
	return cpuClock{cpu: processCPU(b), gcs: gcCycles()}
}

// report adds cpu-µs/op, CPU time since start per iteration, and
// gc/1k-op, collections per thousand iterations.
func (c cpuClock) report(b *testing.B) {
	b.Helper()
	used := processCPU(b) - c.cpu
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(gcCycles()-c.gcs)*1000/float64(b.N), "gc/1k-op")
}

func processCPU(b *testing.B) time.Duration {
	d, err := measure.SelfCPU()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func gcCycles() uint32 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.NumGC
}
